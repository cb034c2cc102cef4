"""One story through Google News and through its publisher's own feed: the draft lists the publisher's link.

Both feeds are served on 127.0.0.1 and go through fetch, extract, store, select and render.
Google News links to a redirect (news.google.com/rss/articles/...), and its `<source url>` is the
publisher's front page: neither is the story's link.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import Route, write_feeds

from pipeline.cli import cli
from pipeline.models import Item
from pipeline.select import select_further_reading
from test_select import NOW, guide

EPOCH = int(dt.datetime(2026, 3, 6, tzinfo=dt.timezone.utc).timestamp())


def google_news(*entries: tuple[str, str, str, str]) -> bytes:
    """A Google-News-shaped feed: (headline, publisher, publisher's front page, pubDate) per entry."""
    items = "".join(
        f"<item><title>{headline} - {publisher}</title>"
        f"<link>https://news.google.com/rss/articles/CBMi{n}abc?oc=5</link>"
        f'<guid isPermaLink="false">CBMi{n}abc</guid><pubDate>{date}</pubDate>'
        f'<description>&lt;a href="https://news.google.com/rss/articles/CBMi{n}abc?oc=5"&gt;{headline}&lt;/a&gt;'
        f"&amp;nbsp;&lt;font color=\"#6f6f6f\"&gt;{publisher}&lt;/font&gt;</description>"
        f'<source url="{site}">{publisher}</source></item>'
        for n, (headline, publisher, site, date) in enumerate(entries))
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            '<title>"wechat" - Google News</title><link>https://news.google.com/</link>'
            f"<description>Google News</description>{items}</channel></rss>").encode()


def publisher_feed(*entries: tuple[str, str, str]) -> bytes:
    items = "".join(f"<item><title>{headline}</title><link>{link}</link><guid>{link}</guid>"
                    f"<pubDate>{date}</pubDate></item>" for headline, link, date in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>SCMP Tech</title>'
            f"<link>https://www.scmp.com/</link><description>Tech</description>{items}</channel></rss>").encode()


STORY = "WeChat privacy rules tighten for foreign users"
OWN_LINK = "https://www.scmp.com/tech/article/3301/wechat-privacy-rules"


def build(project: Path) -> list[dict[str, str]]:
    result = CliRunner().invoke(cli, ["--root", str(project), "build", "wechat-encryption"],
                                env={"SOURCE_DATE_EPOCH": str(EPOCH), "PIPELINE_MODEL": ""})
    assert result.exit_code == 0, result.output
    text = (project / "output" / "wechat-encryption.md").read_text(encoding="utf-8")
    return yaml.safe_load(text.split("\n---\n", 1)[0].removeprefix("---\n"))["further_reading"]


@pytest.mark.parametrize("google_date, own_date", [
    ("Thu, 05 Mar 2026 08:00:00 GMT", "Wed, 04 Mar 2026 10:00:00 +0800"),  # the publisher's copy is older
    ("Wed, 04 Mar 2026 08:00:00 GMT", "Thu, 05 Mar 2026 10:00:00 +0800"),  # Google News' copy is older
])
def test_a_story_carried_by_google_news_and_its_publisher_lists_the_publishers_link(
        project: Path, feed_server, google_date: str, own_date: str) -> None:
    feed_server.routes["/gn.xml"] = Route(google_news(
        (STORY, "South China Morning Post", "https://www.scmp.com", google_date),
        ("WeChat encryption explained by researchers", "Tech Review Asia", "https://techreview.example", google_date),
    ))
    feed_server.routes["/scmp.xml"] = Route(publisher_feed((STORY, OWN_LINK + "?utm_source=rss", own_date)))
    write_feeds(project, {"url": feed_server.url("/gn.xml")},
                {"url": feed_server.url("/scmp.xml"), "publisher": "South China Morning Post"})
    listed = build(project)
    ours = [entry for entry in listed if entry["headline"] == STORY]
    assert len(ours) == 1 and ours[0]["url"] == OWN_LINK and ours[0]["source"] == "South China Morning Post"
    # No publisher feed carries the other story: it keeps the aggregator's link, labelled by its publisher.
    other = next(entry for entry in listed if entry["headline"].startswith("WeChat encryption"))
    assert other["url"].startswith("https://news.google.com/rss/articles/") and other["source"] == "Tech Review Asia"
    # A publisher's front page is never a story's link.
    assert not any(entry["url"].rstrip("/") in ("https://www.scmp.com", "https://techreview.example")
                   for entry in listed)


def item(headline: str, url: str, source: str, date: dt.date, source_url: str = "", feed: str = "f") -> Item:
    return Item(feed_url=feed, guid=url, headline=headline, source=source, date=date, url=url, source_url=source_url)


def test_the_publisher_is_matched_by_its_site_and_by_name_when_no_site_is_named() -> None:
    day = NOW.date()
    g = guide()
    aggregated = item("WeChat privacy audit", "https://news.google.com/rss/articles/x", "Daily", day,
                      "https://www.daily.example/", feed="gn")
    own = item("WeChat Privacy Audit!", "https://daily.example/2026/audit", "The Daily", day - dt.timedelta(days=2))
    assert select_further_reading([aggregated, own], g, NOW) == [own]  # www. or not, the same site
    nameless = item("WeChat privacy audit", "https://news.google.com/rss/articles/y", "The Daily", day, feed="gn")
    assert select_further_reading([nameless, own], g, NOW) == [own]
    alone = item("WeChat privacy audit", "https://news.google.com/rss/articles/z", "Elsewhere", day, feed="gn")
    assert select_further_reading([alone], g, NOW) == [alone]

"""Throwaway projects for the benchmarks: many copies of one guide and a store full of items."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from pipeline.models import Item
from pipeline.store import open_store

# The test suite's project, not the live content: an editor's change to templates/ never moves a number.
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "data" / "project"
GUIDE = FIXTURE / "templates" / "guides" / "wechat-encryption.md"

# Headline pieces: some hit the guide's keywords, most do not, as in a real news mix.
TOPICS = ["WeChat", "Tencent", "privacy", "encryption", "visa", "rent", "Alipay", "metro", "tuition",
          "data protection", "weather", "football", "surveillance", "banking", "flights", "hospital"]
VERBS = ["changes", "explains", "tightens", "expands", "reviews", "delays", "announces", "ends"]
OBJECTS = ["rules for foreigners", "payment limits", "student permits", "app settings", "fees",
           "messaging features", "registration", "cross-border transfers"]


def make_project(root: Path, guides: int, feeds: int = 30, items_per_feed: int = 100,
                 feed_base: str = "http://127.0.0.1:9", distinct: bool = False) -> Path:
    """A project with `guides` copies of the WeChat guide, `feeds` feeds and a populated store.

    With `distinct`, each copy gets its own title and keywords, as the guides of a real site differ:
    nothing can be shared between them.
    """
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(FIXTURE / "templates", root / "templates", dirs_exist_ok=True)
    guides_dir = root / "templates" / "guides"
    for old in guides_dir.glob("*.md"):
        old.unlink()
    text = GUIDE.read_bytes()
    for number in range(guides):
        body = text
        if distinct:
            topic = TOPICS[number % len(TOPICS)].lower()
            body = text.replace(b'title: "', f'title: "Guide {number} - '.encode(), 1).replace(
                b"keywords: [", f"keywords: [{topic}, topic{number}, ".encode(), 1)
        (guides_dir / f"guide-{number:05d}.md").write_bytes(body)
    (root / "output").mkdir(exist_ok=True)
    (root / "sources").mkdir(exist_ok=True)
    write_feeds_toml(root, [f"{feed_base}/feed/{n}.xml" for n in range(feeds)])
    if items_per_feed:
        populate_store(root / "pipeline.sqlite3", feeds, items_per_feed, feed_base)
    return root


def write_feeds_toml(root: Path, urls: list[str]) -> None:
    tags = ["china", "privacy", "money", "study", "travel"]
    lines = []
    for number, url in enumerate(urls):
        lines += ["[[feeds]]", f'url = "{url}"', f'publisher = "Publisher {number % 12}"',
                  f'tags = ["{tags[number % len(tags)]}"]', ""]
    (root / "sources" / "feeds.toml").write_text("\n".join(lines), encoding="utf-8")


def headline(feed: int, number: int) -> str:
    seed = feed * 7919 + number * 104729
    return (f"{TOPICS[seed % len(TOPICS)]} {VERBS[(seed // 7) % len(VERBS)]} "
            f"{OBJECTS[(seed // 13) % len(OBJECTS)]} ({feed}-{number})")


def populate_store(path: Path, feeds: int, items_per_feed: int, feed_base: str) -> int:
    """Store feeds x items_per_feed items dated over the last 60 days, through the real store."""
    today = dt.date.today()
    now = dt.datetime.now(dt.timezone.utc)
    with open_store(path) as store:
        total = 0
        for feed in range(feeds):
            url = f"{feed_base}/feed/{feed}.xml"
            items = [
                Item(feed_url=url, guid=f"{url}#{n}", headline=headline(feed, n),
                     source=f"Publisher {feed % 12}", date=today - dt.timedelta(days=(feed + n) % 60),
                     url=f"https://news{feed % 12}.example.com/{feed}/{n}")
                for n in range(items_per_feed)
            ]
            total += store.save_items(items, now)
    return total


def rss(feed: int, items: int, base: str = "https://news.example.com") -> bytes:
    """A realistic RSS 2.0 document with `items` entries dated over the last days."""
    today = dt.datetime.now(dt.timezone.utc)
    entries = []
    for n in range(items):
        stamp = (today - dt.timedelta(days=n % 20, hours=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        entries.append(
            f"<item><title>{headline(feed, n)}</title><link>{base}/{feed}/{n}?utm_source=rss</link>"
            f"<guid isPermaLink=\"false\">feed-{feed}-item-{n}</guid><pubDate>{stamp}</pubDate>"
            f"<description>&lt;p&gt;Summary of story {n} with &lt;b&gt;markup&lt;/b&gt;.&lt;/p&gt;</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>{base}/</link><description>News</description>"
        + "".join(entries) + "</channel></rss>"
    ).encode()

"""Helpers shared by the review-workflow tests (refresh, merge, lock, properties, sources).

Feeds are realistic RSS 2.0 documents served by the `feed_server` fixture; dates are relative to a
fixed SOURCE_DATE_EPOCH so drafts come out the same on every run.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner, Result

from conftest import FeedServer

from pipeline.cli import cli
from pipeline.drafts import read_draft

# 2025-03-01 12:00:00 UTC: "now" for every review test.
EPOCH = 1740830400
NOW = dt.datetime.fromtimestamp(EPOCH, tz=dt.timezone.utc)
PYTHON = sys.executable

SECTIONS = (
    "## 🙋 Frequently Asked Questions (FAQ)",
    "## 🧩 Conclusion",
    "## 📣 How to Join the Group",
    "## 📚 Further Reading",
    "## 📌 Disclaimer",
)
REGION_NAMES = ("context", "further-reading")


@dataclass(frozen=True)
class Story:
    """One RSS <item>; `days_ago` counts back from EPOCH."""

    headline: str
    slug: str
    days_ago: int = 1

    def link(self, host: str = "news.example.com") -> str:
        return f"https://{host}/{self.slug}"


def rss(title: str, stories: list[Story] | tuple[Story, ...], host: str = "news.example.com") -> bytes:
    """A small but ordinary RSS 2.0 feed, as a newspaper CMS would publish it."""
    entries = []
    for story in stories:
        published = format_datetime(NOW - dt.timedelta(days=story.days_ago, hours=3))
        entries.append(
            "    <item>\n"
            f"      <title>{escape(story.headline)}</title>\n"
            f"      <link>{story.link(host)}</link>\n"
            f"      <guid isPermaLink=\"true\">{story.link(host)}</guid>\n"
            f"      <pubDate>{published}</pubDate>\n"
            f"      <description>{escape(story.headline)}. Full story on our site.</description>\n"
            "    </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0">\n  <channel>\n'
        f"    <title>{escape(title)}</title>\n    <link>https://{host}/</link>\n"
        f"    <description>{escape(title)} news</description>\n"
        + "".join(entries)
        + "  </channel>\n</rss>\n"
    ).encode("utf-8")


PAYMENT_STORIES = (
    Story("Alipay raises single-payment limit for foreign cards", "alipay-limit", 2),
    Story("WeChat Pay waives fees on small foreign-card payments", "wechat-pay-fees", 4),
)
PRIVACY_STORIES = (
    Story("Tencent publishes a new WeChat privacy report", "wechat-privacy", 3),
    Story("Regulator tightens data protection rules for messaging apps", "data-rules", 5),
)


def env_for_subprocess() -> dict[str, str]:
    env = dict(os.environ)
    env["SOURCE_DATE_EPOCH"] = str(EPOCH)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run(root: Path, *args: str, epoch: int = EPOCH, env: dict[str, str | None] | None = None) -> Result:
    """`pipeline --root ROOT ARGS...` in-process at time `epoch`; stdout and stderr kept apart.

    Unexpected exceptions propagate, so a traceback fails the test instead of hiding in the result.
    """
    settings: dict[str, str | None] = {"SOURCE_DATE_EPOCH": str(epoch), "PIPELINE_MODEL": "",
                                       "PIPELINE_LOCK_WAIT": None}
    settings.update(env or {})
    return CliRunner().invoke(cli, ["--root", str(root), *args], env=settings, catch_exceptions=False)


def serve_feeds(root: Path, server: object, pay: tuple[Story, ...] = PAYMENT_STORIES,
                privacy: tuple[Story, ...] = PRIVACY_STORIES) -> tuple[str, str]:
    """Two feeds with ETags on the test server, listed in sources/feeds.toml; returns their URLs."""
    from conftest import Route, write_feeds

    server.routes["/pay.xml"] = Route(rss("Pay News", pay), etag='"pay-1"')  # type: ignore[attr-defined]
    server.routes["/privacy.xml"] = Route(  # type: ignore[attr-defined]
        rss("Privacy Wire", privacy, "wire.example.org"), etag='"privacy-1"')
    pay_url, privacy_url = server.url("/pay.xml"), server.url("/privacy.xml")  # type: ignore[attr-defined]
    write_feeds(root, {"url": pay_url, "publisher": "Pay News", "tags": ["payments"]},
                {"url": privacy_url, "publisher": "Privacy Wire", "tags": ["privacy"]})
    return pay_url, privacy_url


def gain_story(server: object, story: Story, etag: str = '"pay-2"') -> None:
    """The payments feed publishes one more story (new body, new ETag)."""
    from conftest import Route

    server.routes["/pay.xml"] = Route(rss("Pay News", (story, *PAYMENT_STORIES)), etag=etag)  # type: ignore[attr-defined]


NEW_STORY = Story("Alipay adds English menus for tourists", "alipay-english", 1)


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def draft_path(root: Path, slug: str = "mobile-payments") -> Path:
    return root / "output" / f"{slug}.md"


def assert_whole(path: Path) -> None:
    """The draft parses, has every required section in order and both managed regions."""
    draft = read_draft(path)
    assert draft is not None, f"{path} is missing"
    positions = [draft.body.index(heading) for heading in SECTIONS]
    assert positions == sorted(positions), path
    assert set(REGION_NAMES) <= set(draft.regions), path


@pytest.fixture
def built(project: Path, feed_server: FeedServer) -> Path:
    """A project whose two drafts were built from two feeds on the test server."""
    serve_feeds(project, feed_server)
    result = run(project, "build")
    assert result.exit_code == 0, result.stderr
    return project

"""Feed content is hostile until proven otherwise: XML tricks expand, read and fetch nothing, and no
title or link can put HTML, a non-http link, template code or YAML into a draft."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import yaml
from conftest import FIXTURE
from faultserver import FaultServer, rss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.build import build_drafts
from pipeline.config import Settings
from pipeline.drafts import find_regions, marker_problems, split_draft
from pipeline.errors import FeedError
from pipeline.extract import extract_items
from pipeline.models import Feed
from pipeline.render import escape_markdown
from pipeline.store import open_store

FEED = Feed("https://hostile.example.com/feed.xml", tags=("payments",))
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
PUB_DATE = "Sun, 01 Mar 2026 09:00:00 +0000"


def _texts(extraction) -> str:
    return " ".join([extraction.title or ""] + [f"{i.headline} {i.source} {i.url} {i.guid}" for i in extraction.items])


# -- XML attacks ---------------------------------------------------------------------------------

def billion_laughs(levels: int = 10) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, levels)
    ]
    top = f"&lol{levels - 1};"
    return (f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{chr(10).join(entities)}\n]>\n'
            f'<rss version="2.0"><channel><title>Laughs {top}</title>'
            f"<item><title>Story {top}</title><link>https://e.com/1</link><pubDate>{PUB_DATE}</pubDate></item>"
            "</channel></rss>").encode()


def test_billion_laughs_expands_nothing() -> None:
    try:
        extraction = extract_items(FEED, billion_laughs())
    except FeedError:
        return  # refusing the document is as good as not expanding it
    text = _texts(extraction)
    assert "lollol" not in text
    assert len(text) < 2000  # 10**9 "lol"s would be three gigabytes


def test_a_single_huge_entity_cannot_multiply(tmp_path: Path) -> None:
    # One entity used many times is the "quadratic blowup" variant: still bounded by the input.
    value = "A" * 50_000
    refs = "&big;" * 2000
    doc = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY big "{value}">]>'
           f'<rss version="2.0"><channel><title>t</title><item><title>x{refs}</title>'
           f"<link>https://e.com/q</link></item></channel></rss>").encode()
    try:
        extraction = extract_items(FEED, doc)
    except FeedError:
        return
    assert all(len(item.headline) <= 500 for item in extraction.items)  # 100 MB if expanded; capped anyway
    assert "A" * 60_000 not in _texts(extraction)


@pytest.fixture
def secret_file(tmp_path: Path) -> tuple[Path, str]:
    secret = "SECRET-7f3a9c-do-not-leak"
    path = tmp_path / "secret.txt"
    path.write_text(secret, encoding="utf-8")
    return path, secret


@pytest.mark.parametrize("where", ["title", "link", "channel"])
def test_external_entities_read_no_local_file(secret_file: tuple[Path, str], where: str) -> None:
    path, secret = secret_file
    title = "&xxe;" if where == "title" else "Plain story"
    link = "https://e.com/&xxe;" if where == "link" else "https://e.com/2"
    channel = "&xxe;" if where == "channel" else "Feed"
    doc = (f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{path.as_uri()}">]>\n'
           f'<rss version="2.0"><channel><title>{channel}</title><item><title>{title}</title>'
           f"<link>{link}</link><pubDate>{PUB_DATE}</pubDate></item></channel></rss>").encode()
    try:
        extraction = extract_items(FEED, doc)
    except FeedError as exc:
        assert secret not in str(exc)
        return
    assert secret not in _texts(extraction)


@pytest.fixture
def dtd_server() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("kind", ["doctype-system", "parameter-entity", "external-entity", "xinclude"])
def test_no_dtd_or_entity_is_fetched_from_the_network(dtd_server: FaultServer, kind: str) -> None:
    dtd = dtd_server.url("/dtd")
    prolog = {
        "doctype-system": f'<!DOCTYPE rss SYSTEM "{dtd}">',
        "parameter-entity": f'<!DOCTYPE rss [<!ENTITY % remote SYSTEM "{dtd}"> %remote;]>',
        "external-entity": f'<!DOCTYPE rss [<!ENTITY remote SYSTEM "{dtd}">]>',
        "xinclude": "",
    }[kind]
    body = "&remote;" if kind == "external-entity" else "Story"
    include = (f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{dtd}" parse="text"/>'
               if kind == "xinclude" else "")
    doc = (f'<?xml version="1.0"?>\n{prolog}\n<rss version="2.0"><channel><title>t</title>'
           f"<item><title>{body}{include}</title><link>https://e.com/3</link></item></channel></rss>").encode()
    try:
        extraction = extract_items(FEED, doc)
        assert "fetched" not in _texts(extraction)
    except FeedError:
        pass
    assert dtd_server.requests == []  # nothing, not even a failed attempt, reached the server


def test_the_attacks_travel_the_real_fetch_path_harmlessly(dtd_server: FaultServer, secret_file, tmp_path: Path) -> None:
    """The same documents served over HTTP through `update_feeds`: other feeds land, nothing leaks."""
    from pipeline.update import update_feeds

    path, secret = secret_file
    dtd_server.feeds["laughs"] = billion_laughs()
    dtd_server.feeds["xxe"] = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "{path.as_uri()}">'
                               f'<!ENTITY % r SYSTEM "{dtd_server.url("/dtd")}"> %r;]>'
                               '<rss version="2.0"><channel><title>t</title><item><title>A &x;</title>'
                               "<link>https://e.com/4</link></item></channel></rss>").encode()
    dtd_server.feeds["good"] = rss("Good", [("Fine story", "https://e.com/fine")])
    feeds = [Feed(dtd_server.url(f"/ok/{name}")) for name in ("laughs", "xxe", "good")]
    with open_store(tmp_path / "s.sqlite3") as store:
        update_feeds(Settings(root=tmp_path, timeout=30.0), store, feeds, NOW)  # answered at once
        stored = " ".join(f"{i.headline} {i.url} {i.source}" for i in store.items())
        states = " ".join(str(s.last_error) for s in store.feed_states().values())
    assert "Fine story" in stored
    assert secret not in stored + states and "lollol" not in stored
    assert "/dtd" not in dtd_server.paths()


# -- property-based: whatever a feed says, the draft stays safe -----------------------------------

HOSTILE_SNIPPETS = [
    "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;", "<img src=x onerror=alert(1)>",
    "<a href='javascript:alert(1)'>x</a>", "[click](javascript:alert(1))", "![img](http://e.com/x.png)",
    "{{7*7}}", "{% raw %}", "{%- include 'x' -%}", "{{ config }}", "${7*7}", "#{7*7}",
    "---", "key: value", "- item", "? complex", "!!python/object:os.system", "&anchor", "*alias", "'quote\"",
    "# Heading", "**bold**", "_em_", "`code`", "> quote", "1. list", "| a | b |", "\\", "<!--", "-->",
    "<!-- pipeline:end further-reading -->", "<!-- pipeline:begin context -->", "]]>", "<![CDATA[x]]>",
    "https://evil.example.com", "www.evil.example.com", "me@evil.example.com", "\u202egnp.exe", "\u200b",
    "😀", "中文标题", "العربية", "\t", "%}", "{#", "#}", "&amp;amp;", "&#0;", "&#x1F600;",
]
HOSTILE_LINKS = [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "data:text/html,<script>x</script>",
    "vbscript:msgbox(1)", "file:///etc/passwd", "ftp://e.com/x", "mailto:a@b.c", "//evil.example.com/x",
    "/relative/path", "?q=1", "#frag", "http://user:pw@evil.example.com/", "http://[::1]:80/x",
    "https://e.com/a b", "https://e.com/a)](javascript:alert(1)", "https://e.com/{{7*7}}", "https://e.com/<b>",
    "https://e.com/\"onmouseover=\"x", "http://e.com:99999/", "https://e.com/?utm_source=x&id=1", "",
]
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_SNIPPETS), st.text(min_size=1, max_size=12)), min_size=1, max_size=5
).map(" ".join)
hostile_link = st.one_of(
    st.sampled_from(HOSTILE_LINKS),
    st.builds(lambda a, b: f"https://news.example.com/{a}{b}", st.text(max_size=10), st.sampled_from(HOSTILE_LINKS)),
)
# How the text sits in the XML: escaped once, in CDATA, or escaped twice (HTML inside the text).
wrapping = st.sampled_from(["escaped", "cdata", "double"])


def _wrap(text: str, how: str) -> str:
    text = _XML_INVALID.sub("", text)
    if how == "cdata":
        return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
    if how == "double":
        return escape(escape(text))
    return escape(text)


def hostile_feed(entries: list[tuple[str, str, str]], title: str) -> bytes:
    items = "".join(
        f"<item><title>{_wrap('alipay ' + headline, how)}</title><link>{_wrap(link, 'escaped')}</link>"
        f"<guid isPermaLink='false'>g{n}</guid><pubDate>{PUB_DATE}</pubDate>"
        f"<source url='https://s.example.com/'>{_wrap(title, 'escaped')}</source></item>"
        for n, (headline, link, how) in enumerate(entries)
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{_wrap(title, "escaped")}'
            f"</title><link>https://hostile.example.com/</link>{items}</channel></rss>").encode()


@pytest.fixture(scope="module")
def hostile_project() -> Iterator[Path]:
    """One guide that lists up to 12 items, so most generated entries reach the draft."""
    root = Path(tempfile.mkdtemp(prefix="hostile-"))
    shutil.copytree(FIXTURE / "templates", root / "templates")
    for other in (root / "templates" / "guides").glob("*.md"):
        if other.name != "mobile-payments.md":
            other.unlink()
    guide = root / "templates" / "guides" / "mobile-payments.md"
    guide.write_text(guide.read_text(encoding="utf-8").replace("  count: 3", "  count: 12"), encoding="utf-8")
    yield root
    shutil.rmtree(root, ignore_errors=True)


_UNESCAPED_LINK = re.compile(r"(?<!\\)\]\(([^)]*)\)")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(st.tuples(hostile_text, hostile_link, wrapping), min_size=1, max_size=8),
    feed_title=hostile_text,
)
def test_any_feed_text_gives_a_safe_draft(hostile_project: Path, entries, feed_title: str) -> None:
    root = hostile_project
    shutil.rmtree(root / "output", ignore_errors=True)
    try:
        extraction = extract_items(FEED, hostile_feed(entries, feed_title))
    except FeedError:
        return  # a document feedparser cannot read at all is reported, not a crash
    assert extraction.skipped + len(extraction.items) == len(entries)
    for item in extraction.items:
        assert item.url.startswith(("http://", "https://")) and not re.search(r"\s", item.url)
        assert "\n" not in item.headline and "\n" not in item.source

    settings_ = Settings(root=root)
    with open_store(":memory:") as store:
        store.save_items(extraction.items, NOW)
        report = build_drafts(settings_, store, [FEED], NOW, only=["mobile-payments"])
    assert [d.outcome for d in report.drafts] == ["created"], [d.notes for d in report.drafts]

    path = root / "output" / "mobile-payments.md"
    text = path.read_text(encoding="utf-8")
    draft = split_draft(path, text)  # front matter is one YAML mapping, closed where it should be
    assert isinstance(yaml.safe_load(draft.front_matter_text), dict)
    assert draft.front_matter["title"].startswith("Paying in China")
    listed = draft.front_matter["further_reading"]
    stored = {(item.headline, item.url) for item in extraction.items}
    assert bool(listed) == bool(stored), "every headline starts with the guide's keyword alipay, so any item is listed"
    for entry in listed:
        # Verbatim: not evaluated as a template, not re-parsed as YAML, not altered.
        assert (entry["headline"], entry["url"]) in stored
        assert entry["url"].startswith(("http://", "https://"))

    assert marker_problems(draft.body) == []
    regions = find_regions(draft.body)
    assert set(regions) == {"context", "further-reading"}
    for name, content in regions.items():
        assert not re.search(r"(?<!\\)<", content), f"raw HTML in {name}: {content}"
        assert not re.search(r"(?<!\\)\{[{%#]", content), f"template syntax in {name}"
        for target in _UNESCAPED_LINK.findall(content):
            assert target.startswith(("http://", "https://")), f"non-http link {target!r} in {name}"
    for entry in listed:
        assert escape_markdown(entry["headline"]) in regions["further-reading"]
    if any("{{7*7}}" in e["headline"] for e in listed):
        assert "{{7*7}}" not in regions["further-reading"]

"""The whole ingestion over a corpus of real-shaped and broken feed files: no crash, every dropped
entry counted, every failure a FeedError that names the feed.

A few hand-written files sit in tests/data/corpus/ with what they must give; the large part (every
feed dialect crossed with every way a file goes wrong) is generated here at test time.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from pipeline.errors import FeedError
from pipeline.extract import Extraction, extract_items
from pipeline.models import Feed

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
HEADERS = {"content-type": "application/xml"}

# file -> (items, skipped), or the words of the FeedError it must raise
EXPECTED: dict[str, tuple[int, int] | str] = {
    "rss091.xml": (2, 1),  # one entry has no link
    "atom03.xml": (2, 0),  # one relative link, resolved against the feed URL
    "rdf.xml": (1, 1),  # one entry has an empty title
    "bom-utf8.xml": (1, 0),
    "wrong-encoding.xml": (2, 0),  # Latin-1 bytes under a UTF-8 label
    "nested-cdata.xml": (3, 0),
    "bad-dates.xml": (5, 0),  # unreadable dates become undated items, not lost items
    "truncated.xml": (1, 1),  # the half-written last entry is dropped and counted
    "empty.xml": "empty body",
    "junk.bin": "not a readable RSS or Atom feed",
}


def check_invariants(feed: Feed, extraction: Extraction) -> None:
    """What every extracted item must be, however broken the file was."""
    for item in extraction.items:
        assert item.feed_url == feed.url
        assert item.url.startswith(("http://", "https://")) and " " not in item.url
        assert item.headline and item.headline == item.headline.strip() and "\n" not in item.headline
        assert len(item.headline) <= 500 and len(item.guid) <= 2000 and len(item.source) <= 200
    assert extraction.skipped >= 0


def run(feed: Feed, body: bytes) -> Extraction | FeedError:
    try:
        extraction = extract_items(feed, body, HEADERS)
    except FeedError as exc:  # anything else escaping is a crash, and fails the test
        assert exc.url == feed.url and exc.reason and "\n" not in exc.reason
        return exc
    check_invariants(feed, extraction)
    return extraction


def test_the_committed_corpus_is_small_and_fully_described() -> None:
    files = sorted(p.name for p in CORPUS.iterdir())
    assert files == sorted(EXPECTED)
    assert sum(p.stat().st_size for p in CORPUS.iterdir()) < 2 * 1024 * 1024


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_committed_file_gives_what_it_must(name: str) -> None:
    feed = Feed(f"https://corpus.example.com/{name}")
    outcome = run(feed, (CORPUS / name).read_bytes())
    expected = EXPECTED[name]
    if isinstance(expected, str):
        assert isinstance(outcome, FeedError) and expected in outcome.reason
    else:
        assert isinstance(outcome, Extraction), outcome
        assert (len(outcome.items), outcome.skipped) == expected


def test_wrong_encodings_and_entities_come_out_as_text() -> None:
    latin = run(Feed("https://c.example.com/l"), (CORPUS / "wrong-encoding.xml").read_bytes())
    assert isinstance(latin, Extraction)
    assert [i.headline for i in latin.items] == ["Café prices in Shanghai", "Second ü story"]
    old = run(Feed("https://c.example.com/o"), (CORPUS / "rss091.xml").read_bytes())
    assert isinstance(old, Extraction) and "Café reopens" in [i.headline for i in old.items]


# -- the generated corpus ----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    title: str | None
    link: str | None
    date: str | None

    @property
    def usable(self) -> bool:
        return bool(self.title and self.title.strip()) and bool(self.link)


DATES = ["Sun, 01 Mar 2026 09:00:00 +0800", "2026-03-01T09:00:00Z", "2026-02-30", "yesterday", "", None,
         "Mon, 32 Foo 2026 25:61:00 +9999", "1999-12-31T23:59:59-12:00"]
TITLES = ["Visa office moves", "Caf\u00e9 & bar rules", "\u4e2d\u56fd\u7b7e\u8bc1\u65b0\u89c4", "<b>Bold</b> move",
          "Tabs\tand\nnewlines", "\U0001f600 emoji day", "   ", None, "x" * 3000]


def _entries(rng: random.Random) -> list[Entry]:
    entries = []
    for n in range(rng.randint(0, 6)):
        title = rng.choice(TITLES)
        link = rng.choice([f"https://gen.example.com/{n}", f"http://gen.example.com/{n}?utm_source=x", None,
                           "javascript:alert(1)", f"/relative/{n}"])
        entries.append(Entry(title, link, rng.choice(DATES)))
    return entries


def _text(value: str) -> str:
    return escape(value)


def render_feed(dialect: str, entries: list[Entry]) -> bytes:
    def field(tag: str, value: str | None, attr: str = "") -> str:
        return "" if value is None else f"<{tag}{attr}>{_text(value)}</{tag}>"

    if dialect in ("rss091", "rss20"):
        version = "0.91" if dialect == "rss091" else "2.0"
        items = "".join(
            f"<item>{field('title', e.title)}{field('link', e.link)}{field('pubDate', e.date)}</item>" for e in entries
        )
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="{version}"><channel><title>Gen</title>'
                f"<link>https://gen.example.com/</link>{items}</channel></rss>").encode()
    if dialect == "rdf":
        items = "".join(
            f'<item rdf:about="https://gen.example.com/about/{n}">{field("title", e.title)}{field("link", e.link)}'
            f'{field("dc:date", e.date)}</item>' for n, e in enumerate(entries)
        )
        return ('<?xml version="1.0" encoding="utf-8"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
                'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                '<channel rdf:about="https://gen.example.com/"><title>Gen</title><link>https://gen.example.com/</link>'
                f"</channel>{items}</rdf:RDF>").encode()
    namespace, date_tag = (("http://purl.org/atom/ns#", "issued") if dialect == "atom03"
                           else ("http://www.w3.org/2005/Atom", "updated"))
    version = ' version="0.3"' if dialect == "atom03" else ""
    entries_xml = "".join(
        f"<entry>{field('title', e.title)}"
        + ("" if e.link is None else f'<link rel="alternate" href="{_text(e.link)}"/>')
        + f"<id>urn:gen:{n}</id>{field(date_tag, e.date)}</entry>"
        for n, e in enumerate(entries)
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="{namespace}"{version}><title>Gen</title>'
            f'<link rel="alternate" href="https://gen.example.com/"/>{entries_xml}</feed>').encode()


# mutation name -> (bytes -> bytes, whether the entry counts must stay exact)
def _mutations(rng: random.Random) -> dict[str, tuple[object, bool]]:
    return {
        "intact": (lambda b: b, True),
        "bom": (lambda b: codecs.BOM_UTF8 + b, True),
        "utf16": (lambda b: b.decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16"), True),
        "crlf": (lambda b: b.replace(b"><", b">\r\n<"), True),
        "latin1-labelled-utf8": (lambda b: b.decode().encode("latin-1", "replace"), False),
        "gb2312-labelled": (lambda b: b.replace(b'encoding="utf-8"', b'encoding="gb2312"'), False),
        "truncated": (lambda b: b[: rng.randint(0, max(1, len(b) - 1))], False),
        "nul-bytes": (lambda b: b.replace(b"<item>", b"<item>\x00", 1).replace(b"<entry>", b"<entry>\x00", 1), False),
        "junk-middle": (lambda b: b[: len(b) // 2] + rng.randbytes(64) + b[len(b) // 2 :], False),
        "binary": (lambda b: rng.randbytes(rng.randint(1, 2048)), False),
        "zero-bytes": (lambda b: b"", False),
        "unclosed-cdata": (lambda b: b.replace(b"<title>", b"<title><![CDATA[", 1), False),
        "html-page": (lambda b: b"<!DOCTYPE html><html><body>" + b + b"</body></html>", False),
    }


def generated_corpus(seed: int = 20260302, per_pair: int = 8) -> Iterator[tuple[str, bytes, list[Entry], bool]]:
    rng = random.Random(seed)
    for dialect in ("rss091", "rss20", "atom03", "atom10", "rdf"):
        for mutation, (mutate, exact) in _mutations(rng).items():
            for copy in range(per_pair):
                entries = _entries(rng)
                yield f"{dialect}-{mutation}-{copy}", mutate(render_feed(dialect, entries)), entries, exact  # type: ignore[operator]


def test_the_generated_corpus_never_crashes_and_counts_every_dropped_entry() -> None:
    tried = errors = exact_checked = 0
    for name, body, entries, exact in generated_corpus():
        tried += 1
        feed = Feed(f"https://gen.example.com/{name}.xml")
        outcome = run(feed, body)
        if isinstance(outcome, FeedError):
            errors += 1
            assert not exact or not entries, f"{name}: an intact feed was refused: {outcome}"
            continue
        assert len(outcome.items) + outcome.skipped <= max(len(entries), 0) or not exact, name
        if exact:
            exact_checked += 1
            usable = sum(1 for e in entries if e.usable and not (e.link or "").startswith("javascript:"))
            assert (len(outcome.items), outcome.skipped) == (usable, len(entries) - usable), name
    assert tried == 5 * 13 * 8 and exact_checked > 100 and errors > 30


def test_a_huge_title_and_a_huge_feed_stay_bounded() -> None:
    huge_title = Entry("Long " + "word " * 200_000, "https://gen.example.com/long", None)
    many = [Entry(f"Story {n}", f"https://gen.example.com/{n}", "2026-03-01T00:00:00Z") for n in range(3000)]
    outcome = run(Feed("https://gen.example.com/huge.xml"), render_feed("rss20", [huge_title, *many]))
    assert isinstance(outcome, Extraction)
    assert len(outcome.items) == 3001 and outcome.skipped == 0
    assert 490 <= len(outcome.items[0].headline) <= 500

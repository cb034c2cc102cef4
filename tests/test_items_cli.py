"""`pipeline fetch` then `pipeline items --json`, end to end, with HTTP through a vcrpy cassette.

The cassette (tests/cassettes/fetch_then_items.yaml) was recorded against `feed_server` on 127.0.0.1
serving the sample feeds of tests/data/feeds/. The server's port changes every run, so requests are
normalised to one host before recording and matched without host or port. Delete the cassette (or set
PIPELINE_VCR_RECORD_MODE=all) to record it again; the test then checks the server was really asked.

The items expected are the golden ones of tests/data/feeds/*.items.json, so a broken extraction, a
broken fetch (gzip, charset, conditional GET) or a broken store fails this test.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import vcr
from click.testing import CliRunner

from conftest import FeedServer, Route, project_store, write_feeds
from pipeline.cli import cli
from pipeline.models import Guide, Item
from pipeline.select import select_further_reading

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
CASSETTES = Path(__file__).resolve().parent / "cassettes"
CASSETTE = CASSETTES / "fetch_then_items.yaml"
RECORDED_HOST = "feed-server.test"  # what every recorded request's host:port becomes
EPOCH = 1772755200  # 2026-03-06 00:00:00 UTC: first_seen of every item
JSON_KEYS = ["headline", "source", "date", "url", "feed"]

# Path served -> (golden sample, response headers). The gb2312 sample states its charset only in
# Content-Type; the Atom one is gzip-compressed on the wire; Content-Location gives the RSS sample's
# relative link the base the publisher's own server would give it.
SERVED = {
    "/expatdesk/feed/": ("rss2-cdata-entities", {
        "Content-Type": "application/rss+xml; charset=UTF-8",
        "Content-Location": "https://news.expatdesk.example/feed/",
    }),
    "/rss/search?q=china+visa&hl=en-US": ("google-news", {"Content-Type": "application/xml; charset=utf-8"}),
    "/campus/feed.atom": ("atom-xml-base", {"Content-Type": "application/atom+xml", "Content-Encoding": "gzip"}),
    "/asia-briefing/rss": ("rss1-rdf", {"Content-Type": "application/rdf+xml"}),
    "/shanghai-life/rss.xml": ("gb2312-http-charset", {"Content-Type": "text/xml; charset=gb2312"}),
}


def golden(name: str) -> dict:
    return json.loads((FEEDS / f"{name}.items.json").read_text(encoding="utf-8"))


def serve_samples(server: FeedServer) -> None:
    for path, (name, headers) in SERVED.items():
        body = (FEEDS / f"{name}.xml").read_bytes()
        if headers.get("Content-Encoding") == "gzip":
            body = gzip.compress(body, mtime=0)
        server.routes[path] = Route(body, headers=headers, etag=f'"{name}-v1"')


def normalise_host(request: vcr.request.Request) -> vcr.request.Request:
    parts = urlsplit(request.uri)
    request.uri = urlunsplit((parts.scheme, RECORDED_HOST, parts.path, parts.query, parts.fragment))
    if "host" in request.headers:
        request.headers["host"] = RECORDED_HOST
    return request


def feed_cassette() -> vcr.VCR:
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode=os.environ.get("PIPELINE_VCR_RECORD_MODE", "once"),
        # Applied before matching as well as before recording: the port of this run never matters.
        before_record_request=normalise_host,
        match_on=["method", "scheme", "path", "query"],
        decode_compressed_response=False,  # keep gzip on the wire, so replay exercises our decoder
    )


def expected_items(base_url: str) -> list[dict[str, object]]:
    """The goldens, as `items --json` lists them: newest first, undated last, then feed and guid."""
    rows = []
    for path, (name, _headers) in SERVED.items():
        for item in golden(name)["items"]:
            rows.append({
                "headline": item["headline"], "source": item["source"], "date": item["date"],
                "url": item["url"], "feed": base_url + path, "guid": item["guid"],
                "first_seen": dt.datetime.fromtimestamp(EPOCH, dt.timezone.utc).isoformat(),
                "summary": item["summary"],
                "source_url": item["source_url"],
            })
    rows.sort(key=lambda r: (r["date"] is None, r["feed"], r["guid"]))
    rows.sort(key=lambda r: r["date"] or "", reverse=True)
    return rows


@pytest.mark.both_backends
def test_fetch_then_items_json_through_the_cassette(project: Path, feed_server: FeedServer) -> None:
    serve_samples(feed_server)
    publishers = {"atom-xml-base": golden("atom-xml-base")["feed"]["publisher"]}
    write_feeds(project, *(
        {"url": feed_server.url(path), **({"publisher": publishers[name]} if name in publishers else {})}
        for path, (name, _headers) in SERVED.items()
    ))
    replaying = CASSETTE.exists() and os.environ.get("PIPELINE_VCR_RECORD_MODE", "once") == "once"
    runner = CliRunner(env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    root = ["--root", str(project)]

    with feed_cassette().use_cassette(CASSETTE.name) as cassette:
        first = runner.invoke(cli, [*root, "fetch"])
        second = runner.invoke(cli, [*root, "fetch"])  # conditional GET: every feed answers 304
        assert cassette.all_played if replaying else len(cassette) == 2 * len(SERVED)

    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == (
        f"fetched {len(SERVED)} feeds: {len(SERVED)} ok (0 not modified), 0 failed, "
        f"{sum(len(golden(name)['items']) for name, _ in SERVED.values())} new items"
    )
    assert second.exit_code == 0, second.output
    assert f"{len(SERVED)} ok ({len(SERVED)} not modified)" in second.stdout
    if replaying:
        assert feed_server.requests == []  # every answer came from the cassette
    else:
        assert len(feed_server.requests) == 2 * len(SERVED)

    listed = runner.invoke(cli, [*root, "items", "--json"])

    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.stdout)
    assert items == expected_items(feed_server.base_url)
    for item in items:
        assert list(item)[: len(JSON_KEYS)] == JSON_KEYS
        assert item["date"] is None or dt.date.fromisoformat(item["date"]).isoformat() == item["date"]
        assert item["url"].startswith(("http://", "https://"))


def test_cassette_is_committed_and_host_independent() -> None:
    # Without a committed cassette every run would quietly record against the live server.
    text = CASSETTE.read_text(encoding="utf-8")
    assert f"http://{RECORDED_HOST}/expatdesk/feed/" in text
    assert "127.0.0.1" not in text


@pytest.mark.both_backends
def test_items_json_is_an_array_with_the_documented_fields(project: Path) -> None:
    with project_store(project) as store:
        store.save_items(
            [
                Item("https://a.example/rss", "1", "Dated story", "A News", dt.date(2026, 3, 6), "https://a.example/1"),
                Item("https://a.example/rss", "2", "Undated story", "A News", None, "https://a.example/2"),
            ],
            dt.datetime(2026, 3, 6, 12, tzinfo=dt.timezone.utc),
        )

    result = CliRunner().invoke(cli, ["--root", str(project), "items", "--json"])

    assert result.exit_code == 0
    assert [{key: row[key] for key in JSON_KEYS} for row in json.loads(result.stdout)] == [
        {"headline": "Dated story", "source": "A News", "date": "2026-03-06", "url": "https://a.example/1",
         "feed": "https://a.example/rss"},
        {"headline": "Undated story", "source": "A News", "date": None, "url": "https://a.example/2",
         "feed": "https://a.example/rss"},
    ]


def test_items_json_on_an_empty_store_is_an_empty_array(project: Path) -> None:
    result = CliRunner().invoke(cli, ["--root", str(project), "items", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


@pytest.mark.both_backends
def test_undated_item_is_stored_but_never_listed_as_further_reading(project: Path, feed_server: FeedServer) -> None:
    serve_samples(feed_server)
    write_feeds(project, {"url": feed_server.url("/expatdesk/feed/")})
    assert CliRunner().invoke(cli, ["--root", str(project), "fetch"]).exit_code == 0
    with project_store(project) as store:
        items = store.items()
    undated = [i for i in items if i.date is None]
    assert {i.headline for i in undated} == {"Metro fares change on Line 2 from April", "Listed with an unreadable date"}
    # A guide that matches every word of the undated headlines, with no age limit to speak of.
    guide = Guide(slug="t", path=project / "t.md", title="T", keywords=("metro", "fares", "date", "listed", "wechat", "hospital"),
                  further_reading_count=10, max_age_days=100000)
    chosen = select_further_reading(items, guide, dt.date(2026, 3, 6))
    assert chosen  # the guide does pick dated items...
    assert not {i.guid for i in chosen} & {i.guid for i in undated}  # ...never an undated one


@pytest.mark.both_backends
@pytest.mark.parametrize("flag", [[], ["--limit", "1"]])
def test_items_table_lists_newest_first(project: Path, flag: list[str]) -> None:
    with project_store(project) as store:
        store.save_items(
            [
                Item("https://a.example/rss", "old", "Older story", "A News", dt.date(2026, 3, 1), "https://a.example/o"),
                Item("https://a.example/rss", "new", "Newer story", "A News", dt.date(2026, 3, 6), "https://a.example/n"),
            ],
            dt.datetime(2026, 3, 6, 12, tzinfo=dt.timezone.utc),
        )
    result = CliRunner().invoke(cli, ["--root", str(project), "items", *flag])
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2026-03-06") and lines[0].endswith("Newer story")
    assert len(lines) == (1 if flag else 2)


@pytest.mark.both_backends
def test_first_seen_never_moves_and_known_items_are_not_new_again(project: Path) -> None:
    first_run = dt.datetime(2026, 3, 5, 8, tzinfo=dt.timezone.utc)
    later_run = dt.datetime(2026, 3, 6, 8, tzinfo=dt.timezone.utc)
    story = Item("https://a.example/rss", "g1", "Story", "A News", dt.date(2026, 3, 5), "https://a.example/1")
    with project_store(project) as store:
        assert store.save_items([story], first_run) == 1
        # The publisher corrects the headline; the item is updated, not new, and keeps its first sighting.
        corrected = Item(story.feed_url, story.guid, "Story (corrected)", "A News", story.date, story.url)
        assert store.save_items([corrected], later_run) == 0
        (stored,) = store.items()
    assert stored.headline == "Story (corrected)"
    assert stored.first_seen == first_run

"""`pipeline sources`: one row per feed, failing feeds stand out."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FeedServer, Route, write_feeds
from review_support import PAYMENT_STORIES, rss, run


def _two_feeds(project: Path, feed_server: FeedServer) -> tuple[str, str]:
    feed_server.routes["/pay.xml"] = Route(rss("Pay News", PAYMENT_STORIES), etag='"pay-1"')
    feed_server.routes["/broken.xml"] = Route(b"upstream exploded", status=500,
                                              headers={"Content-Type": "text/plain"})
    good, bad = feed_server.url("/pay.xml"), feed_server.url("/broken.xml")
    write_feeds(project, {"url": good, "publisher": "Pay News"}, {"url": bad, "publisher": "Broken Times"})
    return good, bad


def test_sources_shows_one_row_per_feed_and_marks_the_failing_one(project: Path, feed_server: FeedServer) -> None:
    good, bad = _two_feeds(project, feed_server)
    assert run(project, "fetch", "--quiet").exit_code == 0
    assert run(project, "fetch", "--quiet").exit_code == 0  # good: 304 now; bad: two failures in a row

    result = run(project, "sources")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PUBLISHER", "LAST", "SUCCESS", "STATUS", "ITEMS", "FAILS", "URL", "/", "LAST", "ERROR"]
    good_row = next(line for line in lines if line.endswith(good))
    bad_row = next(line for line in lines if line.endswith(bad))
    assert good_row.split() == ["Pay", "News", "2025-03-01", "12:00", "304", "2", "0", good]
    assert bad_row.split() == ["!!", "Broken", "Times", "never", "500", "0", "2", bad]
    assert not good_row.startswith("!!")
    # The failing feed's last error is printed right under its row.
    error_line = lines[lines.index(bad_row) + 1]
    assert "last error: HTTP 500" in error_line
    assert sum(1 for line in lines if "last error" in line) == 1


def test_sources_json_has_every_field(project: Path, feed_server: FeedServer) -> None:
    good, bad = _two_feeds(project, feed_server)
    assert run(project, "fetch", "--quiet").exit_code == 0

    result = run(project, "sources", "--json")

    assert result.exit_code == 0, result.stderr
    rows = {row["url"]: row for row in json.loads(result.stdout)}
    assert list(rows) == [good, bad]
    assert rows[good] == {
        "publisher": "Pay News", "url": good, "last_success": "2025-03-01 12:00", "last_status": "200",
        "items": 2, "failures": 0, "retry_after": None, "last_error": None, "flags": [],
    }
    assert rows[bad]["last_success"] is None
    assert rows[bad]["last_status"] == "500"
    assert rows[bad]["items"] == 0
    assert rows[bad]["failures"] == 1
    assert rows[bad]["last_error"].startswith("HTTP 500")


def test_sources_lists_feeds_never_fetched(project: Path, feed_server: FeedServer) -> None:
    good, bad = _two_feeds(project, feed_server)
    result = run(project, "sources")
    assert result.exit_code == 0
    rows = [line for line in result.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 2
    assert all("never" in row and not row.startswith("!!") for row in rows)

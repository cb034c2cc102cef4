"""`pipeline sources` flags a feed that answers but adds nothing for three times its usual interval,
and one whose items are dated in the future."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from conftest import FeedServer, Route, write_feeds
from review_support import NOW, Story, rss, run

from pipeline.feedhealth import feed_flags
from pipeline.models import FeedState, Item

DAY = dt.timedelta(days=1)


def items(*days_ago: int) -> list[Item]:
    return [Item("f", f"g{n}", "H", "S", NOW.date() - n * DAY, f"https://e.example/{n}") for n in days_ago]


ANSWERS = FeedState("f", last_success=NOW, last_status="304")


def test_a_feed_quiet_for_three_times_its_usual_interval_is_flagged() -> None:
    daily_until_a_week_ago = items(7, 8, 9, 10, 11)  # one a day, then nothing for 7 days: 7 > 3 x 1
    assert feed_flags(daily_until_a_week_ago, ANSWERS, NOW) == [
        "quiet: no new item for 7 days (usually one every 1 day(s))"]
    weekly = items(2, 9, 16, 23)  # a weekly feed two days after its last story is fine
    assert feed_flags(weekly, ANSWERS, NOW) == []
    assert feed_flags(items(3, 4, 5), ANSWERS, NOW) == []  # 3 days = 3 x 1 is not more than three times
    assert feed_flags(items(30, 31), ANSWERS, NOW) == []  # two dates say nothing about a usual interval
    failing = FeedState("f", last_success=NOW - 20 * DAY, consecutive_failures=4)
    assert feed_flags(daily_until_a_week_ago, failing, NOW) == []  # a failing feed shows as failing instead
    assert feed_flags(daily_until_a_week_ago, None, NOW) == []


def test_items_dated_in_the_future_are_flagged_beyond_the_furthest_time_zone() -> None:
    tomorrow_somewhere = items(-1, 0, 1, 2)  # 14 hours ahead of UTC it is already tomorrow
    late = NOW.replace(hour=12)
    assert feed_flags(tomorrow_somewhere, ANSWERS, late) == []
    future = items(-30, 0, 1, 2)
    assert feed_flags(future, ANSWERS, NOW) == [
        f"1 item date(s) in the future (latest {(NOW.date() + 30 * DAY).isoformat()})"]


def test_sources_shows_the_flags(project: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/quiet.xml"] = Route(rss("Quiet", [Story(f"Story {n}", f"s{n}", n) for n in (10, 11, 12, 13)]),
                                             etag='"q"')
    feed_server.routes["/fine.xml"] = Route(rss("Fine", [Story(f"Item {n}", f"i{n}", n) for n in (0, 1, 2, 3)],
                                                host="fine.example.com"), etag='"f"')
    quiet, fine = feed_server.url("/quiet.xml"), feed_server.url("/fine.xml")
    write_feeds(project, {"url": quiet, "publisher": "Quiet Daily"}, {"url": fine, "publisher": "Fine Daily"})
    assert run(project, "fetch", "--quiet").exit_code == 0
    table = run(project, "sources")
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    quiet_row = next(line for line in lines if line.endswith(quiet))
    assert quiet_row.startswith("!!")
    assert "quiet: no new item for 10 days (usually one every 1 day(s))" in lines[lines.index(quiet_row) + 1]
    assert not next(line for line in lines if line.endswith(fine)).startswith("!!")
    rows = {row["url"]: row for row in json.loads(run(project, "sources", "--json").stdout)}
    assert rows[quiet]["flags"] == ["quiet: no new item for 10 days (usually one every 1 day(s))"]
    assert rows[fine]["flags"] == []

"""Feeds that answer but say nothing new, or date their items in the future: for `pipeline sources`.

A feed's usual interval is the median gap between the publication dates of its stored items. A feed
that still answers but whose newest item is older than QUIET_AFTER times that interval has gone
quiet (a publisher moved the feed, or the query behind it stopped matching); a feed with an item dated
later than today anywhere on Earth has a broken clock or time zone.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable

from .models import FeedState, Item

QUIET_AFTER = 3  # times the usual interval
MIN_DATES = 3  # distinct publication dates before a feed has a usual interval
_EARLIEST_ZONE = dt.timedelta(hours=14)  # the furthest-ahead UTC offset: later than this is the future


def feed_flags(items: Iterable[Item], state: FeedState | None, now: dt.datetime) -> list[str]:
    """What a person should look at for one feed, one short phrase each; [] when nothing."""
    latest_possible = (now + _EARLIEST_ZONE).date()
    dates = sorted({item.date for item in items if item.date is not None})
    flags: list[str] = []
    future = [date for date in dates if date > latest_possible]
    if future:
        flags.append(f"{len(future)} item date(s) in the future (latest {future[-1].isoformat()})")
    past = [date for date in dates if date <= latest_possible]
    answers = state is not None and state.last_success is not None and state.consecutive_failures == 0
    if answers and len(past) >= MIN_DATES:
        usual = max(1.0, statistics.median((b - a).days for a, b in zip(past, past[1:])))
        silent = (now.date() - past[-1]).days
        if silent > QUIET_AFTER * usual:
            flags.append(f"quiet: no new item for {silent} days (usually one every {usual:g} day(s))")
    return flags

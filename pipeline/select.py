"""Items + Guide -> the guide's Further Reading: recent, relevant, varied, never duplicated."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache
from urllib.parse import urlsplit

from .models import Guide, Item

_WORD = re.compile(r"\w+", re.UNICODE)
# Items carry the date in the publisher's own UTC offset. A story dated "tomorrow" in UTC terms is
# not in the future when its publisher is ahead of UTC (Beijing is +08:00); the furthest-ahead offset
# on Earth is +14:00, so only a date later than today there is really in the future.
_EARLIEST_ZONE = dt.timedelta(hours=14)


# Every guide looks at every stored headline: computed once per headline, not once per guide.
@lru_cache(maxsize=1 << 16)
def headline_key(headline: str) -> str:
    """The headline up to case and punctuation: two items with the same key are one story."""
    folded = unicodedata.normalize("NFKC", headline).casefold()
    return " ".join(_WORD.findall(folded))


@lru_cache(maxsize=1 << 16)
def _web_link(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def relevance(item: Item, guide: Guide, feed_tags: Iterable[str] = ()) -> int:
    """How strongly an item matches the guide: keyword hits in the headline, plus shared feed tags."""
    words = f" {headline_key(item.headline)} "
    score = 0
    for keyword in guide.keywords:
        key = headline_key(keyword)
        if key and f" {key} " in words:
            score += 2
    if set(feed_tags) & set(guide.tags):
        score += 1
    return score


def guide_scorer(guide: Guide, feed_tags: dict[str, tuple[str, ...]]) -> Callable[[Item], int]:
    """relevance() for one guide, with the guide's side (keywords, tags) worked out once, not per item."""
    keys = [f" {key} " for key in map(headline_key, guide.keywords) if key]
    tags = set(guide.tags)
    bonus: dict[str, int] = {}

    def score(item: Item) -> int:
        words = f" {headline_key(item.headline)} "
        tag = bonus.get(item.feed_url)
        if tag is None:
            tag = bonus[item.feed_url] = int(bool(set(feed_tags.get(item.feed_url, ())) & tags))
        return 2 * sum(1 for key in keys if key in words) + tag

    return score


def select_further_reading(
    items: Iterable[Item],
    guide: Guide,
    now: dt.datetime | dt.date,
    feed_tags: dict[str, tuple[str, ...]] | None = None,
) -> list[Item]:
    """Up to guide.further_reading_count items, most relevant then newest, one per publisher if possible.

    Items must be dated within the guide's maximum age and not in the future (a date is compared
    with today's date in the publisher's time zone, so `now` should be an aware datetime; a plain
    date is taken as today everywhere), link over http(s), and match the guide by at least one
    keyword or feed tag. Undated items are never listed.
    """
    feed_tags = feed_tags or {}
    if isinstance(now, dt.datetime):
        utc = now.astimezone(dt.timezone.utc) if now.tzinfo else now
        today, latest = utc.date(), (utc + _EARLIEST_ZONE).date()
    else:
        today = latest = now
    oldest = today - dt.timedelta(days=guide.max_age_days)
    candidates = [
        i for i in items
        if i.date is not None and oldest <= i.date <= latest and _web_link(i.url)
    ]

    # One story carried by several feeds under one canonical link: the earliest-dated copy stands for
    # it, and the story is as relevant as its best-matching copy (feeds retitle syndicated stories).
    by_link: dict[str, Item] = {}
    story_score: dict[str, int] = {}
    relevance_of = guide_scorer(guide, feed_tags)
    for item in sorted(candidates, key=lambda i: (i.date, i.feed_url, i.guid)):
        by_link.setdefault(item.url, item)
        score = relevance_of(item)
        story_score[item.url] = max(score, story_score.get(item.url, 0))

    scored = [(story_score[url], i) for url, i in by_link.items()]
    ranked = sorted(
        ((score, item) for score, item in scored if score > 0),
        key=lambda pair: (-pair[0], -pair[1].date.toordinal(), headline_key(pair[1].headline), pair[1].url),  # type: ignore[union-attr]
    )

    unique: list[Item] = []
    seen_headlines: set[str] = set()
    for _score, item in ranked:
        key = headline_key(item.headline)
        if key in seen_headlines:
            continue
        seen_headlines.add(key)
        unique.append(item)

    count = guide.further_reading_count
    chosen: list[Item] = []
    publishers: set[str] = set()
    for item in unique:  # first pass: one item per publisher
        if len(chosen) == count:
            break
        if item.source.casefold() not in publishers:
            chosen.append(item)
            publishers.add(item.source.casefold())
    for item in unique:  # then fill up when there are not enough publishers
        if len(chosen) == count:
            break
        if item not in chosen:
            chosen.append(item)
    order = {id(item): rank for rank, item in enumerate(unique)}
    return sorted(chosen, key=lambda i: order[id(i)])

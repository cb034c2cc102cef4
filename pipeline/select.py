"""Items + Guide -> the guide's Further Reading: recent, relevant, varied, never duplicated."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache

from .models import Guide, Item
from .urls import is_web_url

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
    return Candidates(items, now, guide.max_age_days).select(guide, feed_tags or {})


class Candidates:
    """The items one age window offers, worked out once for every guide that shares the window.

    What does not depend on the guide is done here: the date and link filter, grouping copies of
    one story (several feeds, one canonical link), the tie-break order, and an index of headline
    words. A guide then costs a lookup per keyword instead of a pass over every item per keyword.
    """

    def __init__(self, items: Iterable[Item], now: dt.datetime | dt.date, max_age_days: int) -> None:
        if isinstance(now, dt.datetime):
            utc = now.astimezone(dt.timezone.utc) if now.tzinfo else now
            today, latest = utc.date(), (utc + _EARLIEST_ZONE).date()
        else:
            today = latest = now
        oldest = today - dt.timedelta(days=max_age_days)
        candidates = sorted(
            (i for i in items if i.date is not None and oldest <= i.date <= latest and is_web_url(i.url)),
            key=lambda i: (i.date, i.feed_url, i.guid),
        )
        # One story carried by several feeds under one canonical link: the earliest-dated copy stands
        # for it, and the story is as relevant as its best-matching copy (feeds retitle stories).
        story_of: dict[str, int] = {}
        self._stories: list[Item] = []
        self._copies: list[Item] = []  # every candidate, as a copy of story self._story[n]
        self._story: list[int] = []
        for item in candidates:
            story = story_of.setdefault(item.url, len(self._stories))
            if story == len(self._stories):
                self._stories.append(item)
            self._copies.append(item)
            self._story.append(story)
        # Among equally relevant stories: newest first, then by headline, then by link (unique).
        order = sorted(range(len(self._stories)), key=lambda n: (
            -self._stories[n].date.toordinal(), headline_key(self._stories[n].headline), self._stories[n].url))  # type: ignore[union-attr]
        self._rank = [0] * len(self._stories)
        for rank, story in enumerate(order):
            self._rank[story] = rank
        self._padded = [f" {headline_key(copy.headline)} " for copy in self._copies]
        self._with_word: dict[str, list[int]] = {}  # headline word -> copies using it
        self._by_feed: dict[str, list[int]] = {}
        for number, copy in enumerate(self._copies):
            for word in set(self._padded[number].split()):
                self._with_word.setdefault(word, []).append(number)
            self._by_feed.setdefault(copy.feed_url, []).append(number)

    def _copies_matching(self, key: str) -> list[int]:
        """Copies whose headline holds `key` as whole words (relevance()'s test, through the index)."""
        words = key.split()
        found = self._with_word.get(words[0], [])
        if len(words) == 1:
            return found
        padded = f" {key} "
        return [n for n in found if padded in self._padded[n]]

    def scores(self, guide: Guide, feed_tags: dict[str, tuple[str, ...]]) -> dict[int, int]:
        """Story -> relevance of its best copy, for stories that match at all."""
        copy_score: dict[int, int] = {}
        for key in map(headline_key, guide.keywords):
            if key:
                for number in self._copies_matching(key):
                    copy_score[number] = copy_score.get(number, 0) + 2
        tags = set(guide.tags)
        for feed, copies in self._by_feed.items():
            if tags & set(feed_tags.get(feed, ())):
                for number in copies:
                    copy_score[number] = copy_score.get(number, 0) + 1
        best: dict[int, int] = {}
        for number, score in copy_score.items():
            story = self._story[number]
            if score > best.get(story, 0):
                best[story] = score
        return best

    def _ranked(self, best: dict[int, int]) -> Iterator[Item]:
        """Matching stories, most relevant first; ties in the window's order. Lazy: a guide reads few."""
        by_score: dict[int, list[int]] = {}
        for story, score in best.items():
            by_score.setdefault(score, []).append(story)
        for score in sorted(by_score, reverse=True):
            for story in sorted(by_score[score], key=self._rank.__getitem__):
                yield self._stories[story]

    def select(self, guide: Guide, feed_tags: dict[str, tuple[str, ...]]) -> list[Item]:
        """select_further_reading() for one guide of this window."""
        count = guide.further_reading_count
        if count <= 0:
            return []
        unique: list[Item] = []  # ranked stories, one per headline, as far as we looked
        seen_headlines: set[str] = set()
        chosen: list[Item] = []
        publishers: set[str] = set()
        for item in self._ranked(self.scores(guide, feed_tags)):
            key = headline_key(item.headline)
            if key in seen_headlines:
                continue
            seen_headlines.add(key)
            unique.append(item)
            if item.source.casefold() not in publishers:  # first pass: one item per publisher
                chosen.append(item)
                publishers.add(item.source.casefold())
                if len(chosen) == count:
                    break
        else:
            for item in unique:  # then fill up when there are not enough publishers
                if len(chosen) == count:
                    break
                if item not in chosen:
                    chosen.append(item)
        order = {id(item): rank for rank, item in enumerate(unique)}
        return sorted(chosen, key=lambda i: order[id(i)])

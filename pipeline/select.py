"""Items + Guide -> the guide's Further Reading: recent, relevant, varied, never duplicated."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from .models import Guide, Item
from .urls import is_web_url, link_target

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


# Evidence weights: a guide's words in the headline say more than in the summary, and a phrase (two
# or more words that must stand together) says more than a lone keyword.
KEYWORD_IN_HEADLINE, KEYWORD_IN_SUMMARY = 4, 2
PHRASE_IN_HEADLINE, PHRASE_IN_SUMMARY = 6, 3
# The least evidence that lists a story: one keyword or phrase in the headline, or two of them in the
# summary. A lone mention in a summary is too often a passing one ("...paid with Alipay").
ENOUGH_EVIDENCE = 4
SHARED_TAG = 1  # only ever added to a story that has enough evidence already: it breaks ties
_PLURAL_KEEP = ("ss", "us", "is", "ous")
_NOT_PLURAL = frozenset({"news", "gas", "has", "was", "its", "yes", "always", "perhaps", "atlas", "canvas"})


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A word without its plural ending, so permit and permits, policy and policies are one word."""
    if word in _NOT_PLURAL:
        return word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(_PLURAL_KEEP):
        return word[:-1]
    return word


@lru_cache(maxsize=1 << 16)
def stems(text: str) -> str:
    """Text as its stemmed words, space-padded: ` a b ` holds the run `a b` iff ` a b ` is in it."""
    return " " + " ".join(stem(word) for word in headline_key(text).split()) + " "


@dataclass(frozen=True)
class Terms:
    """A guide's words, stemmed once: what counts as evidence, what vetoes, what is required."""

    keywords: tuple[str, ...]
    phrases: tuple[str, ...]
    exclude: tuple[str, ...]
    require: tuple[str, ...]

    @classmethod
    def of(cls, guide: Guide) -> Terms:
        def keys(words: Iterable[str]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(k for k in (stems(w).strip() for w in words) if k))

        return cls(keys(guide.keywords), keys(guide.phrases), keys(guide.exclude), keys(guide.require))


@dataclass(frozen=True)
class Evidence:
    """How one copy of a story matches a guide."""

    score: int = 0  # keyword and phrase weights; the shared tag is added on top
    found: tuple[str, ...] = ()  # the guide's words it holds, "headline:" or "summary:" first
    veto: str | None = None  # why it can never be listed, however strong the evidence

    @property
    def enough(self) -> bool:
        return self.veto is None and self.score >= ENOUGH_EVIDENCE


def weigh(headline: str, summary: str, terms: Terms) -> Evidence:
    """The evidence in one headline and summary (both as stems()), vetoes included."""
    score = 0
    found: list[str] = []
    for kinds, in_headline, in_summary in ((terms.keywords, KEYWORD_IN_HEADLINE, KEYWORD_IN_SUMMARY),
                                           (terms.phrases, PHRASE_IN_HEADLINE, PHRASE_IN_SUMMARY)):
        for key in kinds:
            padded = f" {key} "
            if padded in headline:
                score += in_headline
                found.append(f"headline: {key}")
            elif padded in summary:
                score += in_summary
                found.append(f"summary: {key}")
    return Evidence(score, tuple(found), veto((headline + summary,), terms))


def veto(texts: Iterable[str], terms: Terms) -> str | None:
    """Why a story (the stems() of all its copies' headlines and summaries) may never be listed: an
    excluded word anywhere in it, or a required word nowhere in it."""
    texts = tuple(texts)
    for key in terms.exclude:
        if any(f" {key} " in text for text in texts):
            return f"holds excluded {key!r}"
    for key in terms.require:
        if not any(f" {key} " in text for text in texts):
            return f"lacks required {key!r}"
    return None


def relevance(item: Item, guide: Guide, feed_tags: Iterable[str] = ()) -> int:
    """How strongly an item matches the guide; 0 means it is never listed.

    Keywords and phrases in the headline and (weighing less) the summary are the evidence; an
    exclude word vetoes, a missing require word too; a feed tag shared with the guide adds a little
    to a story that has enough evidence of its own, and nothing to one that has not.
    """
    evidence = weigh(stems(item.headline), stems(item.summary), Terms.of(guide))
    if not evidence.enough:
        return 0
    return evidence.score + (SHARED_TAG if set(feed_tags) & set(guide.tags) else 0)


def select_further_reading(
    items: Iterable[Item],
    guide: Guide,
    now: dt.datetime | dt.date,
    feed_tags: dict[str, tuple[str, ...]] | None = None,
    excluded: Collection[str] = (),
) -> list[Item]:
    """Up to guide.further_reading_count items, most relevant then newest, one per publisher if possible.

    Items must be dated within the guide's maximum age and not in the future (a date is compared
    with today's date in the publisher's time zone, so `now` should be an aware datetime; a plain
    date is taken as today everywhere), link over http(s) to a page not in `excluded` (dead links,
    links a reviewer removed), and hold enough evidence of relevance (see relevance()). Undated
    items are never listed. An empty slot is better than an unrelated story.
    """
    return Candidates(items, now, guide.max_age_days).select(guide, feed_tags or {}, excluded)


# Sites whose links are redirects to someone else's story, never the story itself.
AGGREGATOR_HOSTS = frozenset({"news.google.com"})


# Most links are plain http(s)://host[:port]/...: their host is read without urlsplit (every stored
# item's link is looked at by every build and refresh).
_PLAIN_HOST = re.compile(r"https?://([A-Za-z0-9.-]+)(?::[0-9]*)?(?:[/?#]|$)")


def _site(url: str) -> str:
    plain = _PLAIN_HOST.match(url)
    host = plain.group(1).lower() if plain else (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _publisher_links(items: list[Item]) -> dict[int, str]:
    """Aggregated item number -> the link of the publisher's own copy of the same story.

    An item is aggregated when its link is an aggregator's or the aggregator named another site as
    its source. The publisher's copy has the same headline (up to case and punctuation) and a link on
    the source's site, or, when the aggregator named no site, the same publisher name. An aggregated
    item without such a copy keeps its own link.
    """
    by_site: dict[tuple[str, str], str] = {}
    by_name: dict[tuple[str, str], str] = {}
    aggregated: list[int] = []
    for number, item in enumerate(items):
        site = _site(item.url)
        if site in AGGREGATOR_HOSTS or item.source_url:
            aggregated.append(number)
            continue
        key = headline_key(item.headline)
        by_site.setdefault((key, site), item.url)
        by_name.setdefault((key, item.source.casefold()), item.url)
    links: dict[int, str] = {}
    for number in aggregated:
        item = items[number]
        key = headline_key(item.headline)
        own = (by_site.get((key, _site(item.source_url))) if item.source_url
               else by_name.get((key, item.source.casefold())))
        if own is not None:
            links[number] = own
    return links


@dataclass(frozen=True)
class Considered:
    """One story a guide looked at, for `pipeline explain`."""

    item: Item
    score: int  # as relevance() would give it (0: never listed)
    chosen: bool
    reason: str


def _is_excluded(url: str, excluded: Collection[str]) -> bool:
    """`excluded` names the link as stored, or as a draft writes it (urls.link_target)."""
    return bool(excluded) and (url in excluded or link_target(url) in excluded)


@dataclass(frozen=True)
class _Hits:
    """Where a window's copies hold one key, as masks of story ranks (see Candidates.select)."""

    headline: int  # stories carried by one copy, whose headline holds the key
    summary: int  # stories carried by one copy, whose summary holds the key and headline does not
    shared: tuple[tuple[int, bool], ...]  # (copy, in its headline) for stories with several copies
    holds: int  # stories any copy of which holds the key anywhere (what veto() looks for)


def _raise(levels: dict[int, int], mask: int, weight: int, least: int) -> None:
    """Move the stories of `mask` up `weight` levels, from every level of at least `least`."""
    for score in sorted(levels, reverse=True):  # from the top: a story moved up is not moved again
        if score < least:
            break
        moved = levels[score] & mask
        if moved:
            levels[score] ^= moved
            levels[score + weight] = levels.get(score + weight, 0) | moved


class Candidates:
    """The items one age window offers, worked out once for every guide that shares the window.

    What does not depend on the guide is done here: the date and link filter, grouping copies of
    one story (several feeds, one canonical link), the tie-break order, and an index of headline and
    summary words. A guide then costs a lookup per keyword instead of a pass over every item.
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
        # An aggregator's copy of a story the publisher's own feed carries too is a copy of that story,
        # and the publisher's copy stands for it, whichever is older: readers get the publisher's link.
        own_link = _publisher_links(candidates)
        self._copies_of: list[list[int]] = []
        for number, item in enumerate(candidates):
            key = own_link.get(number, item.url)
            story = story_of.setdefault(key, len(self._stories))
            if story == len(self._stories):
                self._stories.append(item)
                self._copies_of.append([])
            elif item.url == key != self._stories[story].url:
                self._stories[story] = item
            self._copies.append(item)
            self._story.append(story)
            self._copies_of[story].append(number)
        # Among equally relevant stories: newest first, then by headline, then by link (unique).
        order = sorted(range(len(self._stories)), key=lambda n: (
            -self._stories[n].date.toordinal(), headline_key(self._stories[n].headline), self._stories[n].url))  # type: ignore[union-attr]
        self._rank = [0] * len(self._stories)
        for rank, story in enumerate(order):
            self._rank[story] = rank
        self._headline = [stems(copy.headline) for copy in self._copies]
        self._summary = [stems(copy.summary) if copy.summary else " " for copy in self._copies]
        self._index(order)

    def _index(self, order: list[int]) -> None:
        """The word indexes and story masks every guide of the window looks things up in."""
        # Stemmed word -> the copies holding it, in their headline and in their summary.
        self._in_headline: dict[str, set[int]] = {}
        self._in_summary: dict[str, set[int]] = {}
        for number in range(len(self._copies)):
            for word in self._headline[number].split():
                self._in_headline.setdefault(word, set()).add(number)
            for word in self._summary[number].split():
                self._in_summary.setdefault(word, set()).add(number)
        # select() works on sets of stories as integer bit masks, bit n standing for the story of rank
        # n: a set operation then costs a few machine words, and the lowest bit is the best-ranked story.
        self._by_rank = order
        self._lone = [self._rank[self._story[n]] if len(self._copies_of[self._story[n]]) == 1 else -1
                      for n in range(len(self._copies))]  # copy -> its story's rank, when it is the only copy
        self._in_feed: dict[str, int] = {}  # feed -> mask of the stories it alone carries
        for number, copy in enumerate(self._copies):
            if self._lone[number] >= 0:
                self._in_feed[copy.feed_url] = self._in_feed.get(copy.feed_url, 0) | 1 << self._lone[number]
        self._hits: dict[str, _Hits] = {}  # stemmed key -> where it is found, worked out once per window

    def _evidence(self, guide: Guide, feed_tags: dict[str, tuple[str, ...]]) -> dict[int, tuple[int, Evidence]]:
        """Story -> (score, evidence of its best copy), for stories holding any of the guide's words.

        Only copies holding a keyword's or phrase's first word are weighed: a guide never scans the
        window. A veto found in any copy holds for the story: the copies are one article.
        """
        terms = Terms.of(guide)
        touched: set[int] = set()
        for key in (*terms.keywords, *terms.phrases):
            first = key.split()[0]
            touched.update(self._in_headline.get(first, ()), self._in_summary.get(first, ()))
        tagged_feeds = {feed for feed, tags in feed_tags.items() if set(tags) & set(guide.tags)}
        best: dict[int, tuple[int, Evidence]] = {}
        plain = Terms(terms.keywords, terms.phrases, (), ())  # vetoes are judged per story, below
        for number in sorted(touched):
            evidence = weigh(self._headline[number], self._summary[number], plain)
            if not evidence.found:
                continue  # the first word of a run, without the rest
            tag = SHARED_TAG if evidence.enough and self._copies[number].feed_url in tagged_feeds else 0
            story = self._story[number]
            if story not in best or evidence.score + tag > best[story][0]:
                best[story] = (evidence.score + tag, evidence)
        if terms.exclude or terms.require:
            for story, (score, evidence) in best.items():
                why = veto((self._headline[n] + self._summary[n] for n in self._copies_of[story]), terms)
                if why:
                    best[story] = (score, Evidence(evidence.score, evidence.found, why))
        return best

    def scores(self, guide: Guide, feed_tags: dict[str, tuple[str, ...]]) -> dict[int, int]:
        """Story -> relevance, for the stories that may be listed (relevance() through the index)."""
        return {story: score for story, (score, why) in self._evidence(guide, feed_tags).items() if why.enough}

    def select(self, guide: Guide, feed_tags: dict[str, tuple[str, ...]],
               excluded: Collection[str] = ()) -> list[Item]:
        """select_further_reading() for one guide of this window.

        Stories linked from `excluded` (as stored, or as urls.link_target writes the link in a draft)
        are passed over: a dead link, or a story a reviewer deleted from this draft's list, so the
        next best story takes the slot.

        The same choice as explain() makes, without explaining: scores come from the window's memo of
        where each key is found, and only the best-ranked stories are looked at one by one.
        """
        count = guide.further_reading_count
        if count <= 0:
            return []
        terms = Terms.of(guide)
        levels = self._levels(terms, guide.tags, feed_tags)
        listable = self._listable(terms)
        unique: list[int] = []  # listable stories, one per headline, in the order explain() ranks them
        seen_headlines: set[str] = set()
        chosen: set[int] = set()
        publishers: set[str] = set()
        for score in sorted(levels, reverse=True):
            if score < ENOUGH_EVIDENCE:
                break
            stories = levels[score] & listable
            while stories:
                lowest = stories & -stories
                stories ^= lowest
                rank = lowest.bit_length() - 1
                item = self._stories[self._by_rank[rank]]
                key = headline_key(item.headline)
                if key in seen_headlines or _is_excluded(item.url, excluded):
                    continue
                seen_headlines.add(key)
                unique.append(rank)
                if len(chosen) < count and item.source.casefold() not in publishers:  # one per publisher first
                    chosen.add(rank)
                    publishers.add(item.source.casefold())
                    if len(chosen) == count:
                        return [self._stories[self._by_rank[rank]] for rank in unique if rank in chosen]
        for rank in unique:  # then fill up when there are not enough publishers
            if len(chosen) >= count:
                break
            chosen.add(rank)
        return [self._stories[self._by_rank[rank]] for rank in unique if rank in chosen]

    def _hit(self, key: str) -> _Hits:
        """Where one stemmed keyword or phrase is found in the window: looked up once per window."""
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = self._find(key)
        return hits

    def _holding(self, key: str, index: dict[str, set[int]], texts: list[str]) -> set[int]:
        """The copies whose text (from `texts`, indexed by word in `index`) holds the run `key`."""
        words = key.split()
        if len(words) == 1:
            return set(index.get(key, ()))
        found = set.intersection(*(index.get(word, set()) for word in words))
        return {number for number in found if f" {key} " in texts[number]}

    def _find(self, key: str) -> _Hits:
        in_headline = self._holding(key, self._in_headline, self._headline)
        in_summary = self._holding(key, self._in_summary, self._summary) - in_headline
        masks = [0, 0]
        shared: list[tuple[int, bool]] = []
        holds = 0
        for where, numbers in enumerate((in_headline, in_summary)):
            for number in numbers:
                holds |= 1 << self._rank[self._story[number]]
                if self._lone[number] >= 0:
                    masks[where] |= 1 << self._lone[number]
                else:
                    shared.append((number, where == 0))
        return _Hits(masks[0], masks[1], tuple(shared), holds)

    def _levels(self, terms: Terms, tags: tuple[str, ...], feed_tags: dict[str, tuple[str, ...]]) -> dict[int, int]:
        """Score -> mask of the stories with that relevance (tag included), as _evidence() scores them.

        Scores are sums of weights, so a story moves up a level for each key found in its copy; masks
        do that for every story carried by one copy at once. Stories with several copies score their
        copies one by one (the best copy counts).
        """
        weighted = [(weight, mask) for kinds, in_headline, in_summary in (
            (terms.keywords, KEYWORD_IN_HEADLINE, KEYWORD_IN_SUMMARY),
            (terms.phrases, PHRASE_IN_HEADLINE, PHRASE_IN_SUMMARY)) for key in kinds
            for weight, mask in ((in_headline, self._hit(key).headline), (in_summary, self._hit(key).summary))]
        levels: dict[int, int] = {}
        seen = 0
        for weight, mask in weighted:
            if seen & mask:
                _raise(levels, mask, weight, 0)
            if mask & ~seen:
                levels[weight] = levels.get(weight, 0) | (mask & ~seen)
            seen |= mask
        wanted = set(tags)
        tagged = {feed for feed, its in feed_tags.items() if not wanted.isdisjoint(its)} if wanted else set()
        in_tagged = 0
        for feed in tagged:
            in_tagged |= self._in_feed.get(feed, 0)
        if in_tagged:
            _raise(levels, in_tagged, SHARED_TAG, ENOUGH_EVIDENCE)
        for story, score in self._shared_scores(terms, tagged).items():
            levels[score] = levels.get(score, 0) | 1 << self._rank[story]
        return levels

    def _shared_scores(self, terms: Terms, tagged: set[str]) -> dict[int, int]:
        """Story -> relevance, for the stories with several copies holding the guide's words."""
        scores: dict[int, int] = {}
        for kinds, in_headline, in_summary in ((terms.keywords, KEYWORD_IN_HEADLINE, KEYWORD_IN_SUMMARY),
                                               (terms.phrases, PHRASE_IN_HEADLINE, PHRASE_IN_SUMMARY)):
            for key in kinds:
                for number, headline in self._hit(key).shared:
                    scores[number] = scores.get(number, 0) + (in_headline if headline else in_summary)
        best: dict[int, int] = {}
        for number, score in scores.items():
            score += SHARED_TAG if score >= ENOUGH_EVIDENCE and self._copies[number].feed_url in tagged else 0
            best[self._story[number]] = max(score, best.get(self._story[number], 0))
        return best

    def _listable(self, terms: Terms) -> int:
        """Mask of the stories no veto() rules out: -1 (all) when the guide has nothing to veto."""
        allowed = -1
        for key in terms.exclude:
            allowed &= ~self._hit(key).holds
        for key in terms.require:
            allowed &= self._hit(key).holds
        return allowed

    def explain(self, guide: Guide, feed_tags: dict[str, tuple[str, ...]],
                excluded: Collection[str] = ()) -> list[Considered]:
        """Every story holding one of the guide's words: the chosen first, then the rest by rank,
        each with its score and the reason it was or was not listed."""
        count = guide.further_reading_count
        evidence = self._evidence(guide, feed_tags)
        ranked = sorted(evidence, key=lambda story: (-evidence[story][0], self._rank[story]))
        rejected: dict[int, str] = {}
        unique: list[int] = []  # listable stories, one per headline, in rank order
        seen_headlines: set[str] = set()
        chosen: list[int] = []
        publishers: set[str] = set()
        for story in ranked:
            why = evidence[story][1]
            item = self._stories[story]
            key = headline_key(item.headline)
            if why.veto:
                rejected[story] = f"vetoed: {why.veto}"
            elif not why.enough:
                rejected[story] = f"not enough evidence (score {why.score}, needs {ENOUGH_EVIDENCE})"
            elif _is_excluded(item.url, excluded):
                rejected[story] = "link excluded (dead, or removed by a reviewer)"
            elif key in seen_headlines:
                rejected[story] = "same headline as a story ranked higher"
            else:
                seen_headlines.add(key)
                unique.append(story)
                if len(chosen) < count and item.source.casefold() not in publishers:  # one per publisher first
                    chosen.append(story)
                    publishers.add(item.source.casefold())
        for story in unique:  # then fill up when there are not enough publishers
            if len(chosen) >= count:
                break
            if story not in chosen:
                chosen.append(story)
        picked = set(chosen)
        out: list[Considered] = []
        for story in ranked:
            score, why = evidence[story]
            found = ", ".join(why.found)
            if story in picked:
                out.append(Considered(self._stories[story], score, True, f"chosen: {found}"))
            else:
                reason = rejected.get(story) or f"list full with stories ranked higher or from other publishers"
                listed = score if story not in rejected or reason.startswith(("link", "same")) else 0
                out.append(Considered(self._stories[story], listed, False, f"{reason}; found {found}"))
        # Stable: rank order within each group. Chosen, then listable but left out, then never listable.
        return sorted(out, key=lambda c: (not c.chosen, c.score == 0))

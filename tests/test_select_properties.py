"""Candidates.select() and explain() against a plain reference, on random windows and guides.

select() scores stories through a per-window memo of where each key is found; the reference below
weighs every copy of every story with weigh() and veto(), and chooses as the rules say, one story at
a time. They must agree on every input: the same items in the same order, the same explanation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.models import Guide, Item
from pipeline.select import (
    ENOUGH_EVIDENCE,
    SHARED_TAG,
    Candidates,
    Considered,
    Evidence,
    Terms,
    headline_key,
    relevance,
    stems,
    veto,
    weigh,
)
from pipeline.urls import link_target

NOW = dt.datetime(2026, 3, 6, 12, 0, tzinfo=dt.timezone.utc)
TODAY = NOW.date()
FEEDS = ("https://feeds.example/a", "https://feeds.example/b", "https://feeds.example/c",
         "https://news.google.com/rss/search?q=china")
PUBLISHERS = ("Daily", "daily", "Tech Review", "Wire")
SITES = {"Daily": "https://daily.example", "daily": "https://daily.example",
         "Tech Review": "https://techreview.example", "Wire": "https://wire.example"}
TAGS = ("privacy", "china", "money")
# Few words, so keys often meet: plurals that stem alike, words that stay apart, a run inside a word.
WORDS = ("wechat", "WeChat's", "privacy", "data", "Data-Protection", "protection", "visa", "visas", "policies",
         "policy", "news", "rent", "alipay", "china", "tech", "wechatter", "rules")
KEYS = ("wechat", "privacy", "data", "data protection", "protection data", "visas", "policy", "news",
        "china tech", "rent", "Alipay!", "", "rules")

words = st.lists(st.sampled_from(WORDS), max_size=5).map(" ".join)


@st.composite
def items(draw: st.DrawFn) -> Item:
    feed = draw(st.sampled_from(FEEDS))
    source = draw(st.sampled_from(PUBLISHERS))
    story = draw(st.integers(0, 3))  # a small pool of links: one story carried by several feeds
    aggregated = feed == FEEDS[-1]
    url = (f"https://news.google.com/rss/articles/{story}" if aggregated
           else f"{SITES[source]}/{story}{draw(st.sampled_from(['', '', ' (live)']))}")
    return Item(feed_url=feed, guid=f"guid-{draw(st.integers(0, 10**6))}", headline=draw(words), source=source,
                date=draw(st.sampled_from([TODAY, TODAY, TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=40),
                                           None])),
                url=url, summary=draw(st.one_of(st.just(""), words)),
                source_url=SITES[source] if aggregated and draw(st.booleans()) else "")


keys = st.lists(st.sampled_from(KEYS), max_size=4).map(tuple)
guides = st.builds(lambda keywords, phrases, exclude, require, tags, count: Guide(
    slug="g", path=Path("g.md"), title="G", keywords=keywords, phrases=phrases, exclude=exclude, require=require,
    tags=tags, further_reading_count=count),
    keys, keys, st.lists(st.sampled_from(KEYS), max_size=1).map(tuple),
    st.lists(st.sampled_from(KEYS), max_size=1).map(tuple), st.lists(st.sampled_from(TAGS), max_size=2).map(tuple),
    st.integers(0, 4))
feed_tags = st.fixed_dictionaries({feed: st.lists(st.sampled_from(TAGS), max_size=2).map(tuple) for feed in FEEDS})


def story_evidence(window: Candidates, story: int, terms: Terms,
                   tagged: set[str]) -> tuple[int, Evidence] | None:
    """The best copy's score (tag included) and evidence, every copy weighed in full; None: no word found."""
    copies = [window._copies[n] for n in window._copies_of[story]]
    plain = Terms(terms.keywords, terms.phrases, (), ())
    best: tuple[int, Evidence] | None = None
    for copy in copies:
        evidence = weigh(stems(copy.headline), stems(copy.summary), plain)
        if not evidence.found:
            continue
        score = evidence.score + (SHARED_TAG if evidence.enough and copy.feed_url in tagged else 0)
        if best is None or score > best[0]:
            best = (score, evidence)
    if best is None:
        return None
    why = veto((stems(copy.headline) + stems(copy.summary) for copy in copies), terms)
    return best[0], Evidence(best[1].score, best[1].found, why)


def reference(window: Candidates, guide: Guide, tags_of: dict[str, tuple[str, ...]],
              excluded: Collection[str]) -> list[Considered]:
    """What explain() must say, worked out the slow and obvious way."""
    terms = Terms.of(guide)
    tagged = {feed for feed, tags in tags_of.items() if set(tags) & set(guide.tags)}
    evidence = {story: found for story in range(len(window._stories))
                if (found := story_evidence(window, story, terms, tagged)) is not None}
    ranked = sorted(evidence, key=lambda story: (-evidence[story][0], window._rank[story]))
    rejected: dict[int, str] = {}
    listable: list[int] = []
    headlines: set[str] = set()
    for story in ranked:
        why, item = evidence[story][1], window._stories[story]
        if why.veto:
            rejected[story] = f"vetoed: {why.veto}"
        elif why.score < ENOUGH_EVIDENCE:
            rejected[story] = f"not enough evidence (score {why.score}, needs {ENOUGH_EVIDENCE})"
        elif item.url in excluded or link_target(item.url) in excluded:
            rejected[story] = "link excluded (dead, or removed by a reviewer)"
        elif headline_key(item.headline) in headlines:
            rejected[story] = "same headline as a story ranked higher"
        else:
            headlines.add(headline_key(item.headline))
            listable.append(story)
    chosen: list[int] = []
    for story in listable:  # one per publisher first...
        publisher = window._stories[story].source.casefold()
        if len(chosen) < guide.further_reading_count and all(
                window._stories[other].source.casefold() != publisher for other in chosen):
            chosen.append(story)
    chosen += [story for story in listable if story not in chosen][:max(0, guide.further_reading_count - len(chosen))]
    out = []
    for group in ("chosen", "left out", "never"):
        for story in ranked:
            score, why = evidence[story]
            found = ", ".join(why.found)
            reason = rejected.get(story, "list full with stories ranked higher or from other publishers")
            listed = score if story not in rejected or reason.startswith(("link", "same")) else 0
            kind = "chosen" if story in chosen else "left out" if listed else "never"
            if kind == group:
                out.append(Considered(window._stories[story], score, True, f"chosen: {found}") if story in chosen
                           else Considered(window._stories[story], listed, False, f"{reason}; found {found}"))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(news=st.lists(items(), max_size=14), checks=st.lists(guides, min_size=1, max_size=4), tags_of=feed_tags,
       dead=st.sets(st.integers(0, 5), max_size=2), as_drafts_write=st.booleans())
@example(  # equal scores everywhere: only the tie-break order and one-per-publisher decide
    news=[Item(feed_url=FEEDS[n % 3], guid=f"e{n}", headline=f"WeChat data {n}", source=PUBLISHERS[n % 2 + 1],
               date=TODAY, url=f"https://daily.example/{n}") for n in range(6)],
    checks=[Guide(slug="g", path=Path("g.md"), title="G", keywords=("wechat",), tags=("privacy",))],
    tags_of={feed: ("privacy",) for feed in FEEDS}, dead={2}, as_drafts_write=True)
@example(  # a phrase only in the summary (3) of a story carried twice: a shared tag never makes it enough
    news=[Item(feed_url=feed, guid=f"t{n}", headline=headline, source="Wire", date=TODAY,
               url="https://wire.example/1", summary=summary)
          for n, (feed, headline, summary) in enumerate([(FEEDS[0], "Rent rules", "new data protection rules"),
                                                         (FEEDS[1], "Rent", "")])],
    checks=[Guide(slug="g", path=Path("g.md"), title="G", phrases=("data protection",), tags=("privacy",))],
    tags_of={FEEDS[0]: ("privacy",)}, dead=set(), as_drafts_write=False)
def test_select_and_explain_agree_with_the_plain_reference(
        news: list[Item], checks: list[Guide], tags_of: dict[str, tuple[str, ...]], dead: set[int],
        as_drafts_write: bool) -> None:
    window = Candidates(news, NOW, 30)  # one window, several guides: the memo is shared between them
    links = [item.url for item in news if int(item.url.split("/")[-1].split()[0]) in dead]
    excluded = frozenset(link_target(url) if as_drafts_write else url for url in links)
    for guide in checks:
        expected = reference(window, guide, tags_of, excluded)
        assert window.explain(guide, tags_of, excluded) == expected
        assert window.select(guide, tags_of, excluded) == [entry.item for entry in expected if entry.chosen]
        assert window.select(guide, tags_of) == [entry.item for entry in reference(window, guide, tags_of, ())
                                                 if entry.chosen]


@settings(max_examples=200, deadline=None)
@given(news=st.lists(items(), max_size=10), guide=guides, tags_of=feed_tags)
def test_a_story_carried_once_scores_as_relevance_says(news: list[Item], guide: Guide,
                                                       tags_of: dict[str, tuple[str, ...]]) -> None:
    window = Candidates(news, NOW, 30)
    considered = {entry.item.url: entry.score for entry in window.explain(guide, tags_of)}
    for story, copies in enumerate(window._copies_of):
        if len(copies) == 1:
            item = window._stories[story]
            assert considered.get(item.url, 0) == relevance(item, guide, tags_of.get(item.feed_url, ()))


@given(st.text(alphabet="hpts:/wW.eExample-0189@[]?#: \t%", max_size=40)
       | st.builds(lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
                   st.sampled_from(["http", "https", "HTTP", "ftp"]),
                   st.text(alphabet="abcXYZ.-09@[]:%", min_size=0, max_size=12),
                   st.sampled_from(["", ":80", ":", ":x"]), st.sampled_from(["", "/", "/a?b#c", "?q", "#f"])))
def test_a_links_site_is_the_host_urlsplit_reads(url: str) -> None:
    from urllib.parse import urlsplit

    from pipeline.select import _site

    try:
        expected = (urlsplit(url).hostname or "").lower().removeprefix("www.")
    except ValueError:
        return  # urlsplit refuses it (e.g. a bad bracket): such links never reach the window
    assert _site(url) == expected


@given(st.text(alphabet="hpts:/wW.eExample-0189@[]?#: \t%", max_size=40)
       | st.builds(lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
                   st.sampled_from(["http", "https", "HTTP", "ftp", " http"]),
                   st.text(alphabet="abcXYZ.-09@[]:%", min_size=0, max_size=12),
                   st.sampled_from(["", ":80", ":", ":x", ":65535", ":65536", ":000080", ":99999"]),
                   st.sampled_from(["", "/", "/a?b#c", "?q", "#f", " "])))
def test_a_web_url_is_what_urlsplit_reads_as_one(url: str) -> None:
    from urllib.parse import urlsplit

    from pipeline.urls import is_web_url

    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018
        expected = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        expected = False
    assert is_web_url(url) == expected

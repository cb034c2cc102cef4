"""Choosing Further Reading: every rule of the issue, on plain records, then through the CLI."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from collections import Counter
from pathlib import Path

import yaml
from click.testing import CliRunner
from conftest import Route, write_feeds
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.cli import cli
from pipeline.models import Guide, Item
from pipeline.select import (
    ENOUGH_EVIDENCE,
    KEYWORD_IN_HEADLINE,
    KEYWORD_IN_SUMMARY,
    PHRASE_IN_HEADLINE,
    SHARED_TAG,
    headline_key,
    relevance,
    select_further_reading,
)

NOW = dt.datetime(2026, 3, 6, 0, 0, tzinfo=dt.timezone.utc)
TODAY = NOW.date()


def guide(count: int = 3, max_age_days: int = 30, keywords: tuple[str, ...] = ("wechat", "privacy"),
          tags: tuple[str, ...] = ()) -> Guide:
    return Guide(slug="g", path=Path("templates/guides/g.md"), title="G", keywords=keywords, tags=tags,
                 further_reading_count=count, max_age_days=max_age_days)


_serial = iter(range(10**9))


def item(headline: str = "WeChat update", source: str = "Pub", date: dt.date | None = TODAY,
         url: str | None = None, feed: str = "https://feeds.example/a") -> Item:
    n = next(_serial)
    return Item(feed_url=feed, guid=f"g{n}", headline=headline, source=source, date=date,
                url=url or f"https://news.example/{n}")


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def test_count_defaults_to_three_and_follows_the_guide() -> None:
    items = [item(f"WeChat story {n}", source=f"Pub {n}") for n in range(6)]
    assert len(select_further_reading(items, guide(), NOW)) == 3
    assert len(select_further_reading(items, Guide(slug="g", path=Path("g.md"), title="G", keywords=("wechat",)),
                                      NOW)) == 3
    assert len(select_further_reading(items, guide(count=5), NOW)) == 5
    assert len(select_further_reading(items[:2], guide(count=5), NOW)) == 2


def test_maximum_age_is_inclusive_and_follows_the_guide() -> None:
    edge, too_old = item(date=days_ago(30), source="A"), item(date=days_ago(31), source="B")
    assert select_further_reading([edge, too_old], guide(), NOW) == [edge]
    week, month = item(date=days_ago(7), source="A"), item(date=days_ago(8), source="B")
    assert select_further_reading([week, month], guide(max_age_days=7), NOW) == [week]


def test_nothing_dated_in_the_future_and_undated_items_never_listed() -> None:
    today, tomorrow = item(date=TODAY, source="A"), item(date=TODAY + dt.timedelta(days=1), source="B")
    next_year = item(date=TODAY.replace(year=2027), source="D")
    undated = item(date=None, source="C", headline="WeChat privacy wechat privacy")
    assert select_further_reading([today, tomorrow, next_year, undated], guide(), NOW) == [today]


def test_publisher_ahead_of_utc_is_not_in_the_future() -> None:
    # 20:00 UTC on the 5th is already 04:00 on the 6th in Beijing, so a Beijing story dated the 6th
    # is current news; the 7th does not exist anywhere on Earth yet.
    evening = dt.datetime(2026, 3, 5, 20, 0, tzinfo=dt.timezone.utc)
    beijing = item(date=dt.date(2026, 3, 6), source="Beijing Daily")
    later = item(date=dt.date(2026, 3, 7), source="Other")
    assert select_further_reading([beijing, later], guide(), evening) == [beijing]
    # A bare date means "today everywhere".
    assert select_further_reading([beijing, later], guide(), dt.date(2026, 3, 5)) == []


def test_most_relevant_first_then_most_recent() -> None:
    one_hit_new = item("WeChat adds stickers", source="A", date=days_ago(0))
    two_hits_old = item("WeChat privacy rules tighten", source="B", date=days_ago(10))
    one_hit_mid = item("Privacy week", source="C", date=days_ago(3))
    chosen = select_further_reading([one_hit_new, one_hit_mid, two_hits_old], guide(), NOW)
    assert chosen == [two_hits_old, one_hit_new, one_hit_mid]


def test_a_shared_feed_tag_alone_is_no_evidence_it_only_breaks_ties() -> None:
    tech = "https://feeds.example/tech"
    tags = {tech: ("privacy",), "https://feeds.example/markets": ("money",)}
    g = guide(tags=("privacy",))
    tagged_only = item("City opens new metro line", source="B", feed=tech)
    assert select_further_reading([tagged_only], g, NOW, tags) == []  # an empty slot beats an unrelated story
    assert relevance(tagged_only, g, tags[tech]) == 0
    newer = item("WeChat adds stickers", source="A", date=days_ago(0), feed="https://feeds.example/markets")
    older_tagged = item("WeChat adds themes", source="C", date=days_ago(2), feed=tech)
    assert select_further_reading([newer, older_tagged], guide(count=1, tags=("privacy",)), NOW, tags) == [older_tagged]
    assert relevance(older_tagged, g, tags[tech]) == relevance(newer, g) + SHARED_TAG


def test_the_summary_counts_for_less_than_the_headline() -> None:
    in_headline = item("WeChat changes sticker store", source="A", date=days_ago(3))
    one_in_summary = Item(**{**vars(item("Messaging apps change", source="B")), "summary": "WeChat is one of them."})
    two_in_summary = Item(**{**vars(item("Apps change settings", source="C", date=days_ago(5))),
                             "summary": "WeChat moves its privacy page."})
    g = guide()
    assert relevance(in_headline, g) == KEYWORD_IN_HEADLINE == ENOUGH_EVIDENCE
    assert relevance(two_in_summary, g) == 2 * KEYWORD_IN_SUMMARY == ENOUGH_EVIDENCE
    assert relevance(one_in_summary, g) == 0  # a lone passing mention is not evidence enough
    assert select_further_reading([one_in_summary, two_in_summary, in_headline], g, NOW) == [in_headline, two_in_summary]


def test_phrases_exclude_and_require_steer_a_guide() -> None:
    g = Guide(slug="v", path=Path("v.md"), title="Visas", keywords=("visa",), phrases=("residence permit",),
              exclude=("visa card", "mastercard"), require=())
    permit = item("Residence permits now issued in 7 days", source="A")
    split = item("Permit rules for residence halls", source="B")
    card = item("Visa card fees fall", source="C")
    visa = item("Visa-free entry extended", source="D")
    assert relevance(permit, g) == PHRASE_IN_HEADLINE and relevance(split, g) == 0  # permits is permit; a phrase is whole
    assert relevance(card, g) == 0  # vetoed
    assert relevance(visa, g) == KEYWORD_IN_HEADLINE
    strict = Guide(slug="v", path=Path("v.md"), title="V", keywords=("visa",), require=("student",))
    assert relevance(visa, strict) == 0
    assert relevance(item("Student visa interviews resume"), strict) == KEYWORD_IN_HEADLINE


def test_plural_stems_match_both_ways() -> None:
    g = guide(keywords=("permits", "policy"))
    assert relevance(item("New permit rule"), g) == KEYWORD_IN_HEADLINE
    assert relevance(item("Policies for permits"), g) == 2 * KEYWORD_IN_HEADLINE
    assert relevance(item("Bus news"), guide(keywords=("bu",))) == 0  # "bus" keeps its s


def test_keywords_match_whole_words_regardless_of_case_and_punctuation() -> None:
    g = guide(keywords=("wechat pay", "visa"))
    assert relevance(item("WECHAT-PAY limits raised"), g) > 0
    assert relevance(item("Visa: what changes"), g) > 0
    assert relevance(item("Visakhapatnam port news"), g) == 0


def test_one_item_per_publisher_while_others_are_available() -> None:
    a1 = item("WeChat privacy one", source="Daily", date=days_ago(0))
    a2 = item("WeChat privacy two", source="daily", date=days_ago(1))  # same publisher, other case
    a3 = item("WeChat privacy three", source="Daily", date=days_ago(2))
    b1 = item("WeChat news", source="Weekly", date=days_ago(5))
    chosen = select_further_reading([a1, a2, a3, b1], guide(), NOW)
    assert chosen == [a1, a2, b1]  # a2 fills up only once Weekly is used; rank order kept
    assert [c.source.casefold() for c in chosen].count("weekly") == 1


def test_a_single_publisher_still_fills_the_list() -> None:
    items = [item(f"WeChat privacy {n}", source="Only", date=days_ago(n)) for n in range(5)]
    assert select_further_reading(items, guide(), NOW) == items[:3]


def test_a_story_is_as_relevant_as_its_best_copy_and_shown_as_its_earliest() -> None:
    url = "https://news.example/retitled"
    first = item("Tencent app update", source="Wire", date=days_ago(4), url=url)
    retitled = item("WeChat privacy change explained", source="Daily", date=days_ago(2), url=url)
    assert select_further_reading([retitled, first], guide(), NOW) == [first]


def test_never_two_items_with_the_same_canonical_link_earliest_dated_copy_kept() -> None:
    url = "https://news.example/story"
    syndicated = item("WeChat privacy story", source="Aggregator", date=days_ago(1), url=url,
                      feed="https://feeds.example/agg")
    original = item("WeChat privacy story (original)", source="Newsroom", date=days_ago(3), url=url,
                    feed="https://feeds.example/newsroom")
    chosen = select_further_reading([syndicated, original], guide(), NOW)
    assert chosen == [original]


def test_never_two_items_with_the_same_headline_up_to_case_and_punctuation() -> None:
    first = item("WeChat: privacy rules change!", source="A", date=days_ago(0))
    echo = item("wechat privacy rules change", source="B", date=days_ago(1))
    other = item("WeChat privacy audit", source="C", date=days_ago(2))
    chosen = select_further_reading([first, echo, other], guide(), NOW)
    assert chosen == [first, other]
    assert headline_key("WeChat: Privacy — Rules, Change!") == headline_key("wechat privacy rules change")


def test_non_http_links_are_never_listed() -> None:
    bad = item("WeChat privacy", source="A", url="javascript:alert(1)")
    ftp = item("WeChat privacy again", source="B", url="ftp://files.example/x")
    good = item("WeChat privacy news", source="C")
    assert select_further_reading([bad, ftp, good], guide(), NOW) == [good]


def test_selection_does_not_depend_on_input_order() -> None:
    items = [item(f"WeChat privacy {n % 4}", source=f"P{n % 3}", date=days_ago(n % 5),
                  url=f"https://news.example/{n % 6}") for n in range(12)]
    forward = select_further_reading(items, guide(count=4), NOW)
    assert select_further_reading(list(reversed(items)), guide(count=4), NOW) == forward


HEADLINES = ["WeChat privacy", "WeChat news", "Privacy law", "Metro line", "wechat, privacy!", "Visa rules"]


@st.composite
def item_lists(draw: st.DrawFn) -> list[Item]:
    n = draw(st.integers(0, 14))
    out = []
    for index in range(n):
        date = draw(st.one_of(st.none(), st.integers(-3, 40).map(days_ago)))
        out.append(Item(
            feed_url=draw(st.sampled_from(["https://f.example/1", "https://f.example/2"])),
            guid=f"g{index}",
            headline=draw(st.sampled_from(HEADLINES)) + draw(st.sampled_from(["", " today", " update"])),
            source=draw(st.sampled_from(["A", "B", "C", "a"])),
            date=date,
            url=f"https://news.example/{draw(st.integers(0, 8))}",
        ))
    return out


@settings(max_examples=150, deadline=None)
@given(items=item_lists(), count=st.integers(1, 5))
def test_every_rule_holds_for_any_item_set(items: list[Item], count: int) -> None:
    g = guide(count=count)
    chosen = select_further_reading(items, g, NOW)
    assert len(chosen) <= count
    assert all(c.date is not None and days_ago(30) <= c.date <= TODAY for c in chosen)
    assert len({c.url for c in chosen}) == len(chosen)
    assert len({headline_key(c.headline) for c in chosen}) == len(chosen)
    in_window = [i for i in items if i.date is not None and days_ago(30) <= i.date <= TODAY]
    story = {i.url: max(relevance(j, g) for j in in_window if j.url == i.url) for i in in_window}
    assert all(story[c.url] > 0 for c in chosen)
    for c in chosen:  # the earliest-dated copy stands for its link
        assert c.date == min(i.date for i in in_window if i.url == c.url)
    ranks = [(-story[c.url], -c.date.toordinal()) for c in chosen if c.date]
    assert ranks == sorted(ranks)
    # Stories nothing can shadow: the only copy of their link, with a headline no other item shares.
    urls = Counter(i.url for i in in_window)
    keys = Counter(headline_key(i.headline) for i in in_window)
    distinct = [i for i in in_window if story[i.url] > 0 and urls[i.url] == 1 and keys[headline_key(i.headline)] == 1]
    publishers = Counter(c.source.casefold() for c in chosen)
    if any(n > 1 for n in publishers.values()):  # a publisher repeats only when no other one was available
        assert {i.source.casefold() for i in distinct} <= set(publishers)
    if len(chosen) < count:  # room was left, so no distinct story was left out
        assert all(i in chosen for i in distinct)


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Tech Desk</title><link>https://tech.example/</link>
<description>Tech news</description>
<item><title>WeChat privacy settings explained</title><link>https://tech.example/a</link>
<guid>https://tech.example/a</guid><pubDate>Sun, 01 Mar 2026 09:00:00 +0800</pubDate></item>
<item><title>WeChat tightens login checks</title><link>https://tech.example/b</link>
<guid>https://tech.example/b</guid><pubDate>Tue, 10 Mar 2026 09:00:00 +0800</pubDate></item>
<item><title>WeChat privacy report due</title><link>https://tech.example/c</link>
<guid>https://tech.example/c</guid><pubDate>Mon, 20 Apr 2026 09:00:00 +0800</pubDate></item>
<item><title>WeChat privacy, undated</title><link>https://tech.example/d</link>
<guid>https://tech.example/d</guid></item>
</channel></rss>
"""


def _listed(project: Path, epoch: int) -> list[str]:
    runner = CliRunner()
    env = {"SOURCE_DATE_EPOCH": str(epoch)}
    result = runner.invoke(cli, ["--root", str(project), "build", "--force", "wechat-encryption"], env=env)
    assert result.exit_code == 0, result.output
    text = (project / "output" / "wechat-encryption.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("\n---\n", 1)[0].removeprefix("---\n"))
    return [entry["date"] for entry in front["further_reading"]]


def test_source_date_epoch_is_now_for_age_and_future_through_the_cli(project: Path, feed_server) -> None:
    feed_server.routes["/tech.xml"] = Route(RSS.encode())
    write_feeds(project, {"url": feed_server.url("/tech.xml"), "publisher": "Tech Desk"})
    march_12 = int(dt.datetime(2026, 3, 12, tzinfo=dt.timezone.utc).timestamp())
    april_21 = int(dt.datetime(2026, 4, 21, tzinfo=dt.timezone.utc).timestamp())
    # On 12 March the April story is in the future; on 21 April the March stories are too old.
    # Two keyword hits ("wechat", "privacy") outrank one, however recent.
    assert _listed(project, march_12) == ["2026-03-01", "2026-03-10"]
    assert _listed(project, april_21) == ["2026-04-20"]


def rules_as_written(items: list[Item], guide: Guide, now: dt.datetime, feed_tags: dict[str, tuple[str, ...]]) -> list[Item]:
    """The selection rules spelled out plainly, one item at a time: the oracle for the indexed version."""
    today, latest = now.date(), (now + dt.timedelta(hours=14)).date()
    oldest = today - dt.timedelta(days=guide.max_age_days)
    fresh = [i for i in items if i.date is not None and oldest <= i.date <= latest and i.url.startswith("http")]
    stories: dict[str, Item] = {}
    best: dict[str, int] = {}
    words: dict[str, set[str]] = {}  # the copies of a story are one article: vetoes look at all of them
    unsteered = replace(guide, exclude=(), require=())
    for i in sorted(fresh, key=lambda i: (i.date, i.feed_url, i.guid)):
        stories.setdefault(i.url, i)
        best[i.url] = max(best.get(i.url, 0), relevance(i, unsteered, feed_tags.get(i.feed_url, ())))
        words.setdefault(i.url, set()).update(headline_key(f"{i.headline} {i.summary}").split())
    vetoed = {url for url, held in words.items()
              if any(w in held for w in guide.exclude) or not all(w in held for w in guide.require)}
    ranked = sorted((i for url, i in stories.items() if best[url] > 0 and url not in vetoed),
                    key=lambda i: (-best[i.url], -i.date.toordinal(), headline_key(i.headline), i.url))
    unique = [i for n, i in enumerate(ranked)
              if headline_key(i.headline) not in {headline_key(j.headline) for j in ranked[:n]}]
    chosen: list[Item] = []
    for i in unique:
        if len(chosen) < guide.further_reading_count and i.source.casefold() not in {c.source.casefold() for c in chosen}:
            chosen.append(i)
    for i in unique:
        if len(chosen) < guide.further_reading_count and i not in chosen:
            chosen.append(i)
    return sorted(chosen, key=unique.index)


WORDS = ["WeChat", "wechat", "data", "protection", "Alipay", "visa", "rent", "news", "Ünïcode"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.lists(st.sampled_from(WORDS), max_size=5).map(" ".join),  # headline
                       st.sampled_from(["A", "a", "B", "C"]),  # source
                       st.integers(-3, 40),  # days ago
                       st.integers(0, 6),  # link: few, so feeds share stories
                       st.sampled_from(["f1", "f2", "f3"]),  # feed
                       st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join)),  # summary
             max_size=30),
    st.lists(st.sampled_from(WORDS + ["data protection", "", "!!"]), max_size=4),
    st.lists(st.sampled_from(["data protection", "alipay", "visa"]), max_size=2),  # phrases
    st.lists(st.sampled_from(["rent", "news"]), max_size=1),  # exclude
    st.lists(st.sampled_from(["wechat", "data"]), max_size=1),  # require
    st.lists(st.sampled_from(["privacy", "money", "china"]), max_size=2),
    st.integers(1, 5),
    st.integers(1, 30),
)
# A keyword outranks a shared feed tag, however new the tagged story is.
@example(rows=[("news", "A", 1, 0, "f1", ""), ("wechat", "B", 5, 1, "f3", "")], keywords=["wechat"], phrases=[],
         exclude=[], require=[], tags=["privacy"], count=1, max_age=30)
# A copy holding an excluded word (in its summary) vetoes its story, whatever the other copies say.
@example(rows=[("wechat", "A", 1, 0, "f1", ""), ("wechat data", "B", 2, 0, "f2", "rent")], keywords=["wechat"],
         phrases=[], exclude=["rent"], require=[], tags=[], count=1, max_age=30)
def test_the_indexed_selection_chooses_what_the_rules_say(rows, keywords, phrases, exclude, require, tags, count,
                                                          max_age) -> None:
    items = [Item(feed_url=feed, guid=f"g{n}", headline=headline, source=source, date=days_ago(age),
                  url=f"https://news.example/{link}", summary=summary)
             for n, (headline, source, age, link, feed, summary) in enumerate(rows)]
    chosen_guide = replace(guide(count=count, max_age_days=max_age, keywords=tuple(keywords), tags=tuple(tags)),
                           phrases=tuple(phrases), exclude=tuple(exclude), require=tuple(require))
    feed_tags = {"f1": ("privacy",), "f2": ("money", "china"), "f3": ()}
    assert select_further_reading(items, chosen_guide, NOW, feed_tags) == rules_as_written(items, chosen_guide, NOW, feed_tags)

"""The Further Reading list read entry by entry: parsing, reviewer choices, the next list.

Lists are rendered by the real further-reading partial through Jinja2 and stories are chosen by the
real selection, so these tests read exactly what drafts hold.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURE
from pipeline.build import plan_list
from pipeline.drafts import compose_draft_text, dump_yaml, split_draft
from pipeline.entries import (
    CHOICES_KEY,
    arrange,
    derive_choices,
    entry_items,
    parse_entries,
    plain_text,
    read_choices,
    readable_entries,
    write_choices,
)
from pipeline.errors import ChoicesError, UnreadableEntry
from pipeline.models import EntryFix, Guide, Item, ListChoices, ListEntry
from pipeline.render import escape_markdown, make_environment, render_further_reading
from pipeline.select import Candidates

TODAY = dt.date(2025, 3, 1)
GUIDE = Guide(slug="pay", path=Path("pay.md"), title="Pay", keywords=("alipay",), further_reading_count=3,
              max_age_days=10)
PUBLISHERS = ("Pay News", "Privacy Wire", "Daily Bund")


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return make_environment(FIXTURE / "templates")


def story(number: int, day: dt.date = TODAY) -> Item:
    return Item(feed_url="https://feeds.example.com/pay.xml", guid=f"s{number}",
                headline=f"Alipay story {number}", source=PUBLISHERS[number % 3], date=day,
                url=f"https://news.example.com/story-{number}")


def listed(env: jinja2.Environment, items: list[Item]) -> str:
    return render_further_reading(env, items)


# -- reading a list ----------------------------------------------------------------------------------


def test_a_rendered_list_reads_back_as_its_stories(env: jinja2.Environment) -> None:
    items = [story(1), story(2, TODAY - dt.timedelta(days=1))]
    entries = parse_entries(listed(env, items))
    assert [(e.link, e.headline, e.source, e.date, e.line) for e in entries] == [
        ("https://news.example.com/story-1", "Alipay story 1", "Privacy Wire", TODAY, 1),
        ("https://news.example.com/story-2", "Alipay story 2", "Daily Bund", TODAY - dt.timedelta(days=1), 5),
    ]


def test_the_no_news_sentence_and_an_empty_list_have_no_entries(env: jinja2.Environment) -> None:
    empty = listed(env, [])
    assert "No recent news" in empty
    assert parse_entries(empty, empty) == ()
    assert parse_entries("\n\n", empty) == ()


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("🔸 A  \n🗞️ Source: P – 📅 2025-03-01  \n🔗 [Read Full Article](https://a.example/1)\n\nA note of mine.",
     5, "an entry starts with `🔸 {headline}`"),
    ("🔸 A  \n🗞️ Source: P – 📅 2025-03-01  \n🔗 [Read Full Article](https://a.example/1)\nmore",
     4, "not part of the entry above it"),
    ("🔸 A  \nSource: P, 2025-03-01\n🔗 [Read Full Article](https://a.example/1)", 2, "the second line of an entry"),
    ("🔸 A  \n🗞️ Source: P – 📅 2025-02-30  \n🔗 [Read Full Article](https://a.example/1)", 2,
     "'2025-02-30' is not a date written YYYY-MM-DD"),
    ("🔸 A  \n🗞️ Source: P – 📅 2025-03-01  \n[Read Full Article](https://a.example/1)", 3, "the third line"),
    ("🔸 A  \n🗞️ Source: P – 📅 2025-03-01  \n🔗 [Read Full Article](javascript:alert(1))", 3, "is not http(s)"),
    ("🔸 A  \n🗞️ Source: P – 📅 2025-03-01  \n🔗 [Read Full Article](https://a.example/1)\n\n"
     "🔸 B  \n🗞️ Source: Q – 📅 2025-03-01  \n🔗 [Read Full Article](https://a.example/1)", 7,
     "links to the same article as the entry at line 1"),
])
def test_text_that_is_not_an_entry_is_named_by_its_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(UnreadableEntry) as caught:
        parse_entries(text)
    assert caught.value.line == line
    assert reason in caught.value.reason


def test_an_entry_typed_by_hand_with_loose_spacing_still_reads() -> None:
    text = "🔸  Our own explainer\n🗞 Source: Team  -  📅 2025-02-27\n🔗 [Read Full Article](https://blog.example.org/x)  "
    (entry,) = parse_entries(text)
    assert (entry.headline, entry.source, entry.date, entry.link) == (
        "Our own explainer", "Team", dt.date(2025, 2, 27), "https://blog.example.org/x")


def test_a_list_with_a_reviewers_note_still_tells_which_links_it_shows() -> None:
    one = "🔸 One  \n🗞️ Source: Team – 📅 2025-02-27  \n🔗 [Read Full Article](https://a.example.org/1)"
    two = "🔸 Two  \n🗞️ Source: Team – 📅 2025-02-26  \n🔗 [Read Full Article](https://a.example.org/2)"
    three = "🔸 Three  \n🗞️ Source: Team – 📅 2025-02-25  \n🔗 [Read Full Article](https://a.example.org/3)"
    text = f"Dana: checked all three.\n\n{one}\n\n{two}\nand a line run into it\n\n{three}"
    with pytest.raises(UnreadableEntry):
        parse_entries(text)  # so the pipeline leaves this list alone ...
    # ... and still knows what it shows readers.
    assert [e.link for e in readable_entries(text)] == [f"https://a.example.org/{n}" for n in (1, 2, 3)]


# -- choices -----------------------------------------------------------------------------------------


def entry(number: int, headline: str | None = None) -> ListEntry:
    item = story(number)
    return ListEntry(item.url, headline or item.headline, item.source, TODAY)


def test_deleting_fixing_adding_and_reordering_become_choices() -> None:
    last = [entry(1), entry(2), entry(3)]
    mine = ListEntry("https://blog.example.org/ours", "Our explainer", "Team", TODAY)
    current = [mine, entry(3), entry(1, "Alipay story one, fixed")]  # 2 deleted, 1 fixed, 3 moved up

    choices = derive_choices(last, current, ListChoices())

    assert choices == ListChoices(exclude=(entry(2).link,), pin=(mine.link,),
                                  fix=((entry(1).link, EntryFix(headline="Alipay story one, fixed")),))


def test_the_next_list_refills_the_slot_keeps_fix_pin_and_order() -> None:
    mine = ListEntry("https://blog.example.org/ours", "Our explainer", "Team", TODAY)
    current = [mine, entry(3), entry(1, "Alipay story one, fixed")]
    choices = ListChoices(exclude=(entry(2).link,), pin=(mine.link,),
                          fix=((entry(1).link, EntryFix(headline="Alipay story one, fixed")),))
    stories = [entry(n) for n in (5, 1, 2, 3, 4)]  # best first; 5 is new news

    result = arrange(choices, current, stories, 4)

    assert [e.link for e in result.entries] == [mine.link, entry(5).link, entry(3).link, entry(1).link]
    assert result.entries[3].headline == "Alipay story one, fixed"
    assert result.choices == choices


def test_selection_passes_over_excluded_links_so_the_next_best_fills_the_slot() -> None:
    items = [story(n, TODAY - dt.timedelta(days=n)) for n in range(5)]
    window = Candidates(items, TODAY, GUIDE.max_age_days)
    best = window.select(GUIDE, {})
    assert [i.guid for i in window.select(GUIDE, {}, excluded={best[0].url})] == [
        *(i.guid for i in best[1:]), "s3"]


def test_a_deleted_story_typed_back_by_hand_is_pinned_and_no_longer_excluded() -> None:
    remembered = ListChoices(exclude=(entry(2).link,))
    choices = derive_choices([entry(1)], [entry(1), entry(2)], remembered)
    assert (choices.exclude, choices.pin) == ((), (entry(2).link,))


def test_a_fix_is_forgotten_once_its_story_leaves_the_list() -> None:
    choices = ListChoices(fix=((entry(1).link, EntryFix(source="Reuters")),))
    result = arrange(choices, [entry(1)], [entry(2)], 1)
    assert [e.link for e in result.entries] == [entry(2).link]
    assert result.choices.fix == ()


def test_a_pin_typed_into_front_matter_lists_its_story_or_is_reported() -> None:
    choices = ListChoices(pin=(entry(4).link, "https://blog.example.org/nowhere"))
    result = arrange(choices, [entry(1)], [entry(n) for n in (1, 2, 4)], 2)
    assert [e.link for e in result.entries] == [entry(4).link, entry(1).link]
    assert result.unresolved_pins == ("https://blog.example.org/nowhere",)


def test_a_fix_that_matches_the_feed_again_is_dropped() -> None:
    choices = ListChoices(fix=((entry(1).link, EntryFix(headline="Alipay story 1", source="Reuters")),))
    result = arrange(choices, [entry(1)], [entry(1)], 1)
    assert result.choices.fix == ((entry(1).link, EntryFix(source="Reuters")),)


def test_choices_round_trip_through_front_matter_yaml() -> None:
    choices = ListChoices(exclude=("https://news.example.com/a",), pin=("https://blog.example.org/b",),
                          pin_any_age=("https://blog.example.org/c",),
                          fix=(("https://news.example.com/d", EntryFix(headline="H: fixed", date=TODAY)),))
    text = dump_yaml({"further_reading_choices": write_choices(choices)})
    assert "further_reading_choices:\n  exclude:\n    - https://news.example.com/a\n" in text
    assert read_choices(yaml.safe_load(text)["further_reading_choices"]) == choices
    assert write_choices(ListChoices()) == {}


@pytest.mark.parametrize(("value", "message"), [
    (["https://a.example/"], "must be a mapping"),
    ({"exclude": "https://a.example/"}, "'exclude' must be a list of links"),
    ({"pin": ["javascript:alert(1)"]}, "'pin' holds 'javascript:alert(1)', which is not an http(s) link"),
    ({"excluded": []}, "unknown key 'excluded'"),
    ({"fix": {"https://a.example/": {"title": "x"}}}, "must set headline, source or date"),
    ({"fix": {"https://a.example/": {"date": "yesterday"}}}, "written YYYY-MM-DD"),
])
def test_unreadable_choices_say_what_to_fix(value: object, message: str) -> None:
    with pytest.raises(ChoicesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_choices(value)


# -- escaping survives the round trip ------------------------------------------------------------------

headline_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40) \
    .map(lambda text: " ".join(text.split())).filter(bool)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headline=headline_text, source=headline_text)
def test_any_headline_and_source_read_back_as_written(env: jinja2.Environment, headline: str, source: str) -> None:
    item = Item("f", "g", headline, source, TODAY, "https://news.example.com/a(b) c")
    (read,) = parse_entries(listed(env, [item]))
    assert (read.headline, read.source) == (headline, source)
    assert plain_text(escape_markdown(headline)) == headline


# -- the property: reviewers' choices hold through any sequence of edits and refreshes -----------------


@dataclass
class Session:
    """One draft's list through time: the text on disk, what the pipeline last wrote, the remembered
    choices as front matter YAML, and an independent record of what the reviewer asked for."""

    env: jinja2.Environment
    today: dt.date = TODAY
    news: list[Item] = field(default_factory=list)
    text: str = ""
    last: tuple[ListEntry, ...] = ()  # what the pipeline last wrote, read back
    last_text: str | None = None  # None: nothing written yet
    front_matter: str = ""
    excluded: set[str] = field(default_factory=set)
    pins: list[str] = field(default_factory=list)
    fixes: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # the reviewer's order of the stories, last edit
    hand_made: int = 0

    def entries(self) -> list[ListEntry]:
        return list(parse_entries(self.text, listed(self.env, [])))

    def write(self, entries: list[ListEntry]) -> None:
        """The reviewer saves the list: in the exact entry format, as the partial writes it."""
        self.text = listed(self.env, entry_items(entries, self.news))

    def refresh(self) -> None:
        """What `build` and `refresh` do with the list: build.plan_list, on the draft as a file holds it."""
        empty = listed(self.env, [])
        front = yaml.safe_load(self.front_matter) or {}
        existing = split_draft(Path("output/pay.md"), compose_draft_text({"title": "Pay", **front}, (
            f"<!-- pipeline:begin further-reading -->\n{self.text}\n<!-- pipeline:end further-reading -->\n")))
        remembered = read_choices(front.get(CHOICES_KEY))
        window = Candidates(self.news, self.today, GUIDE.max_age_days)
        chosen = window.select(GUIDE, {}, excluded={*remembered.exclude, *remembered.pinned})
        plan = plan_list(empty, existing, self.last_text, remembered,
                         lambda excluded: window.select(GUIDE, {}, excluded=excluded), GUIDE.further_reading_count,
                         chosen)
        assert plan.unreadable is None and plan.notes == ()
        before = [e.link for e in parse_entries(self.text, empty) if e.link not in self.pins]
        self.text = self.last_text = listed(self.env, plan.items)
        self.last = parse_entries(self.text, empty)
        self.front_matter = dump_yaml(plan.front_matter) if plan.front_matter else ""
        self.check(before, eligible=[i for i in plan.selection if i.url not in self.excluded])

    def check(self, before: list[str], eligible: list[Item]) -> None:
        shown = self.last
        links = [e.link for e in shown]
        assert not set(links) & self.excluded, "an excluded story came back"
        assert links[: len(self.pins)] == [p for p in links if p in self.pins]
        assert set(links[: len(self.pins)]) == set(self.pins), "a pin was lost or is not first"
        for e in shown:
            if e.link in self.fixes:
                assert e.headline == self.fixes[e.link], "a headline fix was lost"
        stories = [link for link in links if link not in self.pins]
        staying = [link for link in before if link in stories]
        assert [link for link in stories if link in staying] == staying, "the reviewer's order was lost"
        room = max(0, GUIDE.further_reading_count - len(self.pins))
        assert len(stories) == min(room, len(eligible)), "a free slot was not refilled"
        # Fixes of stories no longer listed are forgotten, as the README promises.
        self.fixes = {link: text for link, text in self.fixes.items() if link in links}


steps = st.lists(st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 5)),
    st.tuples(st.just("fix"), st.integers(0, 5), headline_text),
    st.tuples(st.just("add"), st.integers(0, 5)),
    st.tuples(st.just("move"), st.integers(0, 5), st.integers(0, 5)),
    st.tuples(st.just("refresh")),
    st.tuples(st.just("news"), st.integers(1, 3)),
    st.tuples(st.just("time"), st.integers(1, 6)),
), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_every_reviewer_choice_survives_refreshes_and_news(env: jinja2.Environment, steps: list[tuple]) -> None:
    session = Session(env, news=[story(n, TODAY - dt.timedelta(days=n % 4)) for n in range(5)])
    session.refresh()  # the first build
    for step in steps:
        kind, *args = step
        entries = session.entries()
        if kind == "refresh":
            session.refresh()
        elif kind == "news":
            start = len(session.news)
            session.news += [story(n, session.today) for n in range(start, start + args[0])]
        elif kind == "time":
            session.today += dt.timedelta(days=args[0])
        elif not entries and kind != "add":
            continue
        elif kind == "delete":
            gone = entries.pop(args[0] % len(entries))
            session.excluded.add(gone.link)
            session.pins = [p for p in session.pins if p != gone.link]
            session.fixes.pop(gone.link, None)
            session.write(entries)
        elif kind == "fix":
            target = entries[args[0] % len(entries)]
            if target.link in session.pins:
                continue  # a pin's words are the reviewer's anyway
            entries[args[0] % len(entries)] = ListEntry(target.link, args[1], target.source, target.date)
            session.fixes[target.link] = args[1]
            session.write(entries)
        elif kind == "add":
            session.hand_made += 1
            mine = ListEntry(f"https://blog.example.org/pick-{session.hand_made}", f"Our pick {session.hand_made}",
                             "Our team", session.today)
            entries.insert(args[0] % (len(entries) + 1), mine)
            session.pins.append(mine.link)
            session.write(entries)
        elif kind == "move":
            entries.insert(args[1] % len(entries), entries.pop(args[0] % len(entries)))
            session.write(entries)
    session.refresh()

"""The store behind its interface: same behaviour on every backend, schema steps that upgrade in place."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline import migrations
from pipeline.errors import StoreError
from pipeline.migrations import Step
from pipeline.models import FeedState, Item
from pipeline.store import open_store

NOW = dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc)
FEED = "https://news.example/rss"


def item(guid: str, date: dt.date | None, feed: str = FEED, headline: str = "Headline") -> Item:
    return Item(feed, guid, headline, "Pub", date, f"https://news.example/{guid}")


def test_migration_steps_are_numbered_one_by_one_and_create_every_table() -> None:
    migrations.check_steps()
    assert {"feeds", "items", "fingerprints", "model_cache"} <= set(migrations.tables_created(migrations.STEPS))


def test_items_come_newest_first_undated_last_ties_by_feed_then_guid(store_location: str) -> None:
    with open_store(store_location) as store:
        new = store.save_items([item("b", dt.date(2026, 3, 1)), item("a", dt.date(2026, 3, 1)),
                                item("Z", dt.date(2026, 3, 1), feed="https://a.example/rss"),
                                item("old", dt.date(2026, 1, 1)), item("undated", None),
                                item("é", dt.date(2026, 3, 1))], NOW)
        assert new == 6
        assert store.save_items([item("a", dt.date(2026, 3, 1), headline="Changed")], NOW + dt.timedelta(1)) == 0
        got = store.items()
        assert [(i.feed_url, i.guid) for i in got] == [
            ("https://a.example/rss", "Z"), (FEED, "a"), (FEED, "b"), (FEED, "é"), (FEED, "old"), (FEED, "undated")]
        assert got[1].headline == "Changed" and got[1].first_seen == NOW  # first_seen never moves
        assert [i.guid for i in store.items(since=dt.date(2026, 2, 1), feeds=[FEED])] == ["a", "b", "é"]
        assert store.items(feeds=[]) == []


def test_feed_state_round_trips_and_a_moved_feed_takes_its_items(store_location: str) -> None:
    state = FeedState(url=FEED, etag='"v1"', last_modified="Mon, 02 Mar 2026 12:00:00 GMT", last_attempt=NOW,
                      last_success=NOW, last_status="200", consecutive_failures=2,
                      retry_after=NOW + dt.timedelta(hours=1), moved_to="https://new.example/rss")
    with open_store(store_location) as store:
        store.save_feed_state(state)
        store.save_items([item("a", None), item("b", None)], NOW)
        store.save_items([item("b", None, feed="https://new.example/rss")], NOW)
        assert store.feed_state(FEED) == FeedState(**{**state.__dict__, "items_stored": 2})
        assert store.rename_feed(FEED, "https://new.example/rss") == 1
        assert store.feed_state("https://new.example/rss").etag == '"v1"'
        assert store.feed_state("https://new.example/rss").moved_to is None
        assert sorted(i.guid for i in store.items()) == ["a", "b"]
        assert list(store.feed_states()) == ["https://new.example/rss"]


def test_generated_parts_fingerprints_and_model_cache_are_kept(store_location: str) -> None:
    with open_store(store_location) as store:
        store.save_generated("visa", {"further-reading": "one", "*": "all"})
        store.save_generated("visa", {"further-reading": "two"})
        store.save_fingerprints({"visa": "abc", "bank": "x"})
        store.save_fingerprints({"visa": "def", "bank": None})
        store.cache_response("k", "fake:model", "first", NOW)
        store.cache_response("k", "fake:model", "second", NOW)
    with open_store(store_location) as store:
        assert store.generated("visa") == {"*": "all", "further-reading": "two"}
        assert store.fingerprints() == {"visa": "def"}
        assert store.cached_response("k") == "second" and store.cached_response("other") is None


def test_a_nul_character_in_feed_text_is_dropped_alike_on_every_backend(store_location: str) -> None:
    with open_store(store_location) as store:
        assert store.save_items([item("g\x00", None, headline="Alipay\x00 news")], NOW) == 1
        assert [(i.guid, i.headline) for i in store.items()] == [("g", "Alipay news")]


def test_a_batch_with_one_bad_row_saves_nothing(store_location: str) -> None:
    bad = Item(FEED, "bad", None, "Pub", None, "https://news.example/bad")  # type: ignore[arg-type]
    with open_store(store_location) as store:
        with pytest.raises(StoreError, match="write failed"):
            store.save_items([item("good", None), bad], NOW)
        assert store.items() == []


NEXT = migrations.latest() + 1  # a step this pipeline does not have yet
STEP_NEXT = Step(NEXT, "a test table and column",
                 sql=("CREATE TABLE IF NOT EXISTS notes (slug TEXT PRIMARY KEY, body TEXT)",),
                 add_columns=(("items", "test_note", "TEXT"),))


def test_a_new_step_upgrades_an_old_store_in_place_and_an_older_pipeline_refuses_it(
        store_location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(store_location) as store:
        store.save_items([item("kept", dt.date(2026, 3, 1))], NOW)
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, STEP_NEXT))
    with open_store(store_location) as store:
        assert [i.guid for i in store.items()] == ["kept"]
        assert "notes" in store.tables()
        columns, rows = store.dump("items")
        assert "test_note" in columns and rows[0][columns.index("test_note")] is None
    with open_store(store_location) as store:  # a second open finds nothing to do
        assert store.row_count("items") == 1
    monkeypatch.undo()
    with pytest.raises(StoreError, match=rf"written by a newer pipeline \(store version {NEXT}, this one knows {NEXT - 1}\)"):
        open_store(store_location)


def test_a_step_that_fails_leaves_the_store_at_its_old_version(
        store_location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    open_store(store_location).close()
    broken = Step(NEXT, "fails half way", sql=("CREATE TABLE IF NOT EXISTS notes (slug TEXT)", "NOT SQL AT ALL"))
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, broken))
    with pytest.raises(StoreError):
        open_store(store_location)
    monkeypatch.undo()
    with open_store(store_location) as store:  # still the old version, and the first statement was undone
        assert "notes" not in store._tables()  # type: ignore[attr-defined]


def test_the_condition_ledger_is_kept_alike_on_every_backend(store_location: str) -> None:
    from pipeline.models import Condition

    first = Condition("output/visa.md", "region-edited:context", "edited by hand", "edited by hand", "2026-03-01")
    feed = Condition(FEED, "failing", "3 failures", "# failures", "2026-03-02")
    with open_store(store_location) as store:
        store.save_conditions([feed, first], [])
        store.save_conditions([], [])  # nothing found, nothing over: nothing changes
        assert store.conditions() == [first, feed]  # oldest first
        store.save_conditions([Condition(FEED, "failing", "4 failures", "# failures", "2026-03-02")],
                              [("output/visa.md", "region-edited:context")])
        assert [(c.subject, c.message) for c in store.conditions()] == [(FEED, "4 failures")]

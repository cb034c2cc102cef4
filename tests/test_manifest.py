"""A build with nothing changed since its last clean run skips every draft at once (manifest.py);
any change to what a draft is made from sends the run down the draft-by-draft path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import project_store
from pipeline import build as build_module
from pipeline.build import BuildReport, build_drafts
from pipeline.config import load_feeds, load_settings
from pipeline.models import Item, LinkVerdicts

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
NEWS = Item("https://feeds.example.com/rss", "g1", "WeChat changes its privacy settings", "Example News",
            dt.date(2026, 3, 8), "https://news.example.com/1")


def _build(root: Path, now: dt.datetime = NOW, **options: object) -> BuildReport:
    settings = load_settings(root)
    with project_store(root) as store:
        return build_drafts(settings, store, load_feeds(settings.sources_path), now, **options)  # type: ignore[arg-type]


@pytest.fixture
def built(project: Path) -> Path:
    with project_store(project) as store:
        store.save_items([NEWS], NOW)
    assert {d.outcome for d in _build(project).drafts} == {"created"}
    return project


@pytest.fixture
def guides_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The guides the next build parses (none, when it takes the shortcut)."""
    read: list[str] = []
    real = build_module.load_guide

    def counting(path: Path, data: bytes | None = None) -> object:
        read.append(path.stem)
        return real(path, data)

    monkeypatch.setattr(build_module, "load_guide", counting)
    return read


def test_a_build_with_nothing_changed_reads_no_guide_and_reports_every_draft_unchanged(
        built: Path, guides_read: list[str]) -> None:
    drafts = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (built / "output").rglob("*") if p.is_file()}
    report = _build(built)
    assert [(d.slug, d.outcome, d.notes) for d in report.drafts] == [
        ("mobile-payments", "unchanged", ()), ("wechat-encryption", "unchanged", ())]
    assert guides_read == []
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in drafts} == drafts


def _edit_guide(root: Path) -> None:
    guide = root / "templates" / "guides" / "mobile-payments.md"
    guide.write_text(guide.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")


def _edit_draft(root: Path) -> None:
    draft = root / "output" / "wechat-encryption.md"
    draft.write_text(draft.read_text(encoding="utf-8").replace("\n## ", "\nA reviewer's line.\n\n## ", 1), encoding="utf-8")


def _edit_template(root: Path) -> None:
    partial = root / "templates" / "partials" / "disclaimer.md.j2"
    partial.write_text(partial.read_text(encoding="utf-8") + "\nUpdated.\n", encoding="utf-8")


def _new_story(root: Path) -> None:
    with project_store(root) as store:
        store.save_items([Item("https://feeds.example.com/rss", "g2", "Alipay raises limits for foreign cards",
                               "Other News", dt.date(2026, 3, 9), "https://other.example.com/2")], NOW)


def _retitled_story(root: Path) -> None:
    with project_store(root) as store:
        store.save_items([Item(NEWS.feed_url, NEWS.guid, "WeChat changes its privacy settings again", NEWS.source,
                               NEWS.date, NEWS.url)], NOW)


def _removed_state(root: Path) -> None:
    (root / "output" / ".pipeline" / "mobile-payments.json").unlink()


@pytest.mark.parametrize("change", [_edit_guide, _edit_draft, _edit_template, _new_story, _retitled_story,
                                    _removed_state])
def test_any_change_to_what_drafts_are_made_from_is_looked_at_draft_by_draft(
        built: Path, guides_read: list[str], change: Callable[[Path], None]) -> None:
    change(built)
    _build(built)
    assert sorted(guides_read) == ["mobile-payments", "wechat-encryption"]


def test_a_new_day_is_looked_at_draft_by_draft(built: Path, guides_read: list[str]) -> None:
    _build(built, NOW + dt.timedelta(days=1))  # stories may have aged out of a guide's window
    assert sorted(guides_read) == ["mobile-payments", "wechat-encryption"]


def test_a_run_that_left_something_for_a_person_is_never_the_shortcuts_record(
        built: Path, guides_read: list[str]) -> None:
    (built / "templates" / "guides" / "mobile-payments.md").write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    assert "error" in {d.outcome for d in _build(built).drafts}
    guides_read.clear()
    again = _build(built)  # nothing changed, but the last run was not clean: the error is said again
    assert [d.outcome for d in again.drafts if d.slug == "mobile-payments"] == ["error"]
    assert "mobile-payments" in guides_read


def test_forced_and_partial_builds_and_refreshes_keep_to_their_own_path(built: Path, guides_read: list[str]) -> None:
    _build(built, force=True)
    assert len(guides_read) == 2
    _build(built, only=["wechat-encryption"])
    assert guides_read[2:] == ["wechat-encryption"]
    guides_read.clear()
    _build(built, regions_only=True)  # a refresh keeps its own record: the first one looks
    assert len(guides_read) == 2
    guides_read.clear()
    assert {d.outcome for d in _build(built, regions_only=True).drafts} == {"unchanged"}
    assert guides_read == []
    # The forced and partial builds left no record of their own: the next build looks, once.
    assert {d.outcome for d in _build(built).drafts} == {"unchanged"}
    assert len(guides_read) == 2
    assert {d.outcome for d in _build(built).drafts} == {"unchanged"}
    assert len(guides_read) == 2


def test_a_refresh_with_the_same_link_verdicts_skips_at_once_and_a_newly_dead_link_does_not(
        built: Path, guides_read: list[str]) -> None:
    # Cron's refresh checks links: the verdicts are part of what the drafts were made from.
    draft = built / "output" / "wechat-encryption.md"
    assert NEWS.url in draft.read_text(encoding="utf-8")  # the premise: the story is listed
    verdicts = LinkVerdicts(dead=frozenset({"https://gone.example.com/old"}))
    assert all(d.outcome == "unchanged" for d in _build(built, regions_only=True, links=verdicts).drafts)
    guides_read.clear()
    again = _build(built, regions_only=True, links=verdicts)
    assert guides_read == [] and {d.outcome for d in again.drafts} == {"unchanged"}
    _build(built, regions_only=True, links=LinkVerdicts(dead=frozenset({NEWS.url})))
    assert sorted(guides_read) == ["mobile-payments", "wechat-encryption"]
    assert NEWS.url not in draft.read_text(encoding="utf-8")

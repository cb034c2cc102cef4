"""A large build shares its guides with a forked second process: the drafts, states, reports and
fingerprints are exactly what one process makes, and a failure on either side is reported."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from conftest import project_store
from pipeline import build as build_module
from pipeline.build import BuildReport, build_drafts
from pipeline.config import load_feeds, load_settings
from pipeline.models import Item
from pipeline.state import STATE_DIR
from pipeline.store import Store

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="the second process is forked")

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
COPIES = 9  # odd, with the two shipped guides: the halves differ in size


def _news() -> list[Item]:
    return [Item("https://feeds.example.com/rss", f"g{n}", headline, "Example News", dt.date(2026, 3, 8 - n % 3),
                 f"https://news.example.com/{n}")
            for n, headline in enumerate(["WeChat changes its privacy settings", "Alipay raises limits for foreign cards",
                                          "WeChat Pay adds foreign cards", "Encryption rules for messaging apps"])]


@pytest.fixture
def twins(project: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two identical projects with COPIES more guides, news in their stores."""
    guides = project / "templates" / "guides"
    for n in range(COPIES):
        source = guides / ("mobile-payments.md" if n % 2 else "wechat-encryption.md")
        shutil.copy(source, guides / f"copy-{n}.md")
    with project_store(project) as store:
        store.save_items(_news(), NOW)
    other = tmp_path / "other"
    shutil.copytree(project, other)
    return project, other


def _build(root: Path, processes: int, **options: object) -> tuple[BuildReport, dict[str, str]]:
    settings = load_settings(root)
    with project_store(root) as store:
        report = build_drafts(settings, store, load_feeds(settings.sources_path), NOW, processes=processes,
                              **options)  # type: ignore[arg-type]
        return report, _fingerprints(store)


def _fingerprints(store: Store) -> dict[str, str]:
    """The drafts' fingerprints (not the record of a clean run, whose key is no slug)."""
    return {key: value for key, value in store.fingerprints().items() if not key.startswith(":")}


def _files(root: Path) -> dict[str, bytes]:
    output = root / "output"
    return {p.relative_to(output).as_posix(): p.read_bytes()
            for p in sorted([*output.glob("*.md"), *(output / STATE_DIR).glob("*")])}


def _outcomes(report: BuildReport) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(d.slug, d.outcome, d.notes) for d in report.drafts]


@pytest.mark.both_backends
def test_two_processes_write_what_one_writes(twins: tuple[Path, Path], backend: str) -> None:
    one, two = twins
    alone, alone_prints = _build(one, 1)
    shared, shared_prints = _build(two, 2)
    assert len(alone.drafts) == COPIES + 2
    assert _outcomes(shared) == _outcomes(alone)  # in guide order, whichever process built a draft
    assert _files(two) == {name: data.replace(str(one).encode(), str(two).encode())
                           for name, data in _files(one).items()}
    assert len(shared_prints) == COPIES + 2
    # Fingerprints cover the project's folder, so they differ between the copies; both are complete
    # and the next shared build skips every draft, as the next single one does.
    again, _ = _build(two, 2)
    assert {d.outcome for d in again.drafts} == {"unchanged"}
    assert len(alone_prints) == len(shared_prints)


def test_a_shared_refresh_writes_what_one_writes(twins: tuple[Path, Path]) -> None:
    one, two = twins
    _build(one, 1)
    _build(two, 2)
    for root in twins:
        with project_store(root) as store:
            store.save_items([Item("https://feeds.example.com/rss", "late", "WeChat adds a privacy checkup",
                                   "Other News", dt.date(2026, 3, 9), "https://other.example.com/late")], NOW)
    alone, _ = _build(one, 1, regions_only=True)
    shared, _ = _build(two, 2, regions_only=True)
    assert _outcomes(shared) == _outcomes(alone)
    assert "updated" in {d.outcome for d in shared.drafts}
    assert _files(two) == {name: data.replace(str(one).encode(), str(two).encode())
                           for name, data in _files(one).items()}


def test_a_broken_guide_in_the_second_process_is_reported_and_the_rest_are_built(twins: tuple[Path, Path]) -> None:
    root, _ = twins
    broken = root / "templates" / "guides" / "wechat-encryption.md"  # last in guide order: the child's half
    broken.write_text("---\ntitle: [unclosed\n---\n\nText.\n", encoding="utf-8")
    report, prints = _build(root, 2)
    failed = [d for d in report.drafts if d.outcome == "error"]
    assert [d.slug for d in failed] == ["wechat-encryption"]
    assert str(broken) in failed[0].notes[0] and "not valid YAML" in failed[0].notes[0]
    assert sum(d.outcome == "created" for d in report.drafts) == COPIES + 1
    assert "wechat-encryption" not in prints


def test_a_failure_that_stops_the_second_process_stops_the_run_with_its_own_error(
        twins: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.errors import StoreError

    root, _ = twins
    real = build_module.last_written

    def store_gone(store: Store, output_dir: Path, slug: str, *args: object) -> object:
        if slug == "wechat-encryption":  # the second process's last guide
            raise StoreError("the store went away")
        return real(store, output_dir, slug, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(build_module, "last_written", store_gone)
    with pytest.raises(StoreError, match="the store went away"):
        _build(root, 2)
    # The first process's drafts were written whole; the run can be repeated.
    monkeypatch.setattr(build_module, "last_written", real)
    report, _ = _build(root, 2)
    assert {d.outcome for d in report.drafts} <= {"created", "unchanged"}


def test_a_large_build_shares_its_guides_and_a_small_or_model_drafted_one_does_not(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(project)
    run = build_module.BuildRun(settings, (), NOW, False, False, None, None, None, {}, None)  # type: ignore[arg-type]
    monkeypatch.setattr(build_module, "can_fork", lambda: True)
    assert build_module._processes(run, build_module.SHARED_FROM, None) == 2
    assert build_module._processes(run, build_module.SHARED_FROM - 1, None) == 1
    with_model = build_module.BuildRun(settings, (), NOW, False, False, lambda *_: None, None, None, {}, None)  # type: ignore[arg-type]
    assert build_module._processes(with_model, 10_000, None) == 1
    monkeypatch.setenv("PIPELINE_PAUSE", "staged.md:1:/nowhere")  # pause points count in one process
    assert build_module._processes(run, 10_000, None) == 1


def test_when_both_processes_fail_the_run_reports_its_own_failure(twins: tuple[Path, Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.errors import StoreError

    root, _ = twins

    def store_gone(store: Store, output_dir: Path, slug: str, *args: object) -> object:
        raise StoreError(f"the store went away at {slug}")

    monkeypatch.setattr(build_module, "last_written", store_gone)
    with pytest.raises(StoreError, match="the store went away at copy-0"):  # the first process's first guide
        _build(root, 2)

"""Reviewer notes `{>>like this<<}`: found by the Markdown parser, kept by refresh and the three-way
merge, and a release gate (`check --release` fails while one remains)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURE
from pipeline.drafts import read_draft
from pipeline.models import Item
from pipeline.notes import Note, find_notes
from pipeline.store import open_store
from review_support import EPOCH, draft_path, run

SLUG = "mobile-payments"
GUIDE_SENTENCE = re.compile(r"Refunds normally go back to the original payment method")
MARKER = re.compile(r"^<!-- pipeline:(begin|end) [a-z-]+ -->$")


def test_notes_are_found_with_their_lines_and_not_in_code() -> None:
    text = ("Intro {>>check this<<} text.\n"
            "second line {>>and\nthis<<}\n\n"
            "`{>>a code span<<}` and\n\n"
            "```\n{>>in a fence<<}\n```\n\n"
            "- a list {>> spaced <<}\n")
    assert find_notes(text, first_line=10) == [Note(10, "check this"), Note(11, "and\nthis"), Note(20, "spaced")]
    assert find_notes("no notes {>> unclosed") == []


def test_check_warns_about_a_note_and_release_fails_until_it_is_resolved(built: Path) -> None:
    path = draft_path(built)
    clean = path.read_text(encoding="utf-8")
    assert run(built, "status", str(path), "approved").exit_code == 0
    assert run(built, "check", "--release", str(path)).exit_code == 0
    approved = path.read_text(encoding="utf-8")
    line = approved.split("\n").index(next(l for l in approved.split("\n") if GUIDE_SENTENCE.search(l))) + 1
    path.write_text(approved.replace("Refunds normally go back", "{>>Still true?<<} Refunds normally go back"),
                    encoding="utf-8")

    warned = run(built, "check", str(path))
    assert warned.exit_code == 0, warned.stdout  # without --release a note is a warning
    assert f"{path.name}:{line}: note: warning: reviewer note {{>>Still true?<<}} is still open" in warned.stdout
    assert "no problems, 1 warning(s)" in warned.stderr
    gate = run(built, "check", "--release", str(path))
    assert gate.exit_code == 1
    assert f":{line}: note: " in gate.stdout and "1 problem(s)" in gate.stderr

    path.write_text(approved, encoding="utf-8")  # resolved: the note is deleted
    assert run(built, "check", "--release", str(path)).exit_code == 0
    assert clean != approved  # the status change really happened


# -- property: notes survive refresh and the three-way merge --------------------------------------

def _item(number: int) -> Item:
    day = dt.datetime.fromtimestamp(EPOCH, tz=dt.timezone.utc).date() - dt.timedelta(days=1)
    return Item(feed_url="https://feeds.example.com/pay.xml", guid=f"story-{number}",
                headline=f"Alipay update {900 - number} for foreign visitors", source=f"Desk {number}",
                date=day, url=f"https://news.example.com/story-{number}")


def _store(root: Path, number: int) -> None:
    with open_store(root / "pipeline.sqlite3") as store:
        store.save_items([_item(number)], dt.datetime.fromtimestamp(EPOCH, tz=dt.timezone.utc))


@pytest.fixture(scope="module")
def template_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("notes") / "project"
    root.mkdir()
    shutil.copytree(FIXTURE / "templates", root / "templates")
    (root / "sources").mkdir()
    (root / "sources" / "feeds.toml").write_text("", encoding="utf-8")
    (root / "output").mkdir()
    _store(root, 0)
    assert run(root, "build", "--offline").exit_code == 0
    return root


def _owned_lines(lines: list[str]) -> list[int]:
    """Lines a reviewer owns (outside the regions), away from the one the guide change touches (a
    line-based merge calls edits on neighbouring lines a conflict)."""
    guide_line = next(i for i, line in enumerate(lines) if GUIDE_SENTENCE.search(line))
    owned, inside = [], False
    for index, line in enumerate(lines):
        if MARKER.match(line):
            inside = line.startswith("<!-- pipeline:begin")
        elif not inside and abs(index - guide_line) > 4 and not line.startswith(("```", "---", "#")):
            owned.append(index)
    return owned


note_text = st.text(alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters=" ?.,!'-"),
                    min_size=1, max_size=40).map(str.strip).filter(bool)
placement = st.tuples(st.floats(min_value=0, max_value=1, exclude_max=True), st.sampled_from(["end", "own line"]),
                      note_text)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(notes=st.lists(placement, min_size=1, max_size=4))
def test_notes_survive_refresh_and_the_three_way_merge(template_project: Path,
                                                       notes: list[tuple[float, str, str]]) -> None:
    with tempfile.TemporaryDirectory(prefix="notes-property-") as folder:
        root = Path(folder) / "project"
        shutil.copytree(template_project, root)
        path = draft_path(root)
        draft = read_draft(path)
        assert draft is not None
        lines = draft.body.split("\n")
        for where, how, text in notes:
            index = _owned_lines(lines)[int(where * len(_owned_lines(lines)))]
            if how == "end":
                lines[index] = f"{lines[index]} {{>>{text}<<}}" if lines[index].strip() else f"{{>>{text}<<}}"
            else:
                lines[index:index] = ["", f"{{>>{text}<<}}", ""]
        path.write_text(draft.with_changes(draft.front_matter_text, "\n".join(lines)), encoding="utf-8")
        wanted = sorted(text for _, _, text in notes)
        assert sorted(n.text for n in find_notes(read_draft(path).body)) == wanted  # type: ignore[union-attr]

        _store(root, 1)  # news arrives; cron refreshes the regions
        refreshed = run(root, "refresh")
        assert refreshed.exit_code == 0, refreshed.stderr
        assert "Alipay update 899" in path.read_text(encoding="utf-8")
        guide = root / "templates" / "guides" / f"{SLUG}.md"  # an editor changes the guide; build merges
        guide.write_text(GUIDE_SENTENCE.sub("Refunds usually go back to the original payment method",
                                            guide.read_text(encoding="utf-8")), encoding="utf-8")
        merged = run(root, "build", "--offline")
        assert merged.exit_code == 0, merged.stderr
        body = read_draft(path).body  # type: ignore[union-attr]
        assert "Refunds usually go back" in body  # the merge happened
        assert sorted(n.text for n in find_notes(body)) == wanted

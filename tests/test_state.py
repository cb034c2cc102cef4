"""State that travels: each draft's merge state beside it in output/.pipeline/, committed with it.

A clone with drafts and states but no store behaves as the machine that wrote them; the store is a
cache that is safe to lose; a run killed between writing a draft and its state leaves a pair the next
run reads right.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FeedServer
from pipeline.build import write_draft
from pipeline.drafts import blank_regions, compose_draft_text, read_draft
from pipeline.errors import DraftError
from pipeline.policy import generated_keys
from pipeline.store import open_store
from pipeline.state import (
    Approval,
    Change,
    DraftState,
    load_state,
    save_state,
    stage_state,
    state_path,
    text_sha256,
)
from review_support import NEW_STORY, Story, draft_path, gain_story, run, serve_feeds

GUIDE = Path("templates/guides/mobile-payments.md")
GUIDE_LINE = "There are two main apps. Alipay is a standalone app run by Ant Group"
REVIEWER_LINE = "If something goes wrong, contact the merchant first"
STORE_FILES = ("pipeline.sqlite3", "pipeline.sqlite3-wal", "pipeline.sqlite3-shm")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def delete_store(root: Path) -> None:
    for name in STORE_FILES:
        (root / name).unlink(missing_ok=True)


def outputs(root: Path) -> dict[str, bytes]:
    """Every draft and state file under output/, by relative path."""
    folder = root / "output"
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".gitignore"}


# -- the file ------------------------------------------------------------------------------------


def test_a_state_file_is_stable_diffable_json_that_reads_back_the_same(tmp_path: Path) -> None:
    state = DraftState(
        regions={"further-reading": "🔸 One\n🗞️ Source: X – 📅 2025-01-01", "context": ""},
        skeleton="# T\n\n<!-- pipeline:begin context -->\n<!-- pipeline:end context -->\n",
        front_matter={"title": "T", "tags": ["a", "b"]},
        approved=Approval("2025-03-01T12:00:00Z", "---\ntitle: T\n---\n\nbody\n"),
        changes_since_approval=(Change("2025-03-02T00:00:00Z", "further-reading", "1 story added"),),
        draft_sha256="abc",
    )
    save_state(tmp_path, "x", state)
    text = state_path(tmp_path, "x").read_text(encoding="utf-8")

    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert list(json.loads(text)) == sorted(json.loads(text))  # sorted keys
    assert '    "# T",\n' in text  # one text line per line of the file: diffs and merges read like the draft's
    assert "🔸 One" in text  # not \\u-escaped
    assert load_state(tmp_path, "x") == state
    assert DraftState.from_json(state.to_json()).to_json() == text


def test_no_state_is_none_and_a_broken_one_is_one_clear_error(tmp_path: Path) -> None:
    assert load_state(tmp_path, "x") is None
    path = state_path(tmp_path, "x")
    path.parent.mkdir()
    path.write_text('<<<<<<< HEAD\n{"version": 1}\n=======\n', encoding="utf-8")
    with pytest.raises(DraftError) as caught:
        load_state(tmp_path, "x")
    assert str(path) in str(caught.value)
    assert "take either side and run `pipeline build`" in caught.value.message


def test_a_run_killed_between_the_draft_and_its_state_leaves_a_pair_read_right(tmp_path: Path) -> None:
    old_text, new_text = compose_draft_text({"title": "old"}, "b\n"), compose_draft_text({"title": "new"}, "b\n")
    (tmp_path / "x.md").write_text(old_text, encoding="utf-8")
    old = DraftState(regions={"r": "old"}, draft_sha256=text_sha256(old_text))
    new = DraftState(regions={"r": "new"}, draft_sha256=text_sha256(new_text))
    save_state(tmp_path, "x", old)

    # Killed after staging the state, before the draft was renamed: the old pair holds.
    stage_state(tmp_path, "x", new)
    assert load_state(tmp_path, "x") == old
    # Killed after the draft was renamed, before its state: the staged state is the draft's.
    (tmp_path / "x.md").write_text(new_text, encoding="utf-8")
    assert load_state(tmp_path, "x") == new


def test_writing_a_draft_writes_its_state_naming_the_text_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    text = compose_draft_text({"title": "T"}, "b\n")
    assert write_draft(path, None, text, DraftState(regions={"r": "x"}))
    state = load_state(tmp_path, "x")
    assert state is not None and state.regions == {"r": "x"} and state.draft_sha256 == text_sha256(text)
    existing = read_draft(path)
    path.write_text(text + "saved by a reviewer\n", encoding="utf-8")
    assert not write_draft(path, existing, text + "ours\n", DraftState(regions={"r": "y"}))
    assert load_state(tmp_path, "x") == state  # neither the draft nor its state moved
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".pipeline", "x.json", "x.md"]


# -- a build keeps its state beside the draft --------------------------------------------------------


def test_build_writes_a_state_that_describes_the_draft(built: Path) -> None:
    path = draft_path(built)
    draft = read_draft(path)
    state = load_state(built / "output", "mobile-payments")
    assert draft is not None and state is not None
    assert state.regions == draft.regions
    assert state.skeleton == blank_regions(draft.body)
    assert state.front_matter is not None and state.front_matter["title"] == draft.front_matter["title"]
    assert state.draft_sha256 == text_sha256(draft.text)
    assert state.approved is None and state.changes_since_approval == ()


def test_a_draft_made_by_the_previous_version_moves_its_store_record_into_a_state(
    built: Path, feed_server: FeedServer
) -> None:
    path = draft_path(built)
    # As the previous version left it: what it last wrote is recorded in the store only.
    draft = read_draft(path)
    assert draft is not None
    records = {f"region:{name}": text for name, text in draft.regions.items()}
    records["skeleton"] = blank_regions(draft.body)
    records["front_matter"] = json.dumps(generated_keys(draft.front_matter))
    with open_store(built / "pipeline.sqlite3") as store:
        store.save_generated("mobile-payments", records)
    (built / "output" / ".pipeline" / "mobile-payments.json").unlink()
    edit(path, REVIEWER_LINE, "Reviewer note. " + REVIEWER_LINE)
    edit(built / GUIDE, GUIDE_LINE, "There are two main apps (edited). Alipay is a standalone app run by Ant Group")
    gain_story(feed_server, NEW_STORY)

    result = run(built, "build")

    assert result.exit_code == 0 and result.stderr == "", result.stderr
    text = path.read_text(encoding="utf-8")
    assert "Reviewer note. " in text and "(edited)" in text and NEW_STORY.headline in text
    assert "wechat-encryption.md" not in result.stderr
    assert state_path(built / "output", "mobile-payments").exists()
    delete_store(built)  # from now on the state alone is the record
    edit(path, "Reviewer note. ", "Reviewer note, again. ")
    assert run(built, "build").stderr == ""
    assert "Reviewer note, again. " in path.read_text(encoding="utf-8")


def _week(root: Path, server: FeedServer, between: object) -> list[tuple[int, str]]:
    """Build, edit, refresh, change the guide, build, edit a region, refresh; `between` runs between steps."""
    steps = [
        lambda: run(root, "build"),
        lambda: edit(draft_path(root), REVIEWER_LINE, "Reviewer note. " + REVIEWER_LINE),
        lambda: gain_story(server, NEW_STORY),
        lambda: run(root, "refresh", epoch=1740830400 + 1800),
        lambda: edit(root / GUIDE, GUIDE_LINE, "There are two main apps (edited). Alipay is a standalone app"
                                              " run by Ant Group"),
        lambda: run(root, "build", epoch=1740830400 + 3600),
        lambda: edit(draft_path(root), "<!-- pipeline:begin context -->\n",
                     "<!-- pipeline:begin context -->\nOur reporter checked this.\n"),
        lambda: run(root, "refresh", epoch=1740830400 + 5400),
        lambda: run(root, "build", epoch=1740830400 + 7200),
    ]
    results = []
    for step in steps:
        outcome = step()
        if outcome is not None:
            results.append((outcome.exit_code, outcome.stderr.replace(str(root), "ROOT")))
        between()  # type: ignore[operator]
    return results


def test_deleting_the_store_between_any_two_steps_changes_nothing(
    tmp_path: Path, feed_server: FeedServer, project: Path
) -> None:
    kept, wiped = tmp_path / "kept", tmp_path / "wiped"
    shutil.copytree(project, kept)
    shutil.copytree(project, wiped)
    serve_feeds(kept, feed_server)
    serve_feeds(wiped, feed_server)
    original_routes = dict(feed_server.routes)

    with_store = _week(kept, feed_server, lambda: None)
    feed_server.routes.clear()
    feed_server.routes.update(original_routes)
    without_store = _week(wiped, feed_server, lambda: delete_store(wiped))

    assert without_store == with_store
    assert outputs(wiped) == outputs(kept)
    assert "Our reporter checked this." in draft_path(wiped).read_text(encoding="utf-8")


# -- two clones sharing one content repository through git ------------------------------------------------


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(folder), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_two_clones_share_drafts_and_state_through_git_and_lose_no_word(
    tmp_path: Path, project: Path, feed_server: FeedServer
) -> None:
    origin, a, b = tmp_path / "origin.git", tmp_path / "a", tmp_path / "b"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    shutil.copytree(project, a)
    serve_feeds(a, feed_server)
    (a / ".gitignore").write_text("pipeline.sqlite3*\n.pipeline.lock\n", encoding="utf-8")
    # Clone A builds and commits drafts with their state.
    assert run(a, "build").exit_code == 0
    git(a, "init", "-q", "-b", "main")
    git(a, "add", "-A")
    git(a, "commit", "-qm", "drafts")
    assert "output/.pipeline/mobile-payments.json" in git(a, "ls-files")
    git(a, "remote", "add", "origin", str(origin))
    git(a, "push", "-q", "origin", "main")

    # Clone B has no store; a reviewer edits there and commits.
    git(tmp_path, "clone", "-q", str(origin), str(b))
    assert not (b / "pipeline.sqlite3").exists()
    edit(draft_path(b), REVIEWER_LINE, "B's reviewer: keep the receipt. " + REVIEWER_LINE)
    edit(draft_path(b), "<!-- pipeline:begin context -->\n",
         "<!-- pipeline:begin context -->\nB's reporter checked this in Shanghai.\n")
    git(b, "commit", "-qam", "review")
    git(b, "push", "-q", "origin", "main")

    # A pulls, edits too, and the editors change the guide there.
    git(a, "pull", "-q", "origin", "main")
    edit(draft_path(a), "description: ", "description: A's wording. ")
    edit(a / GUIDE, GUIDE_LINE, "There are two main apps (updated on A). Alipay is a standalone app run by Ant Group")
    git(a, "commit", "-qam", "guide")
    git(a, "push", "-q", "origin", "main")
    gain_story(feed_server, NEW_STORY)

    # B pulls and builds with no store of its own; A builds the same commit.
    git(b, "pull", "-q", "origin", "main")
    built_b = run(b, "build", epoch=1740830400 + 3600)
    built_a = run(a, "build", epoch=1740830400 + 3600)

    assert built_b.exit_code == 0 and built_a.exit_code == 0
    text = draft_path(b).read_text(encoding="utf-8")
    for words in ("B's reviewer: keep the receipt. ", "B's reporter checked this in Shanghai.",
                  "description: A's wording. ", "(updated on A)", NEW_STORY.headline):
        assert words in text
    assert "no record" not in built_b.stderr
    assert built_b.stderr.replace(str(b), "X") == built_a.stderr.replace(str(a), "X")
    assert outputs(b) == outputs(a)


def test_a_refresh_killed_between_its_draft_and_its_state_is_read_right_by_the_next(
    built: Path, feed_server: FeedServer
) -> None:
    state_file = state_path(built / "output", "mobile-payments")
    old_state = state_file.read_bytes()
    gain_story(feed_server, NEW_STORY)
    assert run(built, "refresh", epoch=1740830400 + 1800).stderr == ""
    # As a kill between the two renames leaves it: the new draft, its state still staged, the old state.
    state_file.rename(state_file.with_name("mobile-payments.json.pending"))
    state_file.write_bytes(old_state)
    gain_story(feed_server, Story("Alipay opens a help desk at Pudong airport", "alipay-desk", 0), etag='"pay-3"')

    result = run(built, "refresh", epoch=1740830400 + 3600)

    assert (result.exit_code, result.stderr) == (0, "")  # not taken for a hand edit
    assert "Alipay opens a help desk" in draft_path(built).read_text(encoding="utf-8")
    assert not state_file.with_name("mobile-payments.json.pending").exists()
    assert load_state(built / "output", "mobile-payments").draft_sha256 == text_sha256(  # type: ignore[union-attr]
        draft_path(built).read_text(encoding="utf-8"))


def test_a_reviewers_edit_leaves_the_state_untouched_so_git_sees_one_change(built: Path) -> None:
    state_file = state_path(built / "output", "mobile-payments")
    before = state_file.read_bytes()
    edit(draft_path(built), REVIEWER_LINE, "Reviewer note. " + REVIEWER_LINE)

    for command in ("refresh", "build"):
        assert run(built, command).exit_code == 0
        assert state_file.read_bytes() == before, command



def test_a_second_kill_before_the_next_draft_is_in_place_still_leaves_a_pair_read_right(tmp_path: Path) -> None:
    from pipeline.drafts import batched_writes

    texts = [compose_draft_text({"title": f"v{n}"}, "b\n") for n in range(3)]
    states = [DraftState(regions={"r": f"v{n}"}, draft_sha256=text_sha256(texts[n])) for n in range(3)]
    (tmp_path / "x.md").write_text(texts[0], encoding="utf-8")
    save_state(tmp_path, "x", states[0])
    # Killed after the draft was renamed, before its state: v1 on disk, its state still pending.
    stage_state(tmp_path, "x", states[1])
    (tmp_path / "x.md").write_text(texts[1], encoding="utf-8")
    assert load_state(tmp_path, "x") == states[1]
    # The next run stages v2 and is killed before putting it in place (the batch is never committed).
    with batched_writes():
        assert write_draft(tmp_path / "x.md", read_draft(tmp_path / "x.md"), texts[2], states[2])
    assert (tmp_path / "x.md").read_text(encoding="utf-8") == texts[1]
    assert load_state(tmp_path, "x") == states[1]  # still the state of the draft on disk

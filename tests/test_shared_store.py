"""Two checkouts ("two hosts") on one PostgreSQL store, and a server that dies mid-run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FeedServer, PausePoint, project_store, throwaway_pg_server
from pgserver import PgServer
from review_support import NEW_STORY, PYTHON, env_for_subprocess, gain_story, run, serve_feeds

from pipeline.drafts import split_draft

PIPELINE = str(Path(sys.executable).with_name("pipeline"))


def drafts(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "output").glob("*.md"))}


@pytest.fixture
def two_checkouts(project: Path, tmp_path: Path, pg_server: PgServer, feed_server: FeedServer) -> tuple[Path, Path]:
    """The same project checked out twice, both pointed at one database; the feeds on the test server."""
    serve_feeds(project, feed_server)
    (project / "pyproject.toml").write_text(f'[tool.pipeline]\nstore = "{pg_server.create_database()}"\n',
                                            encoding="utf-8")
    other = tmp_path / "laptop" / "project"
    shutil.copytree(project, other)
    return project, other


HOLDER = """
import sys
from pathlib import Path
from pipeline.config import load_settings
from pipeline.lock import run_lock
with run_lock(load_settings(Path(sys.argv[1])), wait_seconds=0):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_two_checkouts_share_items_and_build_the_same_drafts(two_checkouts: tuple[Path, Path]) -> None:
    server, laptop = two_checkouts
    fetched = run(server, "fetch")
    assert fetched.exit_code == 0, fetched.stderr
    # The laptop never fetched, yet lists every item the server stored.
    listed = [run(root, "items", "--json").stdout for root in (server, laptop)]
    assert listed[0] == listed[1] and '"headline"' in listed[0]
    for root in (server, laptop):
        result = run(root, "build", "--offline")
        assert result.exit_code == 0, result.stderr
    assert drafts(server) == drafts(laptop)
    assert len(drafts(server)) == 2


def test_while_one_checkout_holds_the_lock_the_other_neither_fetches_nor_writes(
        two_checkouts: tuple[Path, Path], feed_server: FeedServer) -> None:
    server, laptop = two_checkouts
    assert run(laptop, "build").exit_code == 0
    gain_story(feed_server, NEW_STORY)
    before, requests = drafts(laptop), len(feed_server.requests)
    # Different folders, so no file lock could see the other: only the store's lock does.
    holder = subprocess.Popen([PYTHON, "-c", HOLDER, str(server)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env_for_subprocess())
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        refresh = run(laptop, "refresh", "--wait", "0.2")
        build = run(laptop, "build", "--wait", "0")
    finally:
        holder.kill()
        holder.wait(30)
    assert refresh.exit_code == 0 and "refresh skipped: another pipeline run holds the run lock in" in refresh.stderr
    assert f"pid {holder.pid})" in refresh.stderr
    assert build.exit_code == 1 and "try again later" in build.stderr
    assert len(feed_server.requests) == requests and drafts(laptop) == before
    # Once the holder is gone, the laptop's refresh goes ahead (it waits for the server to notice).
    after = run(laptop, "refresh", "--wait", "30")
    assert after.exit_code == 0, after.stderr
    assert NEW_STORY.headline in (laptop / "output" / "mobile-payments.md").read_text(encoding="utf-8")


def test_refreshes_from_two_checkouts_at_once_both_finish_one_at_a_time(
        two_checkouts: tuple[Path, Path], feed_server: FeedServer) -> None:
    server, laptop = two_checkouts
    for root in (server, laptop):
        assert run(root, "build", "--offline").exit_code == 0
    gain_story(feed_server, NEW_STORY)
    runs = [subprocess.Popen([PIPELINE, "--root", str(root), "refresh", "--wait", "60"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env_for_subprocess()) for root in (server, laptop)]
    for process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and out == "" and "Traceback" not in err, err
    assert drafts(server) == drafts(laptop)
    assert NEW_STORY.headline in drafts(server)["mobile-payments.md"].decode()



HAND = "Dana checked: the limit is 5,000 yuan."


def test_a_condition_found_on_one_checkout_is_said_once_and_listed_on_both(
        two_checkouts: tuple[Path, Path], feed_server: FeedServer) -> None:
    server, laptop = two_checkouts
    assert run(server, "build").exit_code == 0
    shutil.copytree(server / "output", laptop / "output", dirs_exist_ok=True)  # as git carries the drafts
    for root in (server, laptop):  # a reviewer's hand edit, committed and pulled on both
        path = root / "output" / "mobile-payments.md"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("\U0001f538 ", f"{HAND}\n\n\U0001f538 ", 1), encoding="utf-8")
    said = run(server, "refresh")
    assert said.exit_code == 0 and said.stderr.count("was edited by hand") == 1, said.stderr
    # The laptop finds the same condition: already said, so it stays quiet, and both list it on the draft.
    again = run(laptop, "refresh")
    assert again.exit_code == 0 and again.stderr == "", again.stderr
    for root in (server, laptop):
        listed = json.loads(run(root, "status", "--json").stdout)
        assert listed["open"] == [], listed["open"]
        opened = {Path(d["path"]).name: [c["kind"] for c in d["open"]] for d in listed["drafts"]}
        assert opened["mobile-payments.md"] == ["region-edited:further-reading"], opened
    with project_store(server) as store:
        assert [(c.subject, c.kind) for c in store.conditions()] == [
            ("output/mobile-payments.md", "region-edited:further-reading")]
        assert str(server) not in store.conditions()[0].message
    # The reviewer's fix, pulled on the laptop, ends it for both.
    path = laptop / "output" / "mobile-payments.md"
    path.write_text(path.read_text(encoding="utf-8").replace(f"{HAND}\n\n", ""), encoding="utf-8")
    assert run(laptop, "refresh").stderr == ""
    listed = json.loads(run(server, "status", "--json").stdout)
    assert listed["open"] == [] and all(d["open"] == [] for d in listed["drafts"]), listed

# -- a server killed mid-run -----------------------------------------------------------------------

GUIDES = 150


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test's own, since it is killed."""
    yield from throwaway_pg_server()


def test_a_server_killed_mid_build_fails_the_run_in_one_line_and_the_next_run_recovers(
        project: Path, own_server: PgServer) -> None:
    url = own_server.create_database()
    (project / "pyproject.toml").write_text(f'[tool.pipeline]\nstore = "{url}"\n', encoding="utf-8")
    guides = project / "templates" / "guides"
    source = (guides / "mobile-payments.md").read_text(encoding="utf-8")
    for n in range(GUIDES):
        (guides / f"copy-{n:03d}.md").write_text(source, encoding="utf-8")

    # Stopped after staging 20 drafts, with the items read and the fingerprints not yet recorded:
    # mid-way by construction, not by timing. (The run stays in one process while a pause is set.)
    pause = PausePoint(project.parent, "staged.md", 20)
    build = subprocess.Popen([PIPELINE, "--root", str(project), "build", "--offline"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**env_for_subprocess(), **pause.env})
    pause.wait(lambda: build.poll() is None)
    own_server.stop("immediate")  # every connection dropped at once, as when the server crashes
    pause.resume()
    _, stderr = build.communicate(timeout=120)

    assert build.returncode == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"Error: {url.replace(':throwaway-pw@', ':***@')}: lost the connection to the "
                               "PostgreSQL server (")
    assert lines[0].endswith("check the server is running, then run again")
    written = drafts(project)  # made from the items read before the server went: whole, and correct
    for name, text in written.items():
        split_draft(project / "output" / name, text.decode())  # whole drafts, each one readable

    own_server.start()
    again = run(project, "build", "--offline")
    assert again.exit_code == 0, again.stderr
    assert again.stderr == ""  # each draft's merge record is written with it, not in the store
    recovered = drafts(project)
    assert len(recovered) == GUIDES + 2
    for name, text in recovered.items():
        split_draft(project / "output" / name, text.decode())
    # Nothing is left half done: the run after that finds every draft as it should be.
    steady = run(project, "build", "--offline")
    assert steady.exit_code == 0 and f"{GUIDES + 2} unchanged" in steady.stdout, steady.stdout + steady.stderr
    assert drafts(project) == recovered

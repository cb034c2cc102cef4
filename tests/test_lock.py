"""The project lock: two runs at once never both write, and a dead holder never blocks the next run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import FeedServer, PausePoint
from pipeline.errors import LockHeld
from pipeline.config import load_settings
from pipeline.lock import project_lock, run_lock
from review_support import (
    NEW_STORY,
    PYTHON,
    assert_whole,
    draft_path,
    env_for_subprocess,
    gain_story,
    run,
    snapshot,
)

HOLDER = """
import sys, time
from pathlib import Path
from pipeline.config import load_settings
from pipeline.lock import run_lock
with run_lock(load_settings(Path(sys.argv[1])), wait_seconds=0):
    print("locked", flush=True)
    sys.stdin.read()  # hold until the test closes our stdin (or kills us)
"""

# The tests that take the run lock of a project run with the file lock (SQLite) and the advisory lock
# of a shared PostgreSQL store alike.
both_backends = pytest.mark.both_backends


def held_by(root: Path, pid: int) -> str:
    """How the lock-held message names the holder, on the project's backend."""
    settings = load_settings(root)
    if settings.store:
        from pipeline.store_postgres import without_password

        return f"another pipeline run holds the run lock in {without_password(settings.store)} (pipeline " \
               f"{socket.gethostname()} pid {pid})"
    return f"another pipeline run holds {root / '.pipeline.lock'} (pid {pid})"



@contextmanager
def lock_held_by_another_process(root: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen([PYTHON, "-c", HOLDER, str(root)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env_for_subprocess())
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)


def test_a_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / ".pipeline.lock"
    with project_lock(lock, wait_seconds=0):
        with pytest.raises(LockHeld, match=f"another pipeline run holds {lock} \\(pid {os.getpid()}\\)"):
            with project_lock(lock, wait_seconds=0):
                pass
    with project_lock(lock, wait_seconds=0):  # released on exit
        assert lock.read_text() == str(os.getpid())


@both_backends
def test_refresh_gives_up_quietly_while_another_run_holds_the_lock(built: Path, feed_server: FeedServer) -> None:
    gain_story(feed_server, NEW_STORY)
    before = snapshot(draft_path(built))
    requests_before = len(feed_server.requests)

    with lock_held_by_another_process(built) as holder:
        result = run(built, "refresh", "--wait", "0.3")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"refresh skipped: {held_by(built, holder.pid)}" in result.stderr
    # It neither fetched nor wrote anything.
    assert len(feed_server.requests) == requests_before
    assert snapshot(draft_path(built)) == before


@both_backends
def test_the_wait_is_configurable_from_the_environment(built: Path) -> None:
    with lock_held_by_another_process(built):
        result = run(built, "refresh", env={"PIPELINE_LOCK_WAIT": "0"})
    assert result.exit_code == 0
    assert "refresh skipped" in result.stderr


@both_backends
def test_refresh_waits_for_a_lock_that_is_released(built: Path, feed_server: FeedServer, tmp_path: Path) -> None:
    gain_story(feed_server, NEW_STORY)
    # The refresh stops where it finds the lock busy; only then does the holder let go.
    busy = PausePoint(tmp_path, "lock-busy", 1)
    acquired = threading.Event()
    seen: list[str] = []

    def hold() -> None:
        with run_lock(load_settings(built), wait_seconds=0):
            acquired.set()
            seen.append(busy.wait(lambda: True))
        busy.resume()

    holder = threading.Thread(target=hold)
    holder.start()
    assert acquired.wait(60)
    try:
        result = run(built, "refresh", "--wait", "300", env=busy.env)
    finally:
        holder.join(60)
    assert seen and seen[0].startswith("paused lock-busy")  # it really waited for the lock
    assert result.exit_code == 0, result.stderr
    assert "refresh skipped" not in result.stderr
    assert NEW_STORY.headline in draft_path(built).read_text(encoding="utf-8")


@both_backends
def test_a_killed_holder_does_not_block_the_next_run(built: Path, feed_server: FeedServer) -> None:
    gain_story(feed_server, NEW_STORY)
    with lock_held_by_another_process(built) as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        # A server notices the dead session a moment later: waiting covers that, and costs nothing
        # when the lock is already free.
        result = run(built, "refresh", "--wait", "30")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert NEW_STORY.headline in draft_path(built).read_text(encoding="utf-8")


@both_backends
def test_two_real_refreshes_at_once_leave_whole_drafts(built: Path, feed_server: FeedServer) -> None:
    gain_story(feed_server, NEW_STORY)
    command = [PYTHON, "-m", "pipeline.cli", "--root", str(built), "refresh", "--wait", "60"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env_for_subprocess()) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in runs]
    for process, (stdout, stderr) in zip(runs, outputs):
        assert process.returncode == 0, stderr
        assert stdout == ""
        assert "Traceback" not in stderr
    for slug in ("mobile-payments", "wechat-encryption"):
        assert_whole(draft_path(built, slug))
    text = draft_path(built).read_text(encoding="utf-8")
    assert text.count(f"🔸 {NEW_STORY.headline}") == 1
    assert list((built / "output").glob(".pipeline-*")) == []  # no temp file left behind


@both_backends
@pytest.mark.parametrize("command", [("build", "--offline"), ("fetch",)])
def test_build_and_fetch_wait_as_long_as_told_then_name_the_holder(built: Path, command: tuple[str, ...]) -> None:
    before = snapshot(draft_path(built))
    with lock_held_by_another_process(built) as holder:
        result = run(built, *command, "--wait", "0.3")
    assert result.exit_code == 1
    assert f"{held_by(built, holder.pid)}; try again later" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(draft_path(built)) == before

"""Killed at any moment, a run leaves nothing torn: every draft is the old one or the new one, temp
files are swept up by the next run, and the SQLite store passes its integrity check."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import REPO, Gate, PausePoint, project_store

from pipeline.config import load_settings
from pipeline.drafts import TEMP_PREFIX, TEMP_SUFFIX, split_draft
from pipeline.models import Item
from pipeline.store_copy import copy_store
from pipeline.store import open_store

# The console script installed beside the interpreter running the tests, whichever venv that is.
PIPELINE = str(Path(sys.executable).with_name("pipeline"))
EPOCH = "1772452800"  # 2026-03-02 12:00 UTC: drafts are byte-for-byte reproducible
NOW = dt.datetime.fromtimestamp(int(EPOCH), tz=dt.timezone.utc)
GUIDES = 400


def _env() -> dict[str, str]:
    return {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "PIPELINE_MODEL": ""}


def run_pipeline(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PIPELINE, "--root", str(root), *args], capture_output=True, text=True, env=_env(),
                          timeout=timeout)


def snapshot(root: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((root / "output").glob("*.md"))}


def news(count: int) -> list[Item]:
    return [Item("https://news.example.com/feed", f"n{n}", f"Alipay update number {n} for foreign cards",
                 f"Publisher {n}", (NOW - dt.timedelta(days=n + 1)).date(), f"https://news.example.com/{n}")
            for n in range(count)]


@pytest.fixture
def big_project(project: Path) -> Path:
    """The shipped guides plus 400 copies of one under other slugs."""
    guides = project / "templates" / "guides"
    source = (guides / "mobile-payments.md").read_text(encoding="utf-8")
    for n in range(GUIDES):
        (guides / f"copy-{n:03d}.md").write_text(source, encoding="utf-8")
    return project


def kill_at(root: Path, point: str, count: int, *args: str) -> None:
    """SIGKILL a run the `count`-th time it reaches pause `point` (see pipeline/pause.py): an exact
    moment, chosen by the test rather than by a clock."""
    pause = PausePoint(root.parent, point, count)
    child = subprocess.Popen([PIPELINE, "--root", str(root), *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**_env(), **pause.env})
    try:
        pause.wait(lambda: child.poll() is None)
    finally:
        child.kill()
    assert child.wait() == -signal.SIGKILL


def assert_each_draft_old_or_new(root: Path, old: dict[str, str], new: dict[str, str]) -> tuple[int, int]:
    """Every draft on disk is one of the two whole versions (and reads back); returns (old, new) counts."""
    seen_old = seen_new = 0
    for path in sorted((root / "output").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        assert text in (old.get(path.name), new[path.name]), f"{path.name} is torn"
        split_draft(path, text)
        seen_old += text == old.get(path.name)
        seen_new += text == new[path.name]
    return seen_old, seen_new


@pytest.mark.both_backends
def test_a_400_guide_build_killed_midway_leaves_no_torn_draft(big_project: Path, tmp_path: Path, backend: str) -> None:
    root = big_project
    first = run_pipeline(root, "build", "--offline")
    assert first.returncode == 0, first.stderr
    old = snapshot(root)
    assert len(old) == GUIDES + 2

    # News arrives, so every draft's Further Reading and context change on the next build.
    with project_store(root) as store:
        store.save_items(news(5), NOW)
    reference = tmp_path / "reference"
    shutil.copytree(root, reference)
    if backend == "postgresql":  # the reference builds from a copy of the store, as SQLite: the same drafts
        copy_store(str(load_settings(root).store_location), str(reference / "pipeline.sqlite3"))
        (reference / "pyproject.toml").unlink()
    finished = run_pipeline(reference, "build", "--offline")
    assert finished.returncode == 0, finished.stderr
    new = {name: text.replace(str(reference), str(root)) for name, text in snapshot(reference).items()}
    assert sum(new[name] != old[name] for name in old) >= GUIDES + 1  # all but the WeChat guide

    rng = random.Random(5)
    # After some drafts are replaced (each a moment its state is not yet); while drafts are staged;
    # with states written under their pending names and no draft replaced; after states are in place.
    kills = [("renamed.md", rng.randint(10, 100)), ("staged.md", rng.randint(10, 100)),
             ("staged.pending", rng.randint(10, 100)), ("renamed.json", rng.randint(10, 100))]
    for kill, (point, count) in enumerate(kills):
        kill_at(root, point, count, "build", "--offline")
        seen_old, seen_new = assert_each_draft_old_or_new(root, old, new)
        if kill == 0:
            assert seen_old > 100 and seen_new >= count  # killed mid-way, after exactly `count` drafts
        if backend == "sqlite":
            with sqlite3.connect(root / "pipeline.sqlite3") as db:
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # A temp file as a kill between writing and renaming leaves it: swept up, never read as a draft.
    (root / "output" / f"{TEMP_PREFIX}leftover{TEMP_SUFFIX}").write_text("---\ntitle: half", encoding="utf-8")
    again = run_pipeline(root, "build", "--offline")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert snapshot(root) == new
    assert not list((root / "output").glob(f"{TEMP_PREFIX}*"))


def test_a_kill_during_the_first_build_leaves_whole_drafts_or_none(big_project: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(big_project, reference)
    assert run_pipeline(reference, "build", "--offline").returncode == 0
    new = {name: text.replace(str(reference), str(big_project)) for name, text in snapshot(reference).items()}

    kill_at(big_project, "renamed.md", 150, "build", "--offline")
    _, written = assert_each_draft_old_or_new(big_project, {}, new)
    assert written == 150
    again = run_pipeline(big_project, "build", "--offline")
    assert again.returncode == 0, again.stderr
    assert snapshot(big_project) == new


WRITER = textwrap.dedent("""
    import datetime as dt, sys, time
    from pipeline.models import Item
    from pipeline.store import open_store
    now = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    with open_store(sys.argv[1]) as store:
        for batch in range(10**6):
            # Old news: it fills the store without changing what any draft lists.
            store.save_items([Item(sys.argv[2], f"{batch}-{n}", "Headline " * 20, "Source", dt.date(2020, 1, 1),
                                   f"https://e.com/{batch}/{n}") for n in range(int(sys.argv[3]))], now)
            print(batch, flush=True)
            time.sleep(float(sys.argv[4]))
""")


def start_writer(db: Path, feed: str, batch: int, pause: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), feed, str(batch), str(pause)],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


def test_a_store_write_killed_midway_stays_consistent(tmp_path: Path) -> None:
    db = tmp_path / "pipeline.sqlite3"
    open_store(db).close()
    for attempt in range(3):
        writer = start_writer(db, f"https://feed{attempt}.example.com/", 500)
        assert writer.stdout is not None
        for _ in range(2 + attempt):  # let a few transactions commit, then kill inside the next one
            assert writer.stdout.readline()
        time.sleep(0.01 * attempt)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            counts = conn.execute("SELECT feed_url, count(*) FROM items GROUP BY feed_url").fetchall()
        # Each batch is one transaction: whole batches or nothing, never a part of one.
        assert counts and all(count % 500 == 0 for _url, count in counts), counts
    with open_store(db) as store:
        assert len(store.items()) == sum(count for _url, count in counts)


def test_a_build_a_refresh_and_a_writer_overlapping_all_finish(big_project: Path) -> None:
    root = big_project
    assert run_pipeline(root, "build", "--offline").returncode == 0
    with project_store(root) as store:
        store.save_items(news(3), NOW)
    db = root / "pipeline.sqlite3"
    # A writer outside the project lock (as a second tool might be) leans on SQLite's busy timeout.
    writer = start_writer(db, "https://other.example.com/", 200, pause=0.02)
    # The build stops after its first draft, holding the project lock, while a refresh starts.
    pause = PausePoint(root.parent, "renamed.md", 1)
    build = subprocess.Popen([PIPELINE, "--root", str(root), "build", "--offline"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**_env(), **pause.env})
    pause.wait(lambda: build.poll() is None)
    refresh_run = subprocess.Popen([PIPELINE, "--root", str(root), "refresh", "--wait", "300"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    pause.resume()
    build_out, build_err = build.communicate(timeout=300)
    refresh_out, refresh_err = refresh_run.communicate(timeout=300)
    refresh = subprocess.CompletedProcess(refresh_run.args, refresh_run.returncode, refresh_out, refresh_err)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert build.returncode == 0, build_err
    assert refresh.returncode == 0, refresh.stderr
    for output in (build_out, build_err, refresh.stdout, refresh.stderr):
        assert "Traceback" not in output and "database is locked" not in output
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for path in (root / "output").glob("*.md"):
        draft = split_draft(path, path.read_text(encoding="utf-8"))
        if path.name != "wechat-encryption.md":  # the payments news does not concern it
            assert len(draft.front_matter["further_reading"]) == 3, path.name  # the news reached every draft


def _alive(pid: int) -> bool:
    try:  # a zombie has exited; only its parent (init, here) has yet to reap it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _workers_of(fetch: subprocess.Popen, count: int) -> list[int]:
    """The fetch's parser workers once `count` have started (the feeds are held, so they will)."""
    deadline = time.monotonic() + 120  # a safety net for a broken run, not a margin
    workers: list[int] = []
    while len(workers) < count and time.monotonic() < deadline and fetch.poll() is None:
        time.sleep(0.05)
        workers = _children(fetch.pid)
    assert len(workers) >= count, "the parser workers never started"
    return workers


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see child processes")
def test_a_fetch_killed_while_parsing_in_workers_leaves_no_worker_holding_the_lock(project: Path, feed_server) -> None:
    from conftest import Route, write_feeds

    from pipeline.lock import project_lock
    from pipeline.update import PARALLEL_PARSE_FROM

    count = PARALLEL_PARSE_FROM + 2  # parsed in forked workers, which inherit the lock's file
    held = Gate()  # the feeds never answer while the test looks: the run is surely still going
    for number in range(count):
        feed_server.routes[f"/slow/{number}.xml"] = Route(b"<rss version='2.0'><channel/></rss>", gate=held)
    write_feeds(project, *({"url": feed_server.url(f"/slow/{n}.xml")} for n in range(count)))
    (project / "pyproject.toml").write_text("[tool.pipeline]\ntimeout = 300\n", encoding="utf-8")
    fetch = subprocess.Popen([PIPELINE, "--root", str(project), "fetch"], env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = _workers_of(fetch, 2)

    fetch.kill()  # as a cron timeout or the OOM killer would
    fetch.wait(timeout=30)

    deadline = time.monotonic() + 120  # the workers notice within 0.2 s; this only ends a broken test
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "orphaned parser workers outlived the run"
    with project_lock(project / ".pipeline.lock", wait_seconds=0):
        pass  # free for the next run at once


@pytest.mark.both_backends
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see child processes")
def test_a_parser_worker_killed_mid_run_costs_no_feed(project: Path, feed_server) -> None:
    from conftest import Route, write_feeds

    from pipeline.update import PARALLEL_PARSE_FROM

    count = PARALLEL_PARSE_FROM + 2
    first, rest = Gate(), Gate()  # a few answer before the worker is killed, the rest only after
    for number in range(count):
        body = (f"<rss version='2.0'><channel><title>F{number}</title><item><title>Story {number}</title>"
                f"<link>https://news.example.com/{number}</link></item></channel></rss>").encode()
        feed_server.routes[f"/f/{number}.xml"] = Route(body, gate=first if number < 3 else rest)
    write_feeds(project, *({"url": feed_server.url(f"/f/{n}.xml")} for n in range(count)))
    (project / "pyproject.toml").write_text("[tool.pipeline]\ntimeout = 300\n", encoding="utf-8")
    fetch = subprocess.Popen([PIPELINE, "--root", str(project), "fetch"], env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    workers = _workers_of(fetch, 1)
    first.open()
    os.kill(workers[0], signal.SIGKILL)  # while the rest are surely still on their way
    rest.open()
    out, err = fetch.communicate(timeout=300)
    assert fetch.returncode == 0, err
    assert "Traceback" not in err
    assert f"fetched {count} feeds: {count} ok" in out
    with project_store(project) as store:
        assert sorted(i.headline for i in store.items()) == sorted(f"Story {n}" for n in range(count))


def test_a_reviewer_save_between_staging_and_commit_wins(project: Path) -> None:
    assert run_pipeline(project, "build", "--offline").returncode == 0
    with open_store(project / "pipeline.sqlite3") as store:
        store.save_items(news(3), NOW)  # every draft changes on the next build
    draft = project / "output" / "mobile-payments.md"
    saved = draft.read_text(encoding="utf-8").replace("\n## ", "\nA reviewer's new paragraph.\n\n## ", 1)
    pause = PausePoint(project.parent, "staged.md", 1)  # the first draft is staged, none replaced yet
    build = subprocess.Popen([PIPELINE, "--root", str(project), "build", "--offline"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**_env(), **pause.env})
    pause.wait(lambda: build.poll() is None)
    draft.write_text(saved, encoding="utf-8")
    pause.resume()
    out, err = build.communicate(timeout=300)
    assert build.returncode == 0, err
    assert f"{draft}: changed on disk while the pipeline worked on it; left alone until the next run" in out + err
    assert draft.read_text(encoding="utf-8") == saved
    again = run_pipeline(project, "build", "--offline")  # the next run merges the news into the saved draft
    assert again.returncode == 0, again.stderr
    text = draft.read_text(encoding="utf-8")
    assert "A reviewer's new paragraph." in text and "Alipay update number 0" in text


def _running(pid: int) -> bool:
    """Whether a process is alive (a zombie waiting for its new parent to reap it has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/stat").exists(),
                    reason="a build's second process is forked, and watched here through /proc")
def test_a_builds_second_process_ends_when_the_run_is_killed_and_leaves_whole_drafts(big_project: Path) -> None:
    # The second process stops before its first draft; the run is killed outright (as a cron timeout
    # does). The orphan must not go on (it would hold the lock, or with PostgreSQL write beside the
    # next run): it ends, and whatever was written is whole.
    pause = PausePoint(big_project.parent, "forked", 1)
    build = subprocess.Popen([PIPELINE, "--root", str(big_project), "build", "--offline"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**_env(), **pause.env})
    child = int(pause.wait(lambda: build.poll() is None).split()[-1])
    build.kill()
    assert build.wait() == -signal.SIGKILL
    deadline = time.monotonic() + 60  # a safety net: the orphan notices within a fraction of a second
    while _running(child):
        assert time.monotonic() < deadline, "the second process outlived its run"
        time.sleep(0.05)
    for path in (big_project / "output").glob("*.md"):
        split_draft(path, path.read_text(encoding="utf-8"))
    again = run_pipeline(big_project, "build", "--offline")  # nothing left held or half done
    assert again.returncode == 0, again.stderr
    assert f"built {GUIDES + 2} drafts" in again.stdout

"""Feeds that misbehave on the network: each is named with a plain reason, the others still land,
and the run stays inside the time and memory the settings allow."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Route, project_store, write_feeds
from faultserver import FaultServer, gzip_bomb, refused_url, rss

from pipeline.cli import cli
from pipeline.config import Settings
from pipeline.fetch import fetch_feeds
from pipeline.models import Feed
from pipeline.store import Store, open_store
from pipeline.update import BACKOFF_AFTER, BACKOFF_MAX, update_feeds

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
# The read timeout the hanging server must trip; every other fault answers at once, so this is also
# the time a busy machine has to schedule the server's thread before an answer is taken for a hang.
TIMEOUT = 3.0
# Every fault lives on 127.0.0.1, so the politeness limit per host must not queue them one by one.
FAST = {"timeout": TIMEOUT, "per_host_concurrency": 32, "max_concurrency": 32}

# path on the fault server -> words the user must see about it
FAULTS = {
    "/status/500": "HTTP 500",
    "/status/404": "HTTP 404",
    "/status/410": "HTTP 410",
    "/reset": "connection broke off",
    "/hang": "stopped answering",
    "/big": "body larger than the 10 MiB",
    "/bomb": "decompressed body larger than the 10 MiB",
    "/loop/0": "redirect loop",
    "/html": "not a readable RSS or Atom feed",
    "/empty": "empty body",
}


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    gzip_bomb()  # built before any request: on a busy machine building it takes longer than the read timeout
    server = FaultServer().start()
    server.feeds["good"] = rss("Good News", [("Visa rules change for students", "https://news.example.com/visa"),
                                             ("Alipay adds foreign cards", "https://news.example.com/alipay")])
    server.feeds["other"] = rss("Other News", [("Rail tickets for foreigners", "https://other.example.com/rail")])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def one_run(faults: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Store, str]:
    """One update over two good feeds and every fault at once (the faults run side by side)."""
    root = tmp_path_factory.mktemp("faults")
    refused = refused_url()
    feeds = [Feed(faults.url("/ok/good")), Feed(faults.url("/ok/other")), Feed(refused)]
    feeds += [Feed(faults.url(path)) for path in FAULTS]
    store = project_store(root)
    report = update_feeds(Settings(root=root, **FAST), store, feeds, NOW)
    return {r.url: r for r in report.feeds}, store, refused


@pytest.mark.parametrize("path", sorted(FAULTS))
def test_each_fault_is_reported_by_url_with_a_plain_reason(one_run, faults: FaultServer, path: str) -> None:
    reports, store, _ = one_run
    report = reports[faults.url(path)]
    assert report.status == "failed"
    assert FAULTS[path] in report.message
    assert "\n" not in report.message and "Traceback" not in report.message
    state = store.feed_state(faults.url(path))
    assert state.consecutive_failures == 1 and state.last_error == report.message


def test_a_drip_that_never_trips_the_read_timeout_is_cut_by_the_feed_deadline(faults: FaultServer) -> None:
    # One byte every 0.4 s against a read timeout of a minute: only the whole-feed deadline can end it.
    (drip,) = asyncio.run(fetch_feeds([Feed(faults.url("/drip"))], {}, timeout=60, deadline=1.0))
    assert drip.body is None and drip.error == "no complete answer within 1 s"


def test_connection_refused_is_reported(one_run) -> None:
    reports, _, refused = one_run
    assert reports[refused].status == "failed"
    assert "cannot connect" in reports[refused].message


def test_good_feeds_land_next_to_every_fault(one_run, faults: FaultServer) -> None:
    reports, store, _ = one_run
    assert reports[faults.url("/ok/good")].status == "new"
    assert reports[faults.url("/ok/other")].status == "new"
    headlines = sorted(item.headline for item in store.items())
    assert headlines == ["Alipay adds foreign cards", "Rail tickets for foreigners", "Visa rules change for students"]


def test_a_gone_feed_is_retired_and_its_items_kept(faults: FaultServer, tmp_path: Path) -> None:
    from pipeline.models import Item

    url = faults.url("/status/410")
    settings = Settings(root=tmp_path, **FAST)
    with open_store(tmp_path / "s.sqlite3") as store:
        store.save_items([Item(url, "g1", "An older story", "Pub", dt.date(2026, 3, 1), "https://e.com/1")], NOW)
        first = update_feeds(settings, store, [Feed(url)], NOW).feeds[0]
        assert first.status == "failed"
        assert "remove it from sources/feeds.toml" in first.message and "retired" in first.message
        assert store.feed_state(url).retry_after == NOW + BACKOFF_MAX
        asked = faults.paths().count("/status/410")
        later = update_feeds(settings, store, [Feed(url)], NOW + dt.timedelta(hours=12)).feeds[0]
        assert later.status == "skipped"
        assert faults.paths().count("/status/410") == asked  # not asked again while retired
        assert [i.headline for i in store.items()] == ["An older story"]


@pytest.mark.parametrize("code", ["301", "308"])
def test_a_permanent_move_names_the_new_url_and_items_follow_it(faults: FaultServer, project: Path, code: str) -> None:
    (project / "pyproject.toml").write_text(f"[tool.pipeline]\ntimeout = {TIMEOUT}\n", encoding="utf-8")
    old, new = faults.url(f"/moved/{code}/good"), faults.url("/ok/good")
    write_feeds(project, {"url": old, "tags": ["visa"]})
    first = CliRunner().invoke(cli, ["--root", str(project), "fetch"])
    assert first.exit_code == 0, first.output
    assert f"feed {old} moved permanently to {new}; update sources/feeds.toml" in first.stderr
    with project_store(project) as store:
        assert store.feed_state(old).moved_to == new
        assert {i.feed_url for i in store.items()} == {old}

    write_feeds(project, {"url": new, "tags": ["visa"]})  # the user follows the advice
    second = CliRunner().invoke(cli, ["--root", str(project), "fetch"])
    assert second.exit_code == 0, second.output
    assert f"took over 2 stored items from {old}" in second.stderr
    assert "moved permanently" not in second.stderr
    with project_store(project) as store:
        assert {i.feed_url for i in store.items()} == {new}
        assert old not in store.feed_states()
        assert store.feed_state(new).moved_to is None


def test_a_temporary_redirect_changes_nothing(faults: FaultServer, tmp_path: Path) -> None:
    url = faults.url("/moved/302/good")
    with open_store(tmp_path / "s.sqlite3") as store:
        report = update_feeds(Settings(root=tmp_path, **FAST), store, [Feed(url)], NOW).feeds[0]
        assert report.status == "new" and report.moved_to is None
        assert store.feed_state(url).moved_to is None


def test_a_failing_feed_backs_off_shows_its_schedule_and_recovers(feed_server, project: Path) -> None:
    feed_server.routes["/feed"] = Route(b"", status=500)
    url = feed_server.url("/feed")
    settings = Settings(root=project, **FAST)
    write_feeds(project, {"url": url})
    moment = NOW
    with open_store(settings.store_path) as store:
        for _ in range(BACKOFF_AFTER):
            report = update_feeds(settings, store, [Feed(url)], moment).feeds[0]
            assert report.status == "failed"
            moment += dt.timedelta(minutes=5)
        retry_after = store.feed_state(url).retry_after
        assert retry_after is not None and retry_after > moment

        asked = len(feed_server.requests)
        skipped = update_feeds(settings, store, [Feed(url)], moment).feeds[0]
        assert skipped.status == "skipped" and "backing off after 3 failures" in skipped.message
        assert len(feed_server.requests) == asked

    shown = CliRunner().invoke(cli, ["--root", str(project), "sources"])
    assert shown.exit_code == 0, shown.output
    assert f"next try after {retry_after:%Y-%m-%d %H:%M} UTC" in shown.output
    assert "HTTP 500" in shown.output

    feed_server.routes["/feed"] = Route(rss("Back", [("Back online", "https://e.com/back")]))
    with open_store(settings.store_path) as store:
        back = update_feeds(settings, store, [Feed(url)], retry_after + dt.timedelta(seconds=1)).feeds[0]
        assert back.status == "new"
        state = store.feed_state(url)
        assert state.consecutive_failures == 0 and state.retry_after is None
    shown = CliRunner().invoke(cli, ["--root", str(project), "sources"])
    assert "next try after" not in shown.output and "last error" not in shown.output


def test_done_when_fetch_survives_every_fault_together(faults: FaultServer, project: Path) -> None:
    """The issue's bar: `pipeline fetch` as cron runs it, every fault plus good feeds in one file."""
    (project / "pyproject.toml").write_text(
        f"[tool.pipeline]\ntimeout = {TIMEOUT}\nper_host_concurrency = 32\nmax_concurrency = 32\n", encoding="utf-8"
    )
    refused = refused_url()
    failing = [faults.url(path) for path in [*FAULTS, "/drip"]] + [refused]
    write_feeds(project, {"url": faults.url("/ok/good")}, *({"url": url} for url in failing),
                {"url": faults.url("/ok/other")})
    out, err = project / "stdout.txt", project / "stderr.txt"
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen([str(Path(sys.executable).with_name("pipeline")), "--root", str(project), "fetch"],
                                 stdout=stdout, stderr=stderr, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        # wait4 gives this child's own peak memory, not the most any child of pytest ever used.
        _pid, status, usage = os.wait4(child.pid, 0)
    elapsed = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    stdout_text, stderr_text = out.read_text(), err.read_text()
    assert child.returncode == 0, stderr_text
    assert "Traceback" not in stdout_text + stderr_text
    for url in failing:
        assert f"warning: feed {url}: " in stderr_text, url
    assert "fetched 14 feeds: 2 ok" in stdout_text and "12 failed" in stdout_text
    with project_store(project) as store:
        assert len(store.items()) == 3
    peak_mib = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    print(f"done-when fetch: {elapsed:.1f} s, peak {peak_mib:.0f} MiB")  # shown with -s, for the record
    assert peak_mib < 400, f"peak memory {peak_mib:.0f} MiB"
    # Each feed's own deadline is proven above, by its reason; this only catches a run that never
    # ends (e.g. a drip read without a deadline), with room for any load.
    assert elapsed < 3 * TIMEOUT + 120, f"took {elapsed:.1f} s"

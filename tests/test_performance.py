"""What makes the pipeline fast must never make it wrong: input fingerprints and parallel parsing.

No timed assertions here: speed is measured by `make bench` (benchmarks/), not by tests.
"""

from __future__ import annotations

import datetime as dt
import errno
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from conftest import FeedServer, REPO, Route, project_store, write_feeds
from pipeline.build import build_drafts
from pipeline.config import load_feeds, load_settings
from pipeline.models import Feed, FetchResult, Guide, Item
from pipeline.select import Candidates, relevance
from pipeline.store import Store, open_store
from pipeline.update import PARALLEL_PARSE_FROM, _close_inherited_sockets, _parsed, update_feeds

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
SLUGS = ["mobile-payments", "wechat-encryption"]


def _item(number: int, headline: str) -> Item:
    return Item(feed_url="https://feeds.example.com/rss", guid=f"g{number}", headline=headline,
                source="Example News", date=dt.date(2026, 3, 8), url=f"https://news.example.com/{number}")


def _build(root: Path, store: Store, force: bool = False) -> dict[str, tuple[str, tuple[str, ...]]]:
    settings = load_settings(root)
    report = build_drafts(settings, store, load_feeds(settings.sources_path), NOW, force=force)
    return {d.slug: (d.outcome, d.notes) for d in report.drafts}


def _stamps(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (root / "output").glob("*.md")}


def test_unchanged_rebuild_rewrites_nothing_and_reports_unchanged(project: Path) -> None:
    with project_store(project) as store:
        store.save_items([_item(1, "WeChat changes its privacy settings"),
                          _item(2, "Alipay raises limits for foreign cards")], NOW)
        assert {o for o, _ in _build(project, store).values()} == {"created"}
        before = {p.name: p.read_bytes() for p in (project / "output").glob("*.md")}
        stamps = _stamps(project)
        assert sorted(store.fingerprints()) == [":run:build", *SLUGS]  # each draft, and the run that was clean
        assert _build(project, store) == {slug: ("unchanged", ()) for slug in SLUGS}
    assert _stamps(project) == stamps
    assert {p.name: p.read_bytes() for p in (project / "output").glob("*.md")} == before


def test_a_changed_guide_template_or_news_item_is_never_skipped(project: Path) -> None:
    with project_store(project) as store:
        store.save_items([_item(1, "WeChat changes its privacy settings")], NOW)
        _build(project, store)

        guide = project / "templates" / "guides" / "wechat-encryption.md"
        guide.write_text(guide.read_text(encoding="utf-8").replace(
            "If you live, work or study in China,", "Wherever you live, work or study in China,"), encoding="utf-8")
        outcomes = _build(project, store)
        assert outcomes["wechat-encryption"][0] == "updated"
        assert outcomes["mobile-payments"] == ("unchanged", ())
        assert "Wherever you live" in (project / "output" / "wechat-encryption.md").read_text(encoding="utf-8")

        disclaimer = project / "templates" / "partials" / "disclaimer.md.j2"
        disclaimer.write_text(disclaimer.read_text(encoding="utf-8") + "\nChecked by the editors.\n",
                              encoding="utf-8")
        assert {o for o, _ in _build(project, store).values()} == {"updated"}
        for slug in SLUGS:
            assert "Checked by the editors." in (project / "output" / f"{slug}.md").read_text(encoding="utf-8")

        store.save_items([_item(3, "Tencent explains WeChat encryption")], NOW)
        assert _build(project, store)["wechat-encryption"][0] == "updated"
        assert "Tencent explains WeChat encryption" in (
            project / "output" / "wechat-encryption.md").read_text(encoding="utf-8")


def test_a_hand_edited_draft_is_looked_at_not_skipped(project: Path) -> None:
    with project_store(project) as store:
        store.save_items([_item(1, "WeChat changes its privacy settings")], NOW)
        _build(project, store)
        path = project / "output" / "wechat-encryption.md"
        text = path.read_text(encoding="utf-8")
        edited = text.replace("🔸 WeChat changes its privacy settings",
                              "A reviewer wrote this line\n\n🔸 WeChat changes its privacy settings", 1)
        assert edited != text
        path.write_text(edited, encoding="utf-8")
        outcome, notes = _build(project, store)["wechat-encryption"]
        # The edit sits in a managed region and is not a list entry: the build must see it and say it left it alone.
        assert any("edited by hand" in note for note in notes), (outcome, notes)
        assert "A reviewer wrote this line" in path.read_text(encoding="utf-8")
        # A draft with something to say is never fingerprinted, so the note comes again next run.
        assert "wechat-encryption" not in store.fingerprints()
        assert any("edited by hand" in note for note in _build(project, store)["wechat-encryption"][1])


def test_force_rebuilds_even_when_nothing_changed(project: Path) -> None:
    with project_store(project) as store:
        _build(project, store)
        path = project / "output" / "mobile-payments.md"
        path.write_text(path.read_text(encoding="utf-8").replace("# Paying", "# Reviewer says: Paying", 1),
                        encoding="utf-8")
        assert _build(project, store, force=True)["mobile-payments"][0] == "updated"
        assert "Reviewer says" not in path.read_text(encoding="utf-8")


def _rss(number: int) -> bytes:
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {number}</title>'
            f"<item><title>Story {number} about WeChat</title><link>https://news.example.com/{number}</link>"
            f"<guid>story-{number}</guid><pubDate>Sun, 08 Mar 2026 09:00:00 +0800</pubDate></item>"
            "</channel></rss>").encode()


def _serve_parallel_feeds(project: Path, feed_server: FeedServer, count: int = PARALLEL_PARSE_FROM + 2) -> int:
    """`count` one-story feeds on the test server, listed in feeds.toml: enough to parse in workers."""
    for number in range(count):
        feed_server.routes[f"/feed/{number}.xml"] = Route(_rss(number))
    write_feeds(project, *({"url": feed_server.url(f"/feed/{n}.xml")} for n in range(count)))
    return count


def _update(project: Path) -> tuple[list[str], int]:
    """One real update of the project's feeds: each feed's status, and how many items are stored."""
    settings = load_settings(project)
    with open_store(settings.store_path) as store:
        report = update_feeds(settings, store, load_feeds(settings.sources_path), NOW)
        return [feed.status for feed in report.feeds], len(store.items())


def test_many_feeds_are_parsed_in_worker_processes_with_failures_reported(
        project: Path, feed_server: FeedServer) -> None:
    count = _serve_parallel_feeds(project, feed_server)
    feed_server.routes["/feed/0.xml"] = Route(b"<html><body>not a feed</body></html>",
                                              headers={"Content-Type": "text/html"})
    settings = load_settings(project)
    with open_store(settings.store_path) as store:
        report = update_feeds(settings, store, load_feeds(settings.sources_path), NOW)
        headlines = sorted(item.headline for item in store.items())
    statuses = [feed.status for feed in report.feeds]
    assert statuses == ["failed"] + ["new"] * (count - 1)
    assert "not an RSS or Atom feed" in (report.feeds[0].message or "") or "not a readable" in (
        report.feeds[0].message or "")
    assert headlines == sorted(f"Story {n} about WeChat" for n in range(1, count))


def test_parsing_in_workers_keeps_feedparser_out_of_the_main_process(project: Path, feed_server: FeedServer) -> None:
    # Results come back as records from pipeline.models: reading one must not import the parser
    # (it once did, stalling every result by the ~0.1 s feedparser and bs4 take to load).
    count = _serve_parallel_feeds(project, feed_server, PARALLEL_PARSE_FROM)
    script = (
        "import datetime as dt, sys\n"
        "from pathlib import Path\n"
        "from pipeline.config import load_feeds, load_settings\n"
        "from pipeline.store import open_store\n"
        "from pipeline.update import update_feeds\n"
        f"settings = load_settings(Path({str(project)!r}))\n"
        "with open_store(settings.store_path) as store:\n"
        "    report = update_feeds(settings, store, load_feeds(settings.sources_path),\n"
        "                          dt.datetime(2026, 3, 10, tzinfo=dt.timezone.utc))\n"
        "print(sum(f.new_items for f in report.feeds), 'feedparser' in sys.modules, 'bs4' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(count), "False", "False"]


def test_a_body_whose_worker_died_is_parsed_in_the_main_process() -> None:
    died: Future = Future()
    died.set_exception(BrokenProcessPool("a worker was killed"))
    result = FetchResult(Feed(url="https://news.example.com/rss"), 200, body=_rss(3),
                         final_url="https://news.example.com/rss")
    extraction, reason = _parsed(result, died)
    assert reason is None and extraction is not None
    assert [item.headline for item in extraction.items] == ["Story 3 about WeChat"]


def test_benchmark_smoke_mode_prints_its_goal_lines(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "build"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr  # 1: a goal missed; a crash would be 2 or more
    lines = result.stdout.splitlines()
    assert any(line.split()[1:3] == ["1", "build"] and "goal:" in line for line in lines), result.stdout
    assert any("2 unchanged rebuild" in line and "0 files rewritten" in line for line in lines), result.stdout


def test_the_word_index_scores_exactly_as_relevance() -> None:
    guide = Guide(slug="g", path=Path("g.md"), title="G", keywords=("wechat", "data protection", "Ünïcode!", "", "wechat"),
                  tags=("privacy", "china"))
    feed_tags = {"a": ("privacy",), "b": ("travel",), "c": ()}
    headlines = ["WeChat adds data protection rules", "wechat", "Data-Protection law", "Unrelated news",
                 "ÜNÏCODE headline", "WeChat, WeChat and more WeChat", "", "protection data", "wechatter"]
    items = [Item(feed_url=feed, guid=f"{feed}{number}", headline=headline, source="S", date=dt.date(2026, 3, 9),
                  url=f"https://x.example/{feed}/{number}")
             for feed in ("a", "b", "c", "unknown") for number, headline in enumerate(headlines)]
    candidates = Candidates(items, NOW, 30)
    scores = candidates.scores(guide, feed_tags)
    expected = {n: relevance(item, guide, feed_tags.get(item.feed_url, ())) for n, item in enumerate(items)}
    # Each item is its own story here (one link each), taken in (date, feed, guid) order.
    by_story = {candidates._stories.index(item): score for item, score in
                ((items[n], score) for n, score in expected.items()) if score > 0}
    assert scores == by_story


def test_a_parser_worker_lets_go_of_the_connections_it_was_forked_with() -> None:
    # Else a connection the main process closes stays open (no FIN, no reset reaches the server)
    # for as long as the workers live.
    ours, server_side = socket.socketpair()
    child = os.fork()
    if child == 0:  # a stand-in worker: lets go of sockets, then lives on
        try:
            _close_inherited_sockets()
            signal.pause()
        finally:
            os._exit(0)
    try:
        ours.close()
        server_side.settimeout(5)
        assert server_side.recv(1) == b""  # end of stream: nobody holds the other end any more
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        server_side.close()


def test_parsing_carries_on_on_a_thread_when_fork_is_refused(project: Path, feed_server: FeedServer,
                                                             monkeypatch) -> None:
    def refused() -> int:  # as under a systemd TasksMax or container pids limit
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    count = _serve_parallel_feeds(project, feed_server)
    assert _update(project) == (["new"] * count, count)


def test_a_worker_keeps_standard_streams_that_are_sockets() -> None:
    # Under systemd, stderr is a socket to the journal: a worker's own error output must still reach it.
    journal, stderr_end = socket.socketpair()
    child = os.fork()
    if child == 0:
        try:
            os.dup2(stderr_end.fileno(), 2)
            _close_inherited_sockets()
            os.write(2, b"still heard")
        finally:
            os._exit(0)
    try:
        os.waitpid(child, 0)
        journal.settimeout(5)
        assert journal.recv(100) == b"still heard"
    finally:
        journal.close()
        stderr_end.close()


def test_a_fork_refused_half_way_leaves_no_worker_behind(project: Path, feed_server: FeedServer, monkeypatch) -> None:
    # The first worker started, the second could not: the first would wait for work forever, and the
    # run with it (the interpreter waits for its children at exit).
    real_fork, calls = os.fork, []

    def second_refused() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return real_fork()

    monkeypatch.setattr(os, "fork", second_refused)
    count = _serve_parallel_feeds(project, feed_server)
    assert _update(project) == (["new"] * count, count)
    assert multiprocessing.active_children() == []

"""One update of all feeds: fetch, extract, store, and remember how each feed did."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass, replace
from importlib import import_module
from typing import TYPE_CHECKING, Any, TypeVar

from .config import Settings
from .errors import FeedError
from .fetch import fetch_feeds
from .models import Extraction, Feed, FeedState, FeedStatus, FetchResult
from .store import Store
from .workers import exit_when_orphaned

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")

# After this many failures in a row a feed is skipped for a while, doubling up to a day.
BACKOFF_AFTER = 3
BACKOFF_START = dt.timedelta(hours=1)
BACKOFF_MAX = dt.timedelta(hours=24)


@dataclass(frozen=True)
class FeedReport:
    """How one feed did in this update."""

    url: str
    status: FeedStatus
    new_items: int = 0
    items: int = 0
    message: str | None = None  # a failure reason or warning, for a person to read
    moved_to: str | None = None  # permanent redirect target


@dataclass(frozen=True)
class UpdateReport:
    feeds: tuple[FeedReport, ...]

    @property
    def failed(self) -> tuple[FeedReport, ...]:
        return tuple(r for r in self.feeds if r.status == "failed")

    @property
    def succeeded(self) -> tuple[FeedReport, ...]:
        return tuple(r for r in self.feeds if r.status in ("new", "unchanged", "not-modified"))

    @property
    def new_items(self) -> int:
        return sum(r.new_items for r in self.feeds)


def backoff_until(failures: int, now: dt.datetime) -> dt.datetime | None:
    if failures < BACKOFF_AFTER:
        return None
    delay = min(BACKOFF_START * (2 ** (failures - BACKOFF_AFTER)), BACKOFF_MAX)
    return now + delay


def update_feeds(
    settings: Settings,
    store: Store,
    feeds: Sequence[Feed],
    now: dt.datetime,
    *,
    on_result: Callable[[FetchResult], None] | None = None,
) -> UpdateReport:
    """Fetch every due feed, store its items and its state; one failing feed never stops the others."""
    states = store.feed_states()
    carried = _take_over_moved_feeds(store, feeds, states)
    if carried:
        states = store.feed_states()
    due: list[Feed] = []
    reports: dict[str, FeedReport] = {}
    for feed in feeds:
        state = states.get(feed.url)
        if state and state.retry_after and state.retry_after > now:
            reports[feed.url] = FeedReport(
                feed.url, "skipped",
                message=f"backing off after {state.consecutive_failures} failures; next try "
                f"{state.retry_after:%Y-%m-%d %H:%M} UTC",
            )
        else:
            due.append(feed)

    # Parsing overlaps the network: each body is parsed off the event loop as soon as it arrives, and
    # the parser's heavy imports (feedparser, bs4) load while the requests are in flight.
    with _Parsers(len(due)) as parser:
        parsing: dict[str, Future[tuple[Extraction | None, str | None]]] = {}

        def arrived(result: FetchResult) -> None:
            if result.ok and result.body is not None and not result.not_modified:
                parsing[result.feed.url] = parser.submit(result)
            if on_result:
                on_result(result)

        async def fetch_all() -> list[FetchResult]:
            # The imports start a moment later, so the requests go out without sharing the interpreter.
            asyncio.get_running_loop().call_later(WARM_UP_AFTER, parser.warm_up)
            return await fetch_feeds(
                due,
                states,
                timeout=settings.timeout,
                max_concurrency=settings.max_concurrency,
                per_host_concurrency=settings.per_host_concurrency,
                max_body_bytes=settings.max_body_bytes,
                on_result=arrived,
            )

        results = asyncio.run(fetch_all())
        for result in results:
            reports[result.feed.url] = _record(store, result, states.get(result.feed.url), now,
                                               parsing.get(result.feed.url))
    for url, note in carried.items():
        earlier = reports[url].message
        reports[url] = replace(reports[url], message=f"{note}; {earlier}" if earlier else note)
    return UpdateReport(tuple(reports[feed.url] for feed in feeds))


def _take_over_moved_feeds(store: Store, feeds: Sequence[Feed], states: dict[str, FeedState]) -> dict[str, str]:
    """A feed that moved (301/308) and whose new URL now replaces it in sources/feeds.toml keeps its
    stored items and state under the new URL. Returns {new url: note for the user}."""
    configured = {feed.url for feed in feeds}
    notes: dict[str, str] = {}
    for old in states.values():
        new = old.moved_to
        if not new or old.url in configured or new not in configured or new in notes:
            continue
        if states.get(new) and states[new].last_success:
            continue  # the new URL already has its own history; leave both alone
        carried = store.rename_feed(old.url, new)
        notes[new] = f"took over {carried} stored items from {old.url}, which moved here"
    return notes


# From this many feeds on, and with more than one core, parsing runs in worker processes side by
# side (feedparser is pure Python: threads would only take turns). Fewer feeds are not worth a fork.
PARALLEL_PARSE_FROM = 8
# Seconds after the event loop starts: the requests are out by then, and the parser gets ready while
# the servers think. A body that comes sooner gets it ready at once.
WARM_UP_AFTER = 0.1


class _Parsers:
    """Parses bodies off the event loop as they arrive: in forked worker processes, or on a thread.

    Worker processes are an optimisation, never a requirement: when they cannot be started (no fork,
    a process limit) or one dies (killed from outside), parsing carries on, on a thread.
    """

    def __init__(self, feeds: int) -> None:
        cores = os.cpu_count() or 1
        self._workers = min(cores, 4)
        self._parallel = (feeds >= PARALLEL_PARSE_FROM and cores > 1
                          and hasattr(os, "fork"))
        self._pool: Executor | None = None
        self._pools: list[Executor] = []

    def warm_up(self) -> None:
        """Start the parser before the first body needs it (a run of 304s calls this and wastes ~0.1 s
        of an idle wait; it never delays a request)."""
        if self._pool is not None:
            return
        if self._parallel:
            try:
                self._use(self._process_pool())
                return
            except (OSError, RuntimeError, BrokenExecutor):
                self._parallel = False  # e.g. fork refused under a process limit: a thread will do
        from concurrent.futures import ThreadPoolExecutor

        self._use(ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline-parse"))
        assert self._pool is not None
        try:
            self._pool.submit(import_module, f"{__package__}.extract")
        except RuntimeError:  # not even a thread may start: bodies are parsed where they arrive
            self._pool = _InPlace()

    def _process_pool(self) -> Executor:
        # Imported here, off the path to the first request.
        import encodings.idna  # noqa: F401 (see below)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Each worker loads feedparser and bs4 itself, on its own core, while the servers think. The
        # fork happens while asyncio's resolver threads may be looking up hosts; the one module they
        # import on first use (the IDNA codec) is loaded first, so no import lock can be held at the fork.
        pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_start_worker, initargs=(os.getpid(),))
        try:
            for _ in range(self._workers):
                pool.submit(int)  # the first submit forks every worker
        except BaseException:
            # Workers forked before the failure wait for work forever, and the interpreter would wait
            # for them at exit: a run that never ends.
            for process in (getattr(pool, "_processes", None) or {}).values():
                process.kill()
                process.join()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return pool

    def _use(self, pool: Executor) -> None:
        self._pool = pool
        self._pools.append(pool)

    def submit(self, result: FetchResult) -> Future[tuple[Extraction | None, str | None]]:
        self.warm_up()
        assert self._pool is not None
        try:
            return self._pool.submit(_extract, result)
        except (BrokenExecutor, RuntimeError):  # a worker died: the rest of the run parses on a thread
            self._parallel, self._pool = False, None
            self.warm_up()
            assert self._pool is not None
            try:
                return self._pool.submit(_extract, result)
            except RuntimeError:  # no thread either
                self._pool = _InPlace()
                return self._pool.submit(_extract, result)

    def __enter__(self) -> _Parsers:
        return self

    def __exit__(self, *exc: object) -> None:
        for pool in self._pools:
            pool.shutdown()


class _InPlace(Executor):
    """The last resort when no process or thread can be started: parse on the caller's thread."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        from concurrent.futures import Future

        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 (handed to whoever reads the future, as a pool would)
            future.set_exception(exc)
        return future


def _start_worker(parent: int) -> None:
    """First thing in each parser worker: leave with the parent, let it handle Ctrl-C, load the parser."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its workers on Ctrl-C
    threading.Thread(target=exit_when_orphaned, args=(parent,), name="pipeline-parent-watch", daemon=True).start()
    _close_inherited_sockets()
    import_module(f"{__package__}.extract")


def _close_inherited_sockets() -> None:
    # The fork copied the parent's open connections. A copy kept here would hold each one open after
    # the parent closes it (no FIN or reset reaches the server) until the workers exit. The workers
    # talk to the parent through pipes, never sockets.
    import stat

    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            fds = [int(name) for name in os.listdir(folder)]
            break
        except (OSError, ValueError):
            continue
    else:
        return
    # Standard streams stay: under systemd, stderr is a socket to the journal.
    # Pointed at /dev/null rather than closed: a socket object copied with the fork still owns the
    # number, and must not close something else that reuses it.
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            try:
                if fd > 2 and fd != null and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
            except OSError:
                pass  # the listing's own descriptor, already gone
    finally:
        os.close(null)


def _extract(result: FetchResult) -> tuple[Extraction | None, str | None]:
    """(extraction, None), or (None, reason) for a feed that cannot be read (plain values cross processes)."""
    from .extract import extract_items

    assert result.body is not None
    try:
        return extract_items(result.feed, result.body, dict(result.headers), base_url=result.final_url), None
    except FeedError as exc:
        return None, exc.reason


def _parsed(result: FetchResult, parsing: Future[tuple[Extraction | None, str | None]] | None
            ) -> tuple[Extraction | None, str | None]:
    if parsing is not None:
        try:
            return parsing.result()
        except BrokenExecutor:
            pass  # a worker died (killed from outside): this body is parsed here instead
    return _extract(result)


def _record(store: Store, result: FetchResult, state: FeedState | None, now: dt.datetime,
            parsing: Future[tuple[Extraction | None, str | None]] | None = None) -> FeedReport:
    feed = result.feed
    state = state or FeedState(url=feed.url)
    state = replace(state, last_attempt=now)
    if result.ok and result.not_modified:
        store.save_feed_state(replace(state, last_success=now, last_status="304", last_error=None,
                                      consecutive_failures=0, retry_after=None,
                                      moved_to=result.permanent_redirect))
        return FeedReport(feed.url, "not-modified", moved_to=result.permanent_redirect)
    if result.ok and result.body is not None:
        extraction, reason = _parsed(result, parsing)
        if extraction is None:
            return _failed(store, state, now, str(result.status), reason or "unreadable feed")
        new = store.save_items(extraction.items, now)
        store.save_feed_state(
            replace(
                state,
                etag=result.header("etag"),
                last_modified=result.header("last-modified"),
                last_success=now,
                last_status=str(result.status),
                last_error=None,
                consecutive_failures=0,
                retry_after=None,
                moved_to=result.permanent_redirect,
            )
        )
        return FeedReport(
            feed.url,
            "new" if new else "unchanged",
            new_items=new,
            items=len(extraction.items),
            message=extraction.warning,
            moved_to=result.permanent_redirect,
        )
    status = str(result.status) if result.status is not None else "error"
    return _failed(store, state, now, status, result.error or "unknown error")


def _failed(store: Store, state: FeedState, now: dt.datetime, status: str, reason: str) -> FeedReport:
    failures = state.consecutive_failures + 1
    retry_after = backoff_until(failures, now)
    if status == "410":
        # Gone for good: retired at once (asked again only once a day), its stored items kept.
        retry_after = now + BACKOFF_MAX
        reason = f"{reason}; retired: not fetched again before {retry_after:%Y-%m-%d %H:%M} UTC, stored items kept"
    store.save_feed_state(
        replace(state, last_status=status, last_error=reason, consecutive_failures=failures,
                retry_after=retry_after)
    )
    return FeedReport(state.url, "failed", message=reason)

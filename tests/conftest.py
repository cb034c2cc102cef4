"""Shared fixtures: a throwaway project folder and a real HTTP feed server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import settings
from pgserver import PgServer, why_unavailable

from pipeline.config import load_settings
from pipeline.store import Store, open_store

# Fixtures of the review-workflow tests (e.g. `built`) live beside their helpers.
pytest_plugins = ["review_support"]

# CI replays the same examples every run, so a red build always names a change, never luck;
# local runs keep exploring new examples (and remember failures in .hypothesis/).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# The suite's own project: guides, templates and a feed list that only tests change. Tests never read
# the live templates/, sources/ or output/, so an editor's ordinary work never turns the suite red.
FIXTURE = DATA / "project"


@dataclass
class Route:
    """What the test server answers for one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/rss+xml"})
    etag: str | None = None  # when set, If-None-Match with this value answers 304
    last_modified: str | None = None  # when set, sent; If-Modified-Since with this value answers 304
    delay: float = 0.0  # seconds to hold the request open before answering (a slow origin, never a verdict)
    gate: Gate | None = None  # when set, the request waits here until the test lets it through


class Gate:
    """Holds requests until the test lets them through: one at a time (`let_one`) or all (`open`).

    `held` counts requests waiting here that the test has not let through yet, and `most_held` the
    most ever held at once: a test reads how many requests the client had open together without
    timing anything.
    """

    LONGEST = 120.0  # a safety net for a test that never opens the gate, not a margin anything waits for

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._permits = 0
        self._open = False
        self.held = 0
        self.most_held = 0
        self.arrived = 0

    def pass_through(self) -> None:
        with self._changed:
            self.arrived += 1
            self.held += 1
            self.most_held = max(self.most_held, self.held)
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._open or self._permits > 0, timeout=self.LONGEST)
            if self._permits > 0:
                self._permits -= 1
            elif not self._open:
                self.held -= 1  # the safety net gave way

    def wait_until_held(self, count: int, timeout: float = 60.0) -> bool:
        """True once `count` requests are held (False only if they never come: a broken client)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.held >= count, timeout=timeout)

    def let_one(self) -> None:
        with self._changed:
            self._permits += 1
            self.held -= 1  # counted out now, so the next wait_until_held waits for a newcomer
            self._changed.notify_all()

    def open(self) -> None:
        with self._changed:
            self._open = True
            self.held = 0
            self._changed.notify_all()


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]


class _Listener(ThreadingHTTPServer):
    # A real server's backlog: with http.server's 5, a burst of connections has SYNs dropped and
    # retried a second later, which a test with a 1 s connect timeout would take for a dead host.
    request_queue_size = 128


class FeedServer:
    """A real HTTP server in a thread; tests set `routes` and read `requests`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[SeenRequest] = []
        self.in_flight = 0  # requests being answered right now
        self.max_in_flight = 0  # the most ever answered at once
        self._count_lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with server._count_lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer()
                finally:
                    with server._count_lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                server.requests.append(SeenRequest(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.gate is not None:
                    route.gate.pass_through()
                if route.delay:
                    time.sleep(route.delay)
                if (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                    route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
                ):
                    self.send_response(304)
                    if route.etag:
                        self.send_header("ETag", route.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = _Listener((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = self._handle_error  # type: ignore[method-assign]
        # A short poll interval: shutdown() waits for it, once per test using the fixture.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _handle_error(self, request: object, client_address: object) -> None:
        # A client closing its keep-alive connection is normal; printing its traceback would land
        # in whatever stderr a test captures (CliRunner's) and look like the pipeline's output.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        ThreadingHTTPServer.handle_error(self.httpd, request, client_address)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    for route in server.routes.values():
        if route.gate is not None:
            route.gate.open()  # no handler thread left waiting
    server.stop()


@pytest.fixture
def project(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path:
    """A project folder with the fixture's templates and guides, an empty feeds file and no store.

    In a test marked `both_backends`, once with the SQLite file and once with an empty database on
    the session's PostgreSQL server (set in the project's pyproject.toml, as a team would).
    """
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(FIXTURE / "templates", root / "templates")
    (root / "sources").mkdir()
    (root / "sources" / "feeds.toml").write_text("", encoding="utf-8")
    (root / "output").mkdir()
    # Feeds served on 127.0.0.1 link to names that resolve nowhere: link health, which has its own
    # tests (test_links.py, which turn it back on), is off here.
    table = "[tool.pipeline]\ncheck_links = false\n"
    if backend == "postgresql":
        url = request.getfixturevalue("pg_server").create_database()
        table += f'store = "{url}"\n'
    (root / "pyproject.toml").write_text(table, encoding="utf-8")
    return root


# -- the store's backends --------------------------------------------------------------------------

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `both_backends` runs once per backend (through the `backend` fixture)."""
    if metafunc.definition.get_closest_marker("both_backends") and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The store backend of this test run: "sqlite" unless the test is marked `both_backends`."""
    return str(getattr(request, "param", "sqlite"))


def throwaway_pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL server, closed after use; the test skips, with the reason, without one."""
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    server = PgServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for the session."""
    yield from throwaway_pg_server()


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives, once per backend: a SQLite file, or a new database on the test server."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_server").create_database())
    return str(tmp_path / "pipeline.sqlite3")


def project_store(root: Path) -> Store:
    """The store a project is configured with (whichever backend), opened."""
    return open_store(load_settings(root).store_location)


def write_feeds(root: Path, *feeds: dict[str, object]) -> None:
    """Write sources/feeds.toml from dicts with url, publisher, tags."""
    lines = []
    for feed in feeds:
        lines.append("[[feeds]]")
        for key, value in feed.items():
            if isinstance(value, list):
                lines.append(f"{key} = [{', '.join(repr(v).replace(chr(39), chr(34)) for v in value)}]")
            else:
                lines.append(f'{key} = "{value}"')
        lines.append("")
    (root / "sources" / "feeds.toml").write_text("\n".join(lines), encoding="utf-8")


class ChatServer:
    """A tiny OpenAI-compatible endpoint on 127.0.0.1: POST /v1/chat/completions answers `reply`.

    Tests set `reply` (the assistant's text) or `statuses` (HTTP errors to give first, one per
    request) and read `requests` (parsed JSON bodies, with the headers) to count model calls.
    """

    def __init__(self) -> None:
        import json
        import time
        from collections.abc import Callable

        self.reply: str | Callable[[dict], str] = "Nothing to add."  # or a function of the request body
        self.statuses: list[int] = []
        self.delay = 0.0  # seconds to wait before answering
        self.hold: threading.Event | None = None  # when set, every answer waits until the test sets it
        self.requests: list[dict[str, object]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append({"path": self.path, "body": body,
                                        "headers": {k.lower(): v for k, v in self.headers.items()}})
                if server.hold is not None:
                    server.hold.wait(Gate.LONGEST)
                if server.delay:
                    time.sleep(server.delay)
                if server.statuses:
                    status = server.statuses.pop(0)
                    payload = {"error": {"message": f"test error {status}", "type": "test", "code": None}}
                else:
                    status = 200 if self.path.endswith("/chat/completions") else 404
                    reply = server.reply(body) if callable(server.reply) else server.reply
                    payload = {
                        "id": f"chatcmpl-test-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": 1714521600,
                        "model": body.get("model", "test"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply}}],
                        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
                    }
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("retry-after-ms", "1")  # keeps the client's retries fast in tests
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    server.thread.start()
    yield server
    if server.hold is not None:
        server.hold.set()
    server.httpd.shutdown()
    server.httpd.server_close()


class PausePoint:
    """Drives pipeline/pause.py: `env` makes a run stop the `count`-th time it reaches `point`;
    `wait()` returns once it is stopped there; then the test kills it or calls `resume()`."""

    def __init__(self, folder: Path, point: str, count: int = 1) -> None:
        import tempfile

        self.fifo = Path(tempfile.mkdtemp(prefix="pause-", dir=folder)) / f"{point}-{count}.fifo"
        os.mkfifo(self.fifo)
        self.env = {"PIPELINE_PAUSE": f"{point}:{count}:{self.fifo}"}
        # Opened now, without blocking: the run's write then never waits for the test.
        self._reader = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)

    def wait(self, alive: Callable[[], bool], timeout: float = 120.0) -> str:
        """The run's "paused ..." line; AssertionError when it ends (or hangs) without pausing.

        `alive` says whether the run is still going; the timeout is a safety net, not a margin.
        """
        import select

        text = b""
        deadline = time.monotonic() + timeout
        while not text.endswith(b"\n"):
            ready, _, _ = select.select([self._reader], [], [], 0.05)
            if ready:
                chunk = os.read(self._reader, 256)
                text += chunk
                if chunk:
                    continue
                time.sleep(0.01)  # end of file: the writer went away; is the run still there?
            if not alive() and not ready:
                raise AssertionError(f"the run ended before reaching pause point {self.env}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the run never reached pause point {self.env}")
        os.close(self._reader)
        return text.decode().strip()

    def resume(self) -> None:
        """Let the paused run carry on."""
        with open(self.fifo, "w", encoding="utf-8"):
            pass

"""Feeds served from many loopback hosts (127.0.0.1, 127.0.0.2, ...) on one port, each answer delayed.

Every host is a real threaded HTTP server bound to its own 127.0.0.x address; nothing listens beyond
loopback. Feed n lives at http://127.0.0.(n % hosts + 1):PORT/feed/n.xml and answers 304 to its ETag.
The servers stop when the `with` block ends, and on their own after `lifetime` seconds at the latest.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .workload import rss


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        # A client closing its keep-alive connection at the end of a run is normal, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class FeedHosts:
    def __init__(self, hosts: int = 40, delay: float = 0.5, items: int = 20, lifetime: float = 600.0) -> None:
        self.hosts = hosts
        self.delay = delay
        self.items = items
        self.lifetime = lifetime
        self.requests = 0
        self._bodies: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._servers: list[_Server] = []
        self.port = 0

    def url(self, feed: int) -> str:
        return f"http://127.0.0.{feed % self.hosts + 1}:{self.port}/feed/{feed}.xml"

    def urls(self, count: int) -> list[str]:
        return [self.url(n) for n in range(count)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hosts = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with hosts._lock:
                    hosts.requests += 1
                time.sleep(hosts.delay)  # a slow origin: what concurrency has to hide
                try:
                    feed = int(self.path.rsplit("/", 1)[-1].split(".")[0])
                except ValueError:
                    feed = -1
                if feed < 0:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = f'"feed-{feed}-v1"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = hosts._bodies.get(feed)
                if body is None:
                    body = hosts._bodies.setdefault(feed, rss(feed, hosts.items))
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> FeedHosts:
        handler = self._handler()
        first = _Server(("127.0.0.1", 0), handler)
        self.port = first.server_address[1]
        self._servers.append(first)
        for host in range(2, self.hosts + 1):
            self._servers.append(_Server((f"127.0.0.{host}", self.port), handler))
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        # A watchdog so a crashed benchmark never leaves servers behind.
        self._watchdog = threading.Timer(self.lifetime, self.close)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __exit__(self, *exc: object) -> None:
        self._watchdog.cancel()
        self.close()


def loopback_aliases_work() -> bool:
    """127.0.0.2 and up answer on Linux; elsewhere the benchmark says so instead of failing oddly."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False

"""A raw socket server on 127.0.0.1 that misbehaves on purpose, one fault per path.

conftest's `feed_server` speaks correct HTTP through http.server; the faults here (a reset in the
middle of a request, a server that reads and never answers, a drip of one byte every 0.4 s, a body
without a length) need control over every byte, so this server writes its answers by hand.

    /ok/<name>          a good RSS feed set with `server.feeds[name] = bytes`
    /status/<code>      an empty answer with that status (500, 404, 410, ...)
    /moved/<code>/<name> a <code> redirect (301, 302, 308) to /ok/<name>
    /loop/<n>           redirects to /loop/<n+1> forever
    /reset              reads the request, then closes with a TCP reset
    /hang               reads the request and never answers (until the server stops)
    /drip               a 200 that sends one byte every 0.4 s, forever (well inside any read timeout)
    /big                a 200 of 50 MB of feed-like text, no Content-Length, streamed
    /bomb               a 200 gzip body of 1 MiB that inflates to 1 GiB
    /html               a web page instead of a feed
    /empty              a 200 with an empty body
    /dtd                a DTD (so a test can see whether anything fetched it)
"""

from __future__ import annotations

import functools
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field

BIG_BYTES = 50 * 1024 * 1024
BOMB_INFLATED = 1024 * 1024 * 1024


def rss(title: str, entries: list[tuple[str, str]], date: str = "Mon, 02 Mar 2026 08:00:00 +0800") -> bytes:
    """A small RSS 2.0 feed; entries are (headline, link)."""
    items = "".join(
        f"<item><title>{headline}</title><link>{link}</link><guid>{link}</guid><pubDate>{date}</pubDate></item>"
        for headline, link in entries
    )
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{title}</title>'
            f"<link>https://example.com/</link>{items}</channel></rss>").encode()


@functools.cache
def gzip_bomb() -> bytes:
    """A valid gzip stream of BOMB_INFLATED zero bytes, built without compressing a gigabyte.

    After a full flush deflate forgets its history, so every further megabyte of zeros compresses
    to the same bytes; repeating them and writing the trailer by hand gives the whole stream.
    """
    zeros = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    repeat = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush(zlib.Z_FINISH)[:-8]  # drop the trailer written for two megabytes
    megabytes = BOMB_INFLATED >> 20
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    return first + repeat * (megabytes - 1) + end + struct.pack("<II", crc, BOMB_INFLATED & 0xFFFFFFFF)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class FaultServer:
    """Start with `start()`, stop with `stop()`; `requests` logs every request that arrived."""

    feeds: dict[str, bytes] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)  # accept() wakes up to notice stop()
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._listener.getsockname()
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            for conn in list(self._open):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
        self._thread.join(timeout=5)

    # -- plumbing ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self._open.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while not self._stopping.is_set():
                request = self._read_request(conn)
                if request is None:
                    return
                path, headers = request
                self.requests.append(Seen(path, headers))
                if not self._answer(conn, path):
                    return  # the fault closed or ruined the connection
        except OSError:
            pass  # the client went away mid-answer: exactly what several faults provoke
        finally:
            with self._lock:
                self._open.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    @staticmethod
    def _read_request(conn: socket.socket) -> tuple[str, dict[str, str]] | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        parts = head[0].split(" ")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return (parts[1] if len(parts) > 1 else "/"), headers

    @staticmethod
    def _head(status: str, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, conn: socket.socket, status: str, body: bytes = b"", **headers: str) -> bool:
        fields = {"Content-Type": "application/rss+xml; charset=utf-8", "Content-Length": str(len(body))}
        fields.update({k.replace("_", "-"): v for k, v in headers.items()})
        conn.sendall(self._head(status, fields) + body)
        return True

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; False when it is."""
        return not self._stopping.wait(seconds)

    # -- the faults ----------------------------------------------------------------------------

    def _answer(self, conn: socket.socket, path: str) -> bool:
        parts = path.strip("/").split("/")
        kind = parts[0]
        if kind == "ok" and len(parts) == 2 and parts[1] in self.feeds:
            return self._send(conn, "200 OK", self.feeds[parts[1]])
        if kind == "status" and len(parts) == 2 and parts[1].isdigit():
            return self._send(conn, f"{parts[1]} Fault", b"", Content_Type="text/plain")
        if kind == "moved" and len(parts) == 3:
            return self._send(conn, f"{parts[1]} Moved", b"", Location=f"/ok/{parts[2]}", Content_Type="text/plain")
        if kind == "loop" and len(parts) == 2 and parts[1].isdigit():
            return self._send(conn, "302 Found", b"", Location=f"/loop/{int(parts[1]) + 1}", Content_Type="text/plain")
        if kind == "reset":
            # SO_LINGER with a zero timeout turns close() into a TCP RST.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if kind == "hang":
            while self._wait(0.2):
                pass
            return False
        if kind == "drip":
            conn.sendall(self._head("200 OK", {"Content-Type": "application/rss+xml", "Content-Length": "100000"}))
            for byte in (b"<?xml version='1.0'?><rss version='2.0'><channel>" + b" " * 100000):
                conn.sendall(bytes([byte]))
                # Far inside the drip test's read timeout: only the whole-feed deadline may stop it.
                if not self._wait(0.4):
                    break
            return False
        if kind == "big":
            conn.sendall(self._head("200 OK", {"Content-Type": "application/rss+xml", "Connection": "close"}))
            conn.sendall(b"<?xml version='1.0'?><rss version='2.0'><channel><title>big</title>")
            block = b"<item><title>filler</title><link>https://example.com/filler</link></item>" * 1024
            sent = 0
            while sent < BIG_BYTES and not self._stopping.is_set():
                conn.sendall(block)
                sent += len(block)
            conn.sendall(b"</channel></rss>")
            return False
        if kind == "bomb":
            return self._send(conn, "200 OK", gzip_bomb(), Content_Encoding="gzip")
        if kind == "html":
            page = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><p>Hello</p></body></html>"
            return self._send(conn, "200 OK", page, Content_Type="text/html; charset=utf-8")
        if kind == "empty":
            return self._send(conn, "200 OK", b"")
        if kind == "dtd":
            return self._send(conn, "200 OK", b'<!ENTITY leak "fetched">', Content_Type="application/xml-dtd")
        return self._send(conn, "404 Not Found", b"", Content_Type="text/plain")


def refused_url() -> str:
    """A 127.0.0.1 URL where nothing listens: a port just bound and released."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/feed.xml"


def wait_for(predicate: object, seconds: float = 5.0) -> bool:
    """Poll a callable until it is true (tests use it to wait for a server-side effect)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False

"""Conditional GETs of many feeds at once, with every limit a long-running cron job needs.

Only network I/O lives here: bytes and headers come out, parsing happens in `extract`.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from . import __version__
from .models import Feed, FeedState, FetchResult
from .urls import is_web_url

USER_AGENT = f"expat-guide-pipeline/{__version__} (feed reader for editors; conditional GET)"
MAX_REDIRECTS = 5
REDIRECTS = {301, 302, 303, 307, 308}
PERMANENT = {301, 308}
T = TypeVar("T")
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)


class _Pools:
    """One connection pool (an httpx client) per scheme and host, open while that host is in use.

    httpcore's pool scans all of its connections whenever a request starts or ends, so one pool for
    every feed costs time growing with the square of the feeds fetched at once. A host's pool closes
    as soon as its feeds are done and no redirect is using it: idle connections kept to the end would
    hold a socket per host, and a thousand hosts would run out of file descriptors. Each pool may open
    as many connections as the run fetches feeds at once, so a host many feeds redirect to never makes
    them queue (politeness toward the hosts in feeds.toml is fetch_feeds' per-host limit).
    The verified TLS context (loading the CA bundle costs tens of milliseconds) is built once, at the
    first https URL: a run over plain-http feeds never needs it.
    """

    def __init__(self, feeds: Sequence[Feed], *, timeout: float, max_connections: int, keep_alive: int) -> None:
        self._timeout = httpx.Timeout(timeout, connect=timeout, pool=None)
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=keep_alive)
        self._clients: dict[tuple[str, str], httpx.AsyncClient] = {}
        self._waiting = Counter(_pool_key(feed.url) for feed in feeds)  # feeds not yet done, per pool
        self._busy: Counter[tuple[str, str]] = Counter()  # requests (redirect hops included) in flight
        self._tls: ssl.SSLContext | None = None
        # http:// never speaks TLS; this context holds no CA certificates, so any TLS it were asked
        # to do would fail verification rather than pass unverified.
        self._no_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    @asynccontextmanager
    async def client(self, url: str) -> AsyncIterator[httpx.AsyncClient]:
        key = _pool_key(url)
        client = self._clients.get(key) or self._open(key)
        self._busy[key] += 1
        try:
            yield client
        finally:
            self._busy[key] -= 1
            await self._close_if_done(key)

    async def feed_done(self, feed: Feed) -> None:
        key = _pool_key(feed.url)
        self._waiting[key] -= 1
        await self._close_if_done(key)

    def _open(self, key: tuple[str, str]) -> httpx.AsyncClient:
        if key[0] == "https":
            if self._tls is None:
                self._tls = httpx.create_ssl_context()  # verified, as httpx does by default
            verify = self._tls
        else:
            verify = self._no_tls
        client = self._clients[key] = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, "Accept": FEED_ACCEPT, "Accept-Encoding": "gzip, deflate"},
            timeout=self._timeout,
            follow_redirects=False,
            transport=httpx.AsyncHTTPTransport(limits=self._limits, verify=verify),
        )
        return client

    async def _close_if_done(self, key: tuple[str, str]) -> None:
        if self._busy[key] <= 0 and self._waiting[key] <= 0 and key in self._clients:
            await self._clients.pop(key).aclose()

    async def aclose(self) -> None:
        while self._clients:
            await self._clients.popitem()[1].aclose()


def _pool_key(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed URL fails in its own request, with a message; it shares no pool
        return ("", url)
    return (parts.scheme.lower(), parts.netloc.lower())


class BodyTooLarge(Exception):
    """The body passed max_body_bytes; `what` says which count passed it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class _Decoder:
    """gzip/deflate decoding with a cap on output, so a small bomb cannot fill memory."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.size = 0
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self.zlib = None
        elif encoding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.zlib = zlib.decompressobj()
        else:
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, chunk: bytes) -> bytes:
        if self.zlib is None:
            out = chunk
        else:
            # Ask for at most one byte past the cap: enough to know the cap was passed.
            out = self.zlib.decompress(chunk, self.limit - self.size + 1)
            if self.zlib.unconsumed_tail:
                raise BodyTooLarge("decompressed body")
        self.size += len(out)
        if self.size > self.limit:
            raise BodyTooLarge("decompressed body" if self.zlib else "body")
        return out


def conditional_headers(state: FeedState | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if state and state.etag:
        headers["If-None-Match"] = state.etag
    if state and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


async def fetch_one(pools: _Pools, feed: Feed, state: FeedState | None, max_body_bytes: int) -> FetchResult:
    """GET one feed, following at most MAX_REDIRECTS redirects; never raises for network trouble."""
    try:
        return await _follow(pools, feed, conditional_headers(state), max_body_bytes)
    except BodyTooLarge as exc:
        return FetchResult(
            feed, 200, error=f"{exc.what} larger than the {_size(max_body_bytes)} cap (max_body_bytes); skipped"
        )
    except (ValueError, zlib.error, httpx.HTTPError, httpx.InvalidURL) as exc:
        return FetchResult(feed, None, error=_failure(exc))


async def _follow(pools: _Pools, feed: Feed, headers: dict[str, str], max_body_bytes: int) -> FetchResult:
    """The request and its redirects; a permanent redirect is remembered only while every hop was one."""
    url = feed.url
    permanent: str | None = None
    all_permanent = True
    for _hop in range(MAX_REDIRECTS + 1):
        async with pools.client(url) as client, client.stream("GET", url, headers=headers) as response:
            if response.status_code in REDIRECTS and "location" in response.headers:
                target = urljoin(url, response.headers["location"])
                if not is_web_url(target):
                    return FetchResult(feed, response.status_code,
                                       error=f"redirect to a URL that cannot be fetched: {target[:200]!r}")
                all_permanent = all_permanent and response.status_code in PERMANENT
                if all_permanent:
                    permanent = target
                url = target
                continue
            return await _answer(feed, response, url, permanent, max_body_bytes)
    return FetchResult(feed, None, error=f"more than {MAX_REDIRECTS} redirects (a redirect loop?)")


async def _answer(feed: Feed, response: httpx.Response, url: str, permanent: str | None,
                  max_body_bytes: int) -> FetchResult:
    """The final (not redirecting) answer as a result: 304, an error status, or a capped body."""
    headers = tuple((k.lower(), v) for k, v in response.headers.items())
    if response.status_code == 304:
        return FetchResult(feed, 304, headers=headers, final_url=url, permanent_redirect=permanent)
    if response.status_code != 200:
        return FetchResult(feed, response.status_code, headers=headers, final_url=url,
                           permanent_redirect=permanent, error=_status_reason(response))
    body = await _read_capped(response, max_body_bytes)
    return FetchResult(feed, 200, body=body, headers=headers, final_url=url, permanent_redirect=permanent)


def _failure(exc: Exception) -> str:
    """One plain line for what went wrong on the way (most specific httpx classes first)."""
    if isinstance(exc, zlib.error):
        return f"corrupt compressed body ({exc})"
    if isinstance(exc, httpx.InvalidURL):  # not an HTTPError: e.g. a host IDNA cannot encode
        return f"invalid url ({_short(exc)}); fix it in sources/feeds.toml"
    if isinstance(exc, ValueError):  # unsupported Content-Encoding
        return str(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return "no connection within the connect timeout"
    if isinstance(exc, httpx.ReadTimeout):
        return "the server stopped answering (read timeout)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({_short(exc) or 'connection refused'})"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return f"the connection broke off ({_short(exc) or 'reset by peer'})"
    return f"{type(exc).__name__}: {_short(exc)}"


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise BodyTooLarge(f"body ({length} bytes announced)")
    decoder = _Decoder(response.headers.get("content-encoding", ""), limit)
    received = 0
    chunks: list[bytes] = []
    async for raw in response.aiter_raw():
        received += len(raw)
        if received > limit:
            raise BodyTooLarge("body")
        chunks.append(decoder.feed(raw))
    return b"".join(chunks)


def _status_reason(response: httpx.Response) -> str:
    code = response.status_code
    phrase = response.reason_phrase or ""
    if code == 410:
        return f"HTTP 410 {phrase}: the feed is gone for good; remove it from sources/feeds.toml".replace("  ", " ")
    if code == 404:
        return f"HTTP 404 {phrase}: check the url in sources/feeds.toml".replace("  ", " ")
    return f"HTTP {code} {phrase}".strip()


def _size(count: int) -> str:
    mib = 1024 * 1024
    return f"{count // mib} MiB" if count >= mib and count % mib == 0 else f"{count:,} bytes"


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


async def _within(seconds: float, work: Awaitable[T]) -> T:
    """`work`'s result, or TimeoutError once `seconds` have passed (asyncio.timeout runs it in this task:
    wait_for's extra task per feed would cost a turn of the event loop at the start and the end)."""
    async with asyncio.timeout(seconds):
        return await work


async def fetch_feeds(
    feeds: Sequence[Feed],
    states: dict[str, FeedState],
    *,
    timeout: float = 10.0,
    max_concurrency: int = 16,
    per_host_concurrency: int = 2,
    max_body_bytes: int = 10 * 1024 * 1024,
    on_result: Callable[[FetchResult], None] | None = None,
    deadline: float | None = None,
) -> list[FetchResult]:
    """Fetch all feeds concurrently (bounded overall and per host); results in the feeds' order.

    `timeout` bounds each connect and each read; `deadline` (3 x timeout unless given) each feed as a whole.
    """
    overall = asyncio.Semaphore(max(1, max_concurrency))
    per_host: dict[str, asyncio.Semaphore] = {}
    # A slow drip never trips the per-read timeout; this deadline bounds each feed as a whole.
    deadline = deadline if deadline is not None else timeout * 3

    pools = _Pools(feeds, timeout=timeout, max_connections=max(1, max_concurrency),
                   keep_alive=max(1, per_host_concurrency))
    try:
        async def guarded(feed: Feed) -> FetchResult:
            host = urlsplit(feed.url).hostname or ""
            host_lock = per_host.setdefault(host, asyncio.Semaphore(max(1, per_host_concurrency)))
            async with overall, host_lock:
                try:
                    try:
                        result = await _within(deadline, fetch_one(pools, feed, states.get(feed.url), max_body_bytes))
                    except TimeoutError:
                        result = FetchResult(feed, None, error=f"no complete answer within {deadline:g} s")
                    except Exception as exc:  # noqa: BLE001 (whatever a hostile server provokes, it costs one feed)
                        result = FetchResult(feed, None, error=f"unexpected {type(exc).__name__}: {_short(exc)}")
                    # Handed on before the host's pool closes: its parsing starts while the pool winds down.
                    if on_result:
                        on_result(result)
                finally:
                    await pools.feed_done(feed)
            return result

        return list(await asyncio.gather(*(guarded(feed) for feed in feeds)))
    finally:
        await pools.aclose()

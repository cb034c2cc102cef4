"""`pipeline fetch` against real HTTP servers on 127.0.0.1, through real httpx and a real SQLite store."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pipeline.cli import cli
from pipeline.fetch import MAX_REDIRECTS, USER_AGENT, fetch_feeds
from pipeline.models import Feed

from conftest import FeedServer, Gate, Route, project_store, write_feeds

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"


def rss(*titles: str, channel: str = "Test Channel") -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://news.example/{n}</link><guid>{n}</guid>"
        f"<pubDate>Fri, 06 Mar 2026 0{n % 10}:00:00 +0800</pubDate></item>"
        for n, t in enumerate(titles)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{channel}</title>{items}</channel></rss>'.encode()


def fetch(project: Path) -> Result:
    return CliRunner().invoke(cli, ["--root", str(project), "fetch"])


def stored(project: Path) -> list:
    with project_store(project) as store:
        return store.items()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/rss"


def set_tool_settings(project: Path, **values: int) -> None:
    lines = "\n".join(f"{key} = {value}" for key, value in values.items())
    (project / "pyproject.toml").write_text(f"[tool.pipeline]\n{lines}\n", encoding="utf-8")


def test_fetch_stores_items_and_sends_a_descriptive_user_agent(project: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/rss"] = Route(rss("Alipay adds foreign cards", "Metro goes cashless"))
    write_feeds(project, {"url": feed_server.url("/rss"), "publisher": "Test News"})

    result = fetch(project)

    assert result.exit_code == 0, result.output
    assert "1 ok" in result.stdout and "2 new items" in result.stdout
    assert sorted(i.headline for i in stored(project)) == ["Alipay adds foreign cards", "Metro goes cashless"]
    (request,) = feed_server.requests
    agent = request.headers["user-agent"]
    assert agent == USER_AGENT
    assert agent.startswith("expat-guide-pipeline/") and "(" in agent and "python-httpx" not in agent
    assert "gzip" in request.headers["accept-encoding"]
    assert "application/rss+xml" in request.headers["accept"]


@pytest.mark.both_backends
def test_conditional_get_remembers_etag_and_last_modified_and_a_304_keeps_items(
    project: Path, feed_server: FeedServer
) -> None:
    stamp = "Fri, 06 Mar 2026 02:00:00 GMT"
    feed_server.routes["/etag"] = Route(rss("Tagged story"), etag='"v1"')
    feed_server.routes["/lm"] = Route(rss("Dated story"), last_modified=stamp)
    write_feeds(project, {"url": feed_server.url("/etag")}, {"url": feed_server.url("/lm")})

    assert fetch(project).exit_code == 0
    with project_store(project) as store:
        assert store.feed_state(feed_server.url("/etag")).etag == '"v1"'
        assert store.feed_state(feed_server.url("/lm")).last_modified == stamp
    first = stored(project)

    # The server now answers 304 with an empty body: parsing it would fail the feed.
    second = fetch(project)

    assert second.exit_code == 0, second.output
    assert "2 ok (2 not modified)" in second.stdout and "0 new items" in second.stdout
    assert second.stderr == ""
    by_path = {r.path: r.headers for r in feed_server.requests[2:]}
    assert by_path["/etag"]["if-none-match"] == '"v1"'
    assert by_path["/lm"]["if-modified-since"] == stamp
    assert stored(project) == first
    with project_store(project) as store:
        state = store.feed_state(feed_server.url("/etag"))
    assert state.last_status == "304" and state.etag == '"v1"' and state.items_stored == 1


def test_gb2312_feed_with_charset_only_in_content_type(project: Path, feed_server: FeedServer) -> None:
    body = (FEEDS / "gb2312-http-charset.xml").read_bytes()
    assert b"encoding=" not in body.split(b"?>")[0]  # the sample declares no charset itself
    feed_server.routes["/cn.xml"] = Route(body, headers={"Content-Type": "text/xml; charset=gb2312"})
    write_feeds(project, {"url": feed_server.url("/cn.xml")})

    assert fetch(project).exit_code == 0
    items = stored(project)
    assert [i.headline for i in items] == ["外国人支付便利化新措施发布", "留学生签证办理指南更新"]
    assert {i.source for i in items} == {"上海生活资讯"}


def test_redirects_are_followed_up_to_the_cap(project: Path, feed_server: FeedServer) -> None:
    hops = MAX_REDIRECTS
    for n in range(hops):
        feed_server.routes[f"/ok{n}"] = Route(status=302, headers={"Location": f"/ok{n + 1}"})
    feed_server.routes[f"/ok{hops}"] = Route(rss("Arrived after redirects"))
    for n in range(hops + 1):
        feed_server.routes[f"/loop{n}"] = Route(status=301, headers={"Location": f"/loop{n + 1}"})
    feed_server.routes[f"/loop{hops + 1}"] = Route(rss("Never reached"))
    write_feeds(project, {"url": feed_server.url("/ok0")}, {"url": feed_server.url("/loop0")})

    result = fetch(project)

    assert result.exit_code == 0, result.output
    assert [i.headline for i in stored(project)] == ["Arrived after redirects"]
    assert f"warning: feed {feed_server.url('/loop0')}: more than {MAX_REDIRECTS} redirects" in result.stderr
    assert f"/loop{hops + 1}" not in [r.path for r in feed_server.requests]


def test_permanent_redirect_is_reported_with_its_target(project: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    feed_server.routes["/new"] = Route(rss("Moved feed story"))
    write_feeds(project, {"url": feed_server.url("/old")})

    result = fetch(project)

    assert result.exit_code == 0
    assert f"feed {feed_server.url('/old')} moved permanently to {feed_server.url('/new')}" in result.stderr
    assert [i.feed_url for i in stored(project)] == [feed_server.url("/old")]


def test_body_size_cap(project: Path, feed_server: FeedServer) -> None:
    set_tool_settings(project, max_body_bytes=4096)
    feed_server.routes["/big"] = Route(rss(*(f"Story number {n} " + "x" * 80 for n in range(60))))
    feed_server.routes["/small"] = Route(rss("Small story"))
    write_feeds(project, {"url": feed_server.url("/big")}, {"url": feed_server.url("/small")})

    result = fetch(project)

    assert result.exit_code == 0, result.output
    assert f"warning: feed {feed_server.url('/big')}: body (" in result.stderr
    assert "larger than the 4,096 bytes cap (max_body_bytes)" in result.stderr
    assert [i.headline for i in stored(project)] == ["Small story"]


def test_decompressed_size_cap_refuses_a_small_gzip_that_inflates_past_it(
    project: Path, feed_server: FeedServer
) -> None:
    set_tool_settings(project, max_body_bytes=64 * 1024)
    inflated = rss("Padding story") + b"<!--" + b" " * (32 * 1024 * 1024) + b"-->"
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 64 * 1024 < len(inflated)
    gzip_headers = {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
    feed_server.routes["/bomb"] = Route(bomb, headers=gzip_headers)
    feed_server.routes["/gz"] = Route(gzip.compress(rss("Compressed story")), headers=gzip_headers)
    write_feeds(project, {"url": feed_server.url("/bomb")}, {"url": feed_server.url("/gz")})

    tracemalloc.start()
    try:
        result = fetch(project)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.exit_code == 0, result.output
    assert f"warning: feed {feed_server.url('/bomb')}: decompressed body larger than the 65,536 bytes cap" in (
        result.stderr
    )
    assert [i.headline for i in stored(project)] == ["Compressed story"]
    # Refused after inflating about the cap, not the 32 MiB the body would become.
    assert peak < 8 * 1024 * 1024


@pytest.mark.both_backends
def test_one_failing_feed_never_stops_the_others(project: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/good"] = Route(rss("The one that works"))
    feed_server.routes["/error"] = Route(b"oops", status=500, headers={"Content-Type": "text/plain"})
    feed_server.routes["/html"] = Route(b"<html><body>Please log in</body></html>", headers={"Content-Type": "text/html"})
    refused = closed_port_url()
    write_feeds(
        project,
        {"url": feed_server.url("/missing")},
        {"url": feed_server.url("/error")},
        {"url": refused},
        {"url": feed_server.url("/html")},
        {"url": feed_server.url("/good")},
    )

    result = fetch(project)

    assert result.exit_code == 0, result.output
    assert "1 ok" in result.stdout and "4 failed" in result.stdout
    assert [i.headline for i in stored(project)] == ["The one that works"]
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 4, result.stderr  # one line per failed feed, nothing else
    expected = {
        feed_server.url("/missing"): "HTTP 404 Not Found: check the url in sources/feeds.toml",
        feed_server.url("/error"): "HTTP 500 Internal Server Error",
        refused: "cannot connect",
        feed_server.url("/html"): "RSS or Atom feed",
    }
    for url, reason in expected.items():
        (line,) = [w for w in warnings if w.startswith(f"warning: feed {url}: ")]
        assert reason in line, line
    with project_store(project) as store:
        states = store.feed_states()
    assert states[feed_server.url("/error")].last_error == "HTTP 500 Internal Server Error"
    assert states[feed_server.url("/error")].consecutive_failures == 1
    assert states[feed_server.url("/good")].consecutive_failures == 0


@pytest.mark.both_backends
def test_fetch_exits_non_zero_when_no_feed_worked(project: Path, feed_server: FeedServer) -> None:
    refused = closed_port_url()
    write_feeds(project, {"url": feed_server.url("/missing")}, {"url": refused})

    result = fetch(project)

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"warning: feed {feed_server.url('/missing')}: HTTP 404" in result.stderr
    assert f"warning: feed {refused}: cannot connect" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: no feed could be fetched; check the network and sources/feeds.toml"
    )
    assert stored(project) == []


@pytest.mark.parametrize(("overall", "per_host", "bound"), [(3, 16, 3), (16, 2, 2)])
def test_concurrency_is_bounded(feed_server: FeedServer, overall: int, per_host: int, bound: int) -> None:
    # The server holds every request until the test lets one through: the client must have exactly
    # `bound` requests open at each step, however slow or busy the machine is.
    gate = Gate()
    feeds = []
    for n in range(8):
        feed_server.routes[f"/slow{n}"] = Route(rss(f"Slow story {n}"), gate=gate)
        feeds.append(Feed(url=feed_server.url(f"/slow{n}")))
    results: list = []
    run = threading.Thread(target=lambda: results.extend(asyncio.run(
        fetch_feeds(feeds, {}, timeout=60, max_concurrency=overall, per_host_concurrency=per_host))))
    run.start()
    try:
        for remaining in range(8, 0, -1):
            assert gate.wait_until_held(min(bound, remaining)), f"fewer than {bound} requests at once"
            assert gate.held == min(bound, remaining)
            gate.let_one()
    finally:
        gate.open()
        run.join(60)

    assert [r.status for r in results] == [200] * 8
    assert [r.feed for r in results] == feeds  # results come back in the feeds' order
    assert gate.arrived == 8 and gate.most_held == bound  # concurrent, but never more than the bound at once


def test_each_result_is_handed_on_while_other_feeds_are_still_in_flight(feed_server: FeedServer) -> None:
    # update_feeds starts parsing a body from on_result: a feed that has answered must not wait for
    # the slowest one (nor for its own host's connections to close).
    gate = Gate()
    feed_server.routes["/quick"] = Route(rss("Quick story"))
    feed_server.routes["/held"] = Route(rss("Held story"), gate=gate)
    quick, held = Feed(feed_server.url("/quick")), Feed(feed_server.url("/held"))
    handed: list[tuple[str, int]] = []
    quick_handed = threading.Event()

    def on_result(result) -> None:
        handed.append((result.feed.url, gate.held))
        if result.feed == quick:
            quick_handed.set()

    results: list = []
    run = threading.Thread(target=lambda: results.extend(asyncio.run(
        fetch_feeds([held, quick], {}, timeout=60, on_result=on_result))))
    run.start()
    try:
        assert quick_handed.wait(Gate.LONGEST), "the quick feed's result waited for the held one"
    finally:
        gate.open()
        run.join(60)
    assert handed[0] == (quick.url, 1)  # handed on while the other request was still held
    assert [url for url, _ in handed] == [quick.url, held.url]
    assert [(r.feed, r.status) for r in results] == [(held, 200), (quick, 200)]


@pytest.fixture()
def self_signed_server(tmp_path: Path):
    """An https server on 127.0.0.1 whose certificate no CA vouches for."""
    import shutil
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (Debian package: openssl)")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = rss("Served over TLS")
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/feed.xml"
    server.shutdown()
    server.server_close()


def test_https_feeds_are_verified_and_an_unknown_certificate_is_refused(self_signed_server: str) -> None:
    (result,) = asyncio.run(fetch_feeds([Feed(url=self_signed_server)], {}, timeout=5))
    assert result.body is None
    assert result.error and "cannot connect" in result.error and "CERTIFICATE_VERIFY_FAILED" in result.error


def test_a_redirect_to_https_on_another_host_is_verified_too(feed_server: FeedServer, self_signed_server: str) -> None:
    feed_server.routes["/moved"] = Route(b"", status=301, headers={"Location": self_signed_server})
    (result,) = asyncio.run(fetch_feeds([Feed(url=feed_server.url("/moved"))], {}, timeout=5))
    assert result.body is None and result.error and "CERTIFICATE_VERIFY_FAILED" in result.error


def _loopback_servers(count: int):
    """`count` servers on 127.0.0.2, 127.0.0.3, ...: as many hosts, each its own connection pool."""
    from conftest import FeedServer as Server

    try:
        servers = [Server(host=f"127.0.0.{n + 2}").start() for n in range(count)]
    except OSError:
        pytest.skip("loopback aliases (127.0.0.2 and up) cannot be bound here; Linux has them")
    return servers


def test_many_feeds_redirected_to_one_host_do_not_queue_past_their_deadline(feed_server: FeedServer) -> None:
    # Feed services put many publishers' feeds behind redirects to one host; reaching it must not
    # wait for the per-host limit meant for the hosts in feeds.toml. The target holds every request
    # until all 8 are there at once: queued two at a time, they never would be (and each would wait
    # for the ones before it, past its deadline).
    gate = Gate()
    feed_server.routes["/target"] = Route(rss("Served after a redirect"), gate=gate)
    origins = _loopback_servers(8)
    results: list = []
    try:
        for origin in origins:
            origin.routes["/feed"] = Route(b"", status=302, headers={"Location": feed_server.url("/target")})
        feeds = [Feed(origin.url("/feed")) for origin in origins]
        run = threading.Thread(target=lambda: results.extend(asyncio.run(
            fetch_feeds(feeds, {}, timeout=60, max_concurrency=16, per_host_concurrency=2))))
        run.start()
        all_at_once = gate.wait_until_held(8)
        gate.open()
        run.join(60)
    finally:
        gate.open()
        for origin in origins:
            origin.stop()
    assert all_at_once, f"only {gate.most_held} redirected requests reached the target at once"
    assert [(r.status, r.error) for r in results] == [(200, None)] * 8


def test_a_hosts_connections_close_when_its_feeds_are_done() -> None:
    # Idle keep-alive connections kept to the end of the run would hold a socket per host: a few
    # thousand hosts would exhaust a cron job's 1024 file descriptors.
    def open_sockets() -> int:
        return sum(1 for fd in Path("/proc/self/fd").iterdir() if fd.resolve(strict=False).name.startswith("socket:"))

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs Linux /proc to count sockets")
    servers = _loopback_servers(20)
    try:
        for server in servers:
            for n in range(2):
                server.routes[f"/{n}"] = Route(rss(f"Story {n}"))
        baseline = open_sockets()
        seen: list[int] = []
        feeds = [Feed(server.url(f"/{n}")) for server in servers for n in range(2)]
        results = asyncio.run(fetch_feeds(feeds, {}, timeout=5, max_concurrency=4, per_host_concurrency=2,
                                          on_result=lambda _r: seen.append(open_sockets() - baseline)))
    finally:
        for server in servers:
            server.stop()
    assert [r.status for r in results] == [200] * 40
    # Both ends of each connection live in this process: 4 feeds at once make 8 sockets, plus server
    # ends still closing. Kept to the end, the 20 hosts' idle connections made over 80.
    assert max(seen) <= 24, (max(seen), seen)


def test_a_redirect_to_an_impossible_port_fails_that_feed_alone(feed_server: FeedServer) -> None:
    feed_server.routes["/good"] = Route(rss("Still fetched"))
    feed_server.routes["/bad-port"] = Route(b"", status=302, headers={"Location": "http://127.0.0.1:70000/feed"})
    good, bad = asyncio.run(fetch_feeds([Feed(feed_server.url("/good")), Feed(feed_server.url("/bad-port"))], {},
                                        timeout=5))
    assert good.status == 200 and good.body
    assert bad.body is None and bad.error and "redirect to a URL that cannot be fetched" in bad.error

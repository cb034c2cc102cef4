"""Link health: a link server on 127.0.0.1 answers every case; each verdict as the issue lists it.

The hanging link is held open until the test releases it (an event, not a sleep): the checks come
back while it still hangs, which proves no check waits past the fetch deadline.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import Route, write_feeds

from pipeline.cli import cli
from pipeline.linkcheck import check_links, due
from pipeline.models import LinkCheck
from pipeline.store import open_store

NOW = dt.datetime(2026, 3, 6, 9, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
TIMEOUT = 2.0


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # The hang test's client is gone by the time the held answer is written: expected, not news.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LinkServer:
    """Answers by path: /ok, /gone404, /gone410, /moved (301), /soft (302 to /), /soft-title,
    /challenge (403), /flaky (503, then 200, alternately), /hang (held until `release` is set)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.hits: dict[str, int] = {}
        self.broken: set[str] = set()  # paths answering 404 from now on
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                if path in server.broken:
                    return self._send(404, "<title>Not here</title>")
                if path == "/hang":
                    server.release.wait(30)  # until the test lets go
                    return self._send(200, "<title>Late</title>")
                if path in ("/ok", "/") or path.startswith("/story/"):
                    return self._send(200, "<html><head><title>A story</title></head><body>text</body></html>")
                if path in ("/gone404", "/gone410"):
                    return self._send(int(path[-3:]), "gone")
                if path == "/moved":
                    return self._send(301, "", Location="/new-home")
                if path == "/new-home":
                    return self._send(200, "<title>New home</title>")
                if path == "/soft":
                    return self._send(302, "", Location="/")
                if path == "/soft-title":
                    return self._send(200, "<html><head><title>Page Not Found | Daily</title></head></html>")
                if path == "/challenge":
                    return self._send(403, "<title>Just a moment...</title> checking your browser")
                if path == "/flaky":
                    return self._send(503 if server.hits[path] % 2 else 200, "<title>Flaky</title>")
                return self._send(404, "no such page")

            def _send(self, status: int, body: str, **headers: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.httpd.server_address[1]}{path}"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def links() -> Iterator[LinkServer]:
    server = LinkServer()
    yield server
    server.stop()


def run(urls: list[str], previous: dict[str, LinkCheck], now: dt.datetime) -> dict[str, LinkCheck]:
    report = check_links(urls, previous, now, timeout=TIMEOUT, max_concurrency=16, per_host=2)
    return {**previous, **report.checks}


def test_each_answer_gets_its_verdict_and_a_hang_never_holds_the_run(links: LinkServer) -> None:
    paths = ["/ok", "/gone404", "/gone410", "/moved", "/soft", "/soft-title", "/challenge", "/flaky", "/hang"]
    urls = [links.url(p) for p in paths]
    first = run(urls, {}, NOW)
    # The run is over and the hanging request is still held: no check waited past the deadline.
    assert not links.release.is_set()
    verdict = {path: first[links.url(path)] for path in paths}
    assert verdict["/ok"].verdict == "ok" and verdict["/ok"].status == 200
    assert verdict["/moved"].verdict == "moved" and verdict["/moved"].moved_to == links.url("/new-home")
    assert verdict["/challenge"].verdict == "unverified" and verdict["/challenge"].status == 403
    assert verdict["/flaky"].verdict == "unverified" and verdict["/flaky"].status == 503
    assert verdict["/hang"].verdict == "unverified" and verdict["/hang"].detail == "timed out"
    for path in ("/gone404", "/gone410", "/soft", "/soft-title"):  # never dead on one try
        assert verdict[path].verdict == "unverified" and verdict[path].strikes == 1, path
    assert "front page" in verdict["/soft"].detail and "Not Found" in verdict["/soft-title"].detail

    second = run(urls, first, NOW + DAY)
    assert not links.release.is_set()
    for path in ("/gone404", "/gone410", "/soft", "/soft-title"):  # twice in a row: dead
        assert second[links.url(path)].verdict == "dead" and second[links.url(path)].strikes == 2, path
    assert second[links.url("/flaky")].verdict == "ok"  # the intermittent link survives
    assert second[links.url("/challenge")].verdict == "unverified"
    assert second[links.url("/hang")].verdict == "unverified"
    links.release.set()


def test_a_verdict_is_fresh_for_a_day_by_the_pipelines_clock(links: LinkServer) -> None:
    url = links.url("/ok")
    first = run([url], {}, NOW)
    assert links.hits["/ok"] == 1
    assert due([url], first, NOW + DAY - dt.timedelta(seconds=1)) == []
    run([url], first, NOW + dt.timedelta(hours=23))
    assert links.hits["/ok"] == 1  # fresh: no request
    run([url], first, NOW + DAY)
    assert links.hits["/ok"] == 2


def test_an_answer_in_between_resets_the_count_of_404s(links: LinkServer) -> None:
    url = links.url("/story/1")
    links.broken.add("/story/1")
    once = run([url], {}, NOW)
    links.broken.clear()
    again = run([url], once, NOW + DAY)
    links.broken.add("/story/1")
    third = run([url], again, NOW + 2 * DAY)
    assert [c[url].verdict for c in (once, again, third)] == ["unverified", "ok", "unverified"]


def test_a_host_that_no_longer_resolves_is_dead_only_while_other_names_resolve(links: LinkServer) -> None:
    gone = "http://no-such-host.invalid/story"
    with_resolver = check_links([gone, links.url("/ok", host="localhost")], {}, NOW, timeout=TIMEOUT)
    assert with_resolver.resolver_works and with_resolver.checks[gone].verdict == "dead"
    # Only addresses and an unknown name: nothing says the resolver works, so nothing is judged by it.
    without = check_links([gone, links.url("/ok")], {}, NOW, timeout=TIMEOUT)
    assert not without.resolver_works and without.checks[gone].verdict == "unverified"
    assert without.checks[links.url("/ok")].verdict == "ok"


# -- through `pipeline refresh` -------------------------------------------------------------------

def rss(links: LinkServer, stories: list[tuple[str, str, str]]) -> bytes:
    items = "".join(f"<item><title>{title}</title><link>{links.url(path)}</link><guid>{path}</guid>"
                    f"<pubDate>{date}</pubDate></item>" for title, path, date in stories)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title><link>{links.url("/")}</link>'
            f"<description>d</description>{items}</channel></rss>").encode()


def refresh(project: Path, when: dt.datetime, *args: str):
    return CliRunner().invoke(cli, ["--root", str(project), "refresh", *args],
                              env={"SOURCE_DATE_EPOCH": str(int(when.timestamp())), "PIPELINE_MODEL": ""})


def listed(project: Path) -> list[str]:
    text = (project / "output" / "wechat-encryption.md").read_text(encoding="utf-8")
    return [e["url"] for e in yaml.safe_load(text.split("\n---\n", 1)[0].removeprefix("---\n"))["further_reading"]]


def test_refresh_drops_a_dead_story_refills_the_slot_and_says_so_once(project: Path, feed_server,
                                                                     links: LinkServer) -> None:
    stories = [("WeChat privacy encryption data audit", "/story/a", "Thu, 05 Mar 2026 09:00:00 +0000"),
               ("WeChat privacy encryption rules", "/flaky", "Wed, 04 Mar 2026 09:00:00 +0000"),
               ("WeChat privacy settings change", "/moved", "Tue, 03 Mar 2026 09:00:00 +0000"),
               ("WeChat adds stickers", "/story/spare", "Mon, 02 Mar 2026 09:00:00 +0000")]
    feed_server.routes["/desk.xml"] = Route(rss(links, stories))
    write_feeds(project, {"url": feed_server.url("/desk.xml"), "publisher": "Desk"})
    (project / "pyproject.toml").write_text("[tool.pipeline]\ncheck_links = true\n", encoding="utf-8")
    built = CliRunner().invoke(cli, ["--root", str(project), "build", "wechat-encryption"],
                               env={"SOURCE_DATE_EPOCH": str(int(NOW.timestamp())), "PIPELINE_MODEL": ""})
    assert built.exit_code == 0, built.output
    assert listed(project) == [links.url("/story/a"), links.url("/flaky"), links.url("/moved")]

    links.broken.add("/story/a")
    first = refresh(project, NOW)
    assert first.exit_code == 0, first.output
    assert "dead link" not in first.stderr  # one 404 is not enough
    assert listed(project) == [links.url("/story/a"), links.url("/flaky"), links.url("/new-home")]  # moved

    second = refresh(project, NOW + DAY)
    assert second.exit_code == 0, second.output
    assert second.stderr.count("dead link dropped") == 1 and links.url("/story/a") in second.stderr
    assert "wechat-encryption" in second.stderr
    # The dead story is gone, its slot refilled; the intermittent link survived both runs.
    assert listed(project) == [links.url("/flaky"), links.url("/new-home"), links.url("/story/spare")]

    third = refresh(project, NOW + 2 * DAY)
    assert "dead link" not in third.stderr  # said once
    table = CliRunner().invoke(cli, ["--root", str(project), "links", "--json"])
    rows = {row["url"]: row for row in yaml.safe_load(table.output)}
    assert set(rows) == set(listed(project))
    assert rows[links.url("/flaky")]["verdict"] in ("ok", "unverified")
    assert rows[links.url("/story/spare")]["last_check"] == (NOW + 2 * DAY).strftime("%Y-%m-%d %H:%M")
    with open_store(project / "pipeline.sqlite3") as store:
        history = store.link_history(links.url("/story/a"))
    assert [verdict for _, verdict, _ in history] == ["unverified", "dead"]  # build checks no link; refresh does


def test_a_dead_link_in_a_list_a_reviewer_keeps_is_said_once_and_stays_open_until_removed(
        project: Path, feed_server, links: LinkServer) -> None:
    stories = [("WeChat privacy encryption data audit", "/story/a", "Thu, 05 Mar 2026 09:00:00 +0000"),
               ("WeChat privacy encryption rules", "/story/b", "Wed, 04 Mar 2026 09:00:00 +0000")]
    feed_server.routes["/desk.xml"] = Route(rss(links, stories))
    write_feeds(project, {"url": feed_server.url("/desk.xml"), "publisher": "Desk"})
    (project / "pyproject.toml").write_text("[tool.pipeline]\ncheck_links = true\n", encoding="utf-8")
    env = {"SOURCE_DATE_EPOCH": str(int(NOW.timestamp())), "PIPELINE_MODEL": ""}
    assert CliRunner().invoke(cli, ["--root", str(project), "build", "wechat-encryption"], env=env).exit_code == 0
    draft = project / "output" / "wechat-encryption.md"
    note = "Dana: both stories checked against the ministry's notice."  # not an entry: the list is hers now
    text = draft.read_text(encoding="utf-8")
    draft.write_text(text.replace("🔸 WeChat privacy encryption data audit",
                                  f"{note}\n\n🔸 WeChat privacy encryption data audit", 1), encoding="utf-8")
    links.broken.add("/story/a")
    assert refresh(project, NOW).exit_code == 0  # one 404 is not enough
    second = refresh(project, NOW + DAY)
    assert second.exit_code == 0, second.output
    dead = links.url("/story/a")
    assert dead in listed(project)  # her list is left as it is ...
    assert "dropped" not in second.stderr  # ... so it is not said to be dropped
    assert second.stderr.count(f"Further Reading lists {dead}, which is dead") == 1, second.stderr
    assert "remove the entry" in second.stderr and "wechat-encryption.md" in second.stderr

    def open_kinds() -> list[str]:
        shown = CliRunner().invoke(cli, ["--root", str(project), "status", "--json"])
        drafts = {Path(d["path"]).name: d for d in yaml.safe_load(shown.output)["drafts"]}
        return [c["kind"] for c in drafts["wechat-encryption.md"]["open"]]

    assert "dead-link:" + dead in open_kinds()
    # Said once; a build, which checks no link, leaves it open.
    assert "which is dead" not in refresh(project, NOW + 2 * DAY).stderr
    assert CliRunner().invoke(cli, ["--root", str(project), "build", "--offline"], env=env).exit_code == 0
    assert "dead-link:" + dead in open_kinds()
    # She removes the entry: the next refresh that checks links closes it, quietly.
    text = draft.read_text(encoding="utf-8")
    start = text.index("🔸 WeChat privacy encryption data audit")
    end = text.index("🔸", start + 1)
    draft.write_text(text[:start] + text[end:], encoding="utf-8")
    last = refresh(project, NOW + 3 * DAY)  # (her list is still hers: the front matter's copy stays as it was)
    assert last.exit_code == 0 and last.stderr == "", last.stderr
    assert not any(kind.startswith("dead-link:") for kind in open_kinds())


def test_offline_and_the_setting_turn_link_checks_off(project: Path, feed_server, links: LinkServer) -> None:
    stories = [("WeChat privacy encryption data audit", "/story/a", "Thu, 05 Mar 2026 09:00:00 +0000")]
    feed_server.routes["/desk.xml"] = Route(rss(links, stories))
    write_feeds(project, {"url": feed_server.url("/desk.xml"), "publisher": "Desk"})
    CliRunner().invoke(cli, ["--root", str(project), "build", "wechat-encryption"],
                       env={"SOURCE_DATE_EPOCH": str(int(NOW.timestamp())), "PIPELINE_MODEL": ""})
    (project / "pyproject.toml").unlink()  # the default: on
    assert refresh(project, NOW, "--offline").exit_code == 0
    assert links.hits.get("/story/a") is None
    (project / "pyproject.toml").write_text("[tool.pipeline]\ncheck_links = false\n", encoding="utf-8")
    assert refresh(project, NOW).exit_code == 0
    assert links.hits.get("/story/a") is None
    (project / "pyproject.toml").write_text("[tool.pipeline]\ncheck_links = true\n", encoding="utf-8")
    assert refresh(project, NOW).exit_code == 0
    assert links.hits["/story/a"] == 1


def test_without_a_resolver_no_link_is_judged_dead_and_the_run_says_so_once(project: Path) -> None:
    from pipeline.config import load_settings
    from pipeline.linkcheck import link_health

    (project / "output" / "g.md").write_text(
        "---\ntitle: G\nfurther_reading:\n  - headline: H\n    url: http://no-such-host.invalid/story\n---\nText\n",
        encoding="utf-8")
    said: list[str] = []
    with open_store(project / "pipeline.sqlite3") as store:
        settings = load_settings(project)
        first = link_health(settings, store, NOW, said.append)
        second = link_health(settings, store, NOW + DAY, said.append)
    assert first.dead == second.dead == frozenset()
    assert said == ["links could not be checked: no host name resolves on this machine; none was judged dead"]

"""Links listed in drafts -> verdicts: ok, moved, unverified or dead, judged carefully.

A story is dropped only on evidence a person would accept: 404/410 (or a "soft 404") twice in a row,
or a host that no longer resolves while other names do. Challenges (403/429), server errors, timeouts
and a machine without a resolver leave a link "unverified": the story stays. Each link is checked at
most once per CHECK_EVERY by the pipeline's clock; at most `per_host` requests go to one host at once,
and no check outlives the fetch timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from .config import Settings
from .models import DeadListing, LinkCheck, LinkVerdicts
from .store import Store
from .urls import is_web_url

CHECK_EVERY = dt.timedelta(days=1)
DEAD_AFTER = 2  # 404/410 answers in a row before a link is dead: one can be a publisher's hiccup
MAX_HOPS = 5  # temporary redirects followed before giving up
TITLE_BYTES = 32 * 1024  # a page's <title> is near its top
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_NOT_FOUND = re.compile(r"\b(not found|404|page (does not|doesn't) exist|no longer available)\b", re.IGNORECASE)
NO_RESOLVER = "no name resolves on this machine"
USER_AGENT = "pipeline-linkcheck (+https://github.com/; checks links listed in drafts)"


@dataclass(frozen=True)
class LinkReport:
    """One run of checks: the new verdicts, and whether names could be resolved at all."""

    checks: dict[str, LinkCheck]
    resolver_works: bool  # False: no name resolved on this run, so no link was judged by its host


def due(urls: Iterable[str], previous: Mapping[str, LinkCheck], now: dt.datetime) -> list[str]:
    """Links not checked within CHECK_EVERY of `now` (the pipeline's clock), in a stable order."""
    return sorted({url for url in urls if url not in previous or now - previous[url].checked_at >= CHECK_EVERY})


def check_links(urls: Iterable[str], previous: Mapping[str, LinkCheck], now: dt.datetime, *,
                timeout: float, max_concurrency: int = 32, per_host: int = 2) -> LinkReport:
    """Check every link due; links with fresh verdicts cost no request."""
    wanted = due(urls, previous, now)
    if not wanted:
        return LinkReport({}, resolver_works=True)
    return asyncio.run(_check_all(wanted, previous, now, timeout, max_concurrency, per_host))


async def _check_all(urls: list[str], previous: Mapping[str, LinkCheck], now: dt.datetime, timeout: float,
                     max_concurrency: int, per_host: int) -> LinkReport:
    hosts = {_host(url) for url in urls}
    resolved = await _resolve(hosts, timeout)
    names = [host for host in hosts if not _is_address(host)]
    resolver_works = any(resolved[host] for host in names) if names else True
    everything = asyncio.Semaphore(max_concurrency)
    by_host = {host: asyncio.Semaphore(per_host) for host in hosts}
    limits = httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits, follow_redirects=False,
                                 headers={"User-Agent": USER_AGENT}) as client:

        async def one(url: str) -> LinkCheck:
            host = _host(url)
            if not resolved[host]:
                if resolver_works:
                    return _judged(url, previous.get(url), now, None, "dead", "the host no longer resolves")
                return _judged(url, previous.get(url), now, None, "unverified", NO_RESOLVER)
            async with by_host[host], everything:  # host first: a task waiting for its host holds no slot
                try:  # the whole check, redirects included, within the fetch timeout
                    return await asyncio.wait_for(_probe(client, url, previous.get(url), now), timeout)
                except (asyncio.TimeoutError, httpx.TimeoutException):
                    return _judged(url, previous.get(url), now, None, "unverified", "timed out")
                except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
                    return _judged(url, previous.get(url), now, None, "unverified",
                                   f"no answer ({type(exc).__name__})")

        results = await asyncio.gather(*(one(url) for url in urls))
    return LinkReport({check.url: check for check in results}, resolver_works)


async def _resolve(hosts: set[str], timeout: float) -> dict[str, bool]:
    loop = asyncio.get_running_loop()

    async def one(host: str) -> bool:
        if _is_address(host):
            return True
        try:
            await asyncio.wait_for(loop.getaddrinfo(_name(host), None, type=socket.SOCK_STREAM), timeout)
            return True
        except (OSError, asyncio.TimeoutError, UnicodeError):
            return False

    answers = await asyncio.gather(*(one(host) for host in hosts))
    return dict(zip(hosts, answers))


async def _probe(client: httpx.AsyncClient, url: str, last: LinkCheck | None, now: dt.datetime) -> LinkCheck:
    target = url
    for _ in range(MAX_HOPS + 1):
        async with client.stream("GET", target) as response:
            status = response.status_code
            location = response.headers.get("location")
            if status in (301, 308) and location and target == url:
                return _judged(url, last, now, status, "moved", f"moved permanently ({status})",
                               moved_to=urljoin(url, location))
            if status in (301, 302, 303, 307, 308) and location:
                target = urljoin(target, location)
                if _front_page(target) and not _front_page(url):
                    return _judged(url, last, now, status, "missing", "redirects to the site's front page")
                continue
            if status in (404, 410):
                return _judged(url, last, now, status, "missing", f"answers {status}")
            if status in (403, 429) or status >= 500:
                return _judged(url, last, now, status, "unverified", f"answers {status}; may be a challenge or an outage")
            if 200 <= status < 300:
                title = await _title(response)
                if title and _NOT_FOUND.search(title):
                    return _judged(url, last, now, status, "missing", f"page titled {title[:60]!r}")
                return _judged(url, last, now, status, "ok", f"answers {status}")
            return _judged(url, last, now, status, "unverified", f"answers {status}")
    return _judged(url, last, now, None, "unverified", "too many redirects")


async def _title(response: httpx.Response) -> str:
    if "html" not in response.headers.get("content-type", "html"):
        return ""
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= TITLE_BYTES or b"</title" in head.lower():
            break
    found = _TITLE.search(head)
    return " ".join(found.group(1).decode("utf-8", "replace").split()) if found else ""


def _judged(url: str, last: LinkCheck | None, now: dt.datetime, status: int | None, verdict: str,
            detail: str, moved_to: str | None = None) -> LinkCheck:
    """A verdict with its history: "missing" is dead only the DEAD_AFTER-th time in a row."""
    strikes = 0
    if verdict == "missing":
        strikes = (last.strikes if last else 0) + 1
        verdict = "dead" if strikes >= DEAD_AFTER else "unverified"
        detail = f"{detail} ({strikes} time{'s' if strikes > 1 else ''} in a row)"
    return LinkCheck(url=url, verdict=verdict, checked_at=now, status=status, detail=detail,
                     moved_to=moved_to, strikes=strikes)


def _host(url: str) -> str:
    """Host and port: what "at most per_host at once" counts (loopback servers differ by port)."""
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}|{parts.port or ''}"


def _name(host: str) -> str:
    return host.split("|", 1)[0]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(_name(host))
        return True
    except ValueError:
        return False


def _front_page(url: str) -> bool:
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


def listed_links(output_dir: Path) -> dict[str, tuple[str, ...]]:
    """Every http(s) link the drafts' Further Reading lists -> the slugs listing it."""
    from .drafts import read_draft
    from .errors import PipelineError

    listed: dict[str, list[str]] = {}
    for path in sorted(output_dir.glob("*.md")) if output_dir.is_dir() else []:
        try:
            draft = read_draft(path)
        except PipelineError:
            continue  # a draft that cannot be read is `build`'s to report
        entries = draft.front_matter.get("further_reading") if draft else None
        for entry in entries if isinstance(entries, list) else []:
            url = entry.get("url") if isinstance(entry, dict) else None
            if isinstance(url, str) and is_web_url(url):
                listed.setdefault(url, []).append(path.stem)
    return {url: tuple(slugs) for url, slugs in listed.items()}


def _shown_links(output_dir: Path, slugs: Iterable[str]) -> dict[str, frozenset[str]]:
    """slug -> the links its Further Reading list shows readers, read from the list itself: a list a reviewer
    keeps does not update the front matter's copy."""
    from .drafts import find_regions, read_draft
    from .entries import readable_entries
    from .errors import PipelineError

    shown: dict[str, frozenset[str]] = {}
    for slug in sorted(slugs):
        try:
            draft = read_draft(output_dir / f"{slug}.md")
        except PipelineError:
            continue  # unreadable: `build` says so
        region = find_regions(draft.body).get("further-reading", "") if draft else ""
        shown[slug] = frozenset(entry.link for entry in readable_entries(region))
    return shown


def link_health(settings: Settings, store: Store, now: dt.datetime, warn: Callable[[str], None]) -> LinkVerdicts:
    """Check the links drafts list (those due), remember the verdicts, and say that links could not be
    checked, once. What became of each dead link is known after the build (`dead_link_outcomes`)."""
    listed = listed_links(settings.output_dir)
    previous = store.link_checks()
    report = check_links(listed, previous, now, timeout=settings.timeout,
                         max_concurrency=settings.max_concurrency, per_host=settings.per_host_concurrency)
    store.save_link_checks(report.checks.values())
    # Said once, not every cron run: the verdicts remember that no name resolved.
    if not report.resolver_works and not any(check.detail == NO_RESOLVER for check in previous.values()):
        warn("links could not be checked: no host name resolves on this machine; none was judged dead")
    verdicts = {**previous, **report.checks}
    return LinkVerdicts(
        dead=frozenset(url for url, check in verdicts.items() if check.verdict == "dead"),
        moved=tuple(sorted((url, check.moved_to) for url, check in verdicts.items()
                           if check.verdict == "moved" and check.moved_to)),
        listed_dead=tuple(
            DeadListing(url, verdicts[url].detail, slugs,
                        newly=url in report.checks and (url not in previous or previous[url].verdict != "dead"))
            for url, slugs in sorted(listed.items()) if url in verdicts and verdicts[url].verdict == "dead"),
    )


def dead_link_outcomes(output_dir: Path, links: LinkVerdicts) -> tuple[list[str], list[tuple[str, str, str]]]:
    """After the build, what became of each dead link drafts listed: (lines naming the links the build
    dropped, once, when they turned dead; (draft path, url, detail) for each still listed, in a list a
    reviewer keeps, which a person must fix)."""
    still = _shown_links(output_dir, {slug for dead in links.listed_dead for slug in dead.slugs})
    dropped_lines: list[str] = []
    kept: list[tuple[str, str, str]] = []
    for dead in links.listed_dead:
        keeping = [slug for slug in dead.slugs if dead.url in still.get(slug, ())]
        dropped = [slug for slug in dead.slugs if slug not in keeping]
        if dead.newly and dropped:
            dropped_lines.append(f"dead link dropped from Further Reading of {', '.join(dropped)}: {dead.url} "
                                 f"({dead.detail})")
        kept += [(str(output_dir / f"{slug}.md"), dead.url, dead.detail) for slug in keeping]
    return dropped_lines, kept

"""A second floor for goal 3: the least a process can do that fetches the feeds *and* reads them.

httpx's plain client on one thread per feed (no asyncio or anyio to import before the first request),
feedparser on two worker processes forked while the servers think (feedparser loaded and warmed there),
nothing stored, no report, and no interpreter teardown. The pipeline must do all of this and more, so
where this floor fails the goal on a machine, the pipeline cannot pass it there
(`python -m benchmarks.parse_floor URLS_FILE` prints the number of entries read).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import httpx

WARM_UP = (b"<rss version='2.0'><channel><title>t</title><item><title>x</title>"
           b"<pubDate>Mon, 30 Nov 2026 09:00:00 +0000</pubDate></item></channel></rss>")


def _load_parser() -> None:
    import feedparser

    feedparser.parse(WARM_UP)


def _entries(body: bytes) -> int:
    import feedparser

    return len(feedparser.parse(body, resolve_relative_uris=False, sanitize_html=False).entries)


def main(urls: list[str]) -> int:
    client = httpx.Client(timeout=30.0, limits=httpx.Limits(max_connections=len(urls)))
    parsers: list[ProcessPoolExecutor] = []
    ready = threading.Event()

    def fetch(url: str) -> Future[int]:
        body = client.get(url).content
        ready.wait()
        return parsers[0].submit(_entries, body)

    with ThreadPoolExecutor(len(urls)) as threads:
        fetching = [threads.submit(fetch, url) for url in urls]
        pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"), initializer=_load_parser)
        for _ in range(2):
            pool.submit(int)  # forks both workers now, while the requests wait
        parsers.append(pool)
        ready.set()
        entries = sum(future.result().result() for future in fetching)
    for worker in list(getattr(pool, "_processes", {}).values()):
        worker.kill()
    return entries


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        print(main(handle.read().split()), flush=True)
    os._exit(0)  # no teardown: the floor leaves out everything it can

"""The floor for goal 3: the same feeds fetched at once by a bare httpx script, in its own process.

No CLI, no store, no parsing, no limits: the least a Python process that asks httpx for the feeds
can take on this machine (`python -m benchmarks.httpx_floor URLS_FILE`). The pipeline's fetch is
measured against it too, so a reader sees how much of the wall time is the pipeline's own.
"""

from __future__ import annotations

import asyncio
import sys

import httpx


async def fetch_all(urls: list[str]) -> int:
    async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=len(urls))) as client:
        answers = await asyncio.gather(*(client.get(url) for url in urls))
    return sum(1 for answer in answers if answer.status_code == 200)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        print(asyncio.run(fetch_all(handle.read().split())))

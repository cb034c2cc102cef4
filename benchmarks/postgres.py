"""Goal 6: the shared PostgreSQL store costs at most 1.5x the SQLite file, build and fetch side by side.

The server is a throwaway local one (Debian's postgresql binaries, as the tests start it), with its
normal durability settings; the pipeline's session sets synchronous_commit = off as it always does.
Each backend's step runs in turn, the fastest of several runs kept: the machine is shared.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from .feedhosts import FeedHosts
from .workload import make_project

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

GOAL = 1.5


def use_store(root: Path, url: str | None) -> None:
    config = root / "pyproject.toml"
    if url is None:
        config.unlink(missing_ok=True)
    else:
        config.write_text(f'[tool.pipeline]\nstore = "{url}"\n', encoding="utf-8")


def side_by_side(repeats: int, sqlite: Callable[[], float], postgres: Callable[[], float]) -> tuple[float, float]:
    """The fastest wall time of each, runs interleaved so both see the same machine."""
    lite, pg = [], []
    for _ in range(max(1, repeats)):
        lite.append(sqlite())
        pg.append(postgres())
    return min(lite), min(pg)


def bench_postgres(work: Path, guides: int, feeds: int, repeats: int,
                   run: Callable[[list[str]], float], pipeline: Callable[..., list[str]],
                   line: Callable[[str, str, str, bool], bool]) -> list[bool]:
    try:
        from pgserver import PgServer, why_unavailable
    except ImportError:
        print("skip  6 postgresql store       tests/pgserver.py not found (run from a checkout)")
        return []
    reason = why_unavailable()
    if reason:
        print(f"skip  6 postgresql store       no PostgreSQL server can be started: {reason}")
        return []
    server = PgServer(fsync=True)
    try:
        return [_build(work, server, guides, repeats, run, pipeline, line),
                _fetch(work, server, feeds, repeats, run, pipeline, line)]
    finally:
        server.close()


def _build(work: Path, server: object, guides: int, repeats: int, run: Callable[[list[str]], float],
           pipeline: Callable[..., list[str]], line: Callable[[str, str, str, bool], bool]) -> bool:
    root = make_project(work / "pg-build", guides)
    pristine = work / "pg-pristine.sqlite3"
    shutil.move(root / "pipeline.sqlite3", pristine)
    url = server.create_database("bench")  # type: ignore[attr-defined]

    def fresh(store_url: str | None) -> float:
        shutil.rmtree(root / "output", ignore_errors=True)
        (root / "output").mkdir()
        use_store(root, None)
        target = store_url or str(root / "pipeline.sqlite3")
        if store_url is None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
        run(pipeline("store", "copy", "--force", str(pristine), target))  # the same items, no fingerprints
        use_store(root, store_url)
        return run(pipeline("--root", str(root), "build", "--offline"))

    lite, pg = side_by_side(repeats, lambda: fresh(None), lambda: fresh(url))
    ratio = pg / lite
    return line("6 build on postgresql", f"{guides} guides {pg:.2f}s vs sqlite {lite:.2f}s = {ratio:.2f}x",
                f"<= {GOAL}x sqlite", ratio <= GOAL)


def _fetch(work: Path, server: object, feeds: int, repeats: int, run: Callable[[list[str]], float],
           pipeline: Callable[..., list[str]], line: Callable[[str, str, str, bool], bool]) -> bool:
    from .workload import write_feeds_toml

    with FeedHosts(hosts=min(40, feeds), delay=0.5) as hosts:
        urls = hosts.urls(feeds)

        def fresh(postgres: bool) -> float:  # an empty store each time: every feed answers 200
            root = work / "pg-fetch"
            shutil.rmtree(root, ignore_errors=True)
            (root / "sources").mkdir(parents=True)
            write_feeds_toml(root, urls)
            use_store(root, server.create_database("fetch") if postgres else None)  # type: ignore[attr-defined]
            return run(pipeline("--root", str(root), "fetch", "--quiet"))

        lite, pg = side_by_side(repeats, lambda: fresh(False), lambda: fresh(True))
    ratio = pg / lite
    return line("6 fetch on postgresql", f"{feeds} feeds x 0.5s: {pg:.2f}s vs sqlite {lite:.2f}s = {ratio:.2f}x",
                f"<= {GOAL}x sqlite", ratio <= GOAL)

"""`python -m benchmarks`: every goal of issue 6 as one line with its ratio, goal and PASS/FAIL.

Everything is measured side by side in this run, on this machine: whole processes (start-up
included), wall-clock time, and peak memory from the kernel's accounting of each child. Nothing
leaves the machine: feeds are served from 127.0.0.x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .feedhosts import FeedHosts, loopback_aliases_work
from .postgres import bench_postgres
from .workload import make_project, write_feeds_toml

BIN = Path(sys.executable).parent
# The goals (issue 13 raised them from 5x, 3.0 ms measured and 20x).
BUILD_FLOOR_RATIO = 3  # first build of 1,000 copies of one guide, against benchmarks/floor.py (same bytes: drafts and states)
DISTINCT_MS_PER_GUIDE = 1.5  # first build of 1,000 different guides, start-up included
FETCH_SPEEDUP = 30  # 40 feeds answering after 0.5 s each, against one at a time (40x is the limit)
PIPELINE = str(BIN / "pipeline") if (BIN / "pipeline").exists() else None


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds
    peak_mb: float  # peak resident memory
    output: str


def run(command: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run one process to the end; time it and read its peak memory from wait4."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("SOURCE_DATE_EPOCH", None)  # "now" moves between runs, as it does for editors
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=full_env)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"benchmark step failed ({process.returncode}): {' '.join(command)}\n{text}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text)


def best(runs: int, once: Callable[[], Run]) -> Run:
    """The fastest of `runs` runs: the machine is shared, and noise only ever adds time."""
    return min((once() for _ in range(max(1, runs))), key=lambda r: r.wall)


def pipeline(*args: str) -> list[str]:
    if PIPELINE:
        return [PIPELINE, *args]
    return [sys.executable, "-c", "from pipeline.cli import main; main()", *args]


def line(name: str, measured: str, goal: str, ok: bool) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {name:<22} {measured:<60} goal: {goal}", flush=True)
    return ok


# -- goals 1 and 2: build, and rebuild with nothing changed -------------------------------------

def reset_build(root: Path, pristine_store: Path) -> None:
    shutil.rmtree(root / "output", ignore_errors=True)
    (root / "output").mkdir()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{root / 'pipeline.sqlite3'}{suffix}").unlink(missing_ok=True)
    shutil.copy(pristine_store, root / "pipeline.sqlite3")
    settle()


def settle() -> None:
    """Flush what resetting deleted and wrote: the run measured next should not pay for it (creating
    files while the journal still frees thousands of old ones costs several times as much)."""
    os.sync()


def bench_build(work: Path, guides: int, repeats: int) -> list[bool]:
    root = make_project(work / "build", guides)
    pristine = work / "pristine.sqlite3"
    shutil.copy(root / "pipeline.sqlite3", pristine)

    def first_build() -> Run:
        reset_build(root, pristine)
        return run(pipeline("--root", str(root), "build", "--offline"))

    def floor() -> Run:
        shutil.rmtree(work / "floor", ignore_errors=True)
        settle()
        return run([sys.executable, "-m", "benchmarks.floor", str(root / "output"), str(work / "floor")])

    first = best(repeats, first_build)
    floor_run = best(repeats, floor)
    before = {p.name: p.stat().st_mtime_ns for p in (root / "output").glob("*.md")}
    second = best(repeats, lambda: run(pipeline("--root", str(root), "build", "--offline")))
    after = {p.name: p.stat().st_mtime_ns for p in (root / "output").glob("*.md")}
    rewritten = sum(1 for name, stamp in after.items() if before.get(name) != stamp)
    ratio = first.wall / floor_run.wall
    share = second.wall / first.wall
    results = [
        line("1 build", f"{guides} guides {first.wall:.2f}s vs floor {floor_run.wall:.2f}s = {ratio:.1f}x",
             f"<= {BUILD_FLOOR_RATIO}x floor", ratio <= BUILD_FLOOR_RATIO),
        line("2 unchanged rebuild", f"{second.wall:.2f}s = {share:.0%} of first build; {rewritten} files rewritten",
             "<= 20% of first, 0 rewritten", share <= 0.20 and rewritten == 0),
    ]
    # Goal 1 builds copies of one guide; a site's guides differ, and then nothing can be shared.
    distinct_root = make_project(work / "distinct", guides, distinct=True)
    distinct_pristine = work / "distinct-pristine.sqlite3"
    shutil.copy(distinct_root / "pipeline.sqlite3", distinct_pristine)

    def distinct_build() -> Run:
        reset_build(distinct_root, distinct_pristine)
        return run(pipeline("--root", str(distinct_root), "build", "--offline"))

    distinct = best(repeats, distinct_build)
    per_guide = distinct.wall / guides * 1000
    results.append(line("1 distinct guides", f"{guides} different guides {distinct.wall:.2f}s = {per_guide:.2f} "
                        f"ms/guide ({distinct.wall / floor_run.wall:.1f}x floor)",
                        f"<= {DISTINCT_MS_PER_GUIDE} ms/guide", per_guide <= DISTINCT_MS_PER_GUIDE))
    return results


# -- goal 3: fetch concurrency ------------------------------------------------------------------

def fetch_project(work: Path, name: str, urls: list[str], max_concurrency: int | None = None) -> Path:
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "sources").mkdir(parents=True)
    write_feeds_toml(root, urls)
    if max_concurrency is not None:
        (root / "pyproject.toml").write_text(f"[tool.pipeline]\nmax_concurrency = {max_concurrency}\n")
    return root


def bench_fetch(work: Path, feeds: int, quick: bool) -> list[bool]:
    with FeedHosts(hosts=min(40, feeds), delay=0.5) as hosts:
        urls = hosts.urls(feeds)
        concurrent_root = fetch_project(work, "fetch-concurrent", urls)

        def concurrent_fetch() -> Run:  # a fresh store each time: every feed answers 200
            fetch_project(work, "fetch-concurrent", urls)
            return run(pipeline("--root", str(concurrent_root), "fetch", "--quiet"))

        concurrent = best(1 if quick else 5, concurrent_fetch)
        count_file = work / "parse-calls"
        requests_before = hosts.requests
        refresh = run([sys.executable, "-m", "benchmarks.counted", str(count_file),
                       "--root", str(concurrent_root), "fetch", "--quiet"])
        parses = len(count_file.read_text())
        answered = hosts.requests - requests_before
        if quick:
            serial_wall = feeds * hosts.delay  # the least one-after-another could take
            serial_note = "(estimated)"
        else:
            serial_root = fetch_project(work, "fetch-serial", urls, max_concurrency=1)
            serial_wall = run(pipeline("--root", str(serial_root), "fetch", "--quiet")).wall
            serial_note = ""
        urls_file = work / "urls.txt"
        urls_file.write_text("\n".join(urls))
        floor = best(1 if quick else 5, lambda: run([sys.executable, "-m", "benchmarks.httpx_floor", str(urls_file)]))
        read_floor = best(1 if quick else 5, lambda: run([sys.executable, "-m", "benchmarks.parse_floor", str(urls_file)]))
        reader_db = work / "reader.sqlite"
        reader_db.unlink(missing_ok=True)
        try:
            import reader  # noqa: F401 (only to know it is installed)

            reader_wall: float | None = run([sys.executable, "-m", "benchmarks.reader_run", str(reader_db),
                                             str(urls_file)]).wall
        except ImportError:
            reader_wall = None
    speedup = serial_wall / concurrent.wall
    results = [
        line("3 fetch concurrency", f"{feeds} feeds x 0.5s: {concurrent.wall:.2f}s vs one-by-one "
             f"{serial_wall:.2f}s{serial_note} = {speedup:.1f}x", f">= {FETCH_SPEEDUP}x faster",
             speedup >= FETCH_SPEEDUP),
    ]
    # Not a goal: where the limit lies on this machine (a bare httpx script, nothing parsed or stored).
    print(f"info  3 fetch floor          bare httpx script {floor.wall:.2f}s = {serial_wall / floor.wall:.1f}x "
          f"one-by-one; pipeline {concurrent.wall / floor.wall:.2f}x the floor", flush=True)
    print(f"info  3 fetch+read floor     httpx on threads, feedparser on 2 processes, nothing stored "
          f"{read_floor.wall:.2f}s = {serial_wall / read_floor.wall:.1f}x one-by-one; pipeline "
          f"{concurrent.wall / read_floor.wall:.2f}x this floor", flush=True)
    if reader_wall is None:
        results.append(line("3 fetch vs reader", "reader not installed (pip install '.[bench]')",
                            "<= reader 3.x workers=20", False))
    else:
        results.append(line("3 fetch vs reader", f"pipeline {concurrent.wall:.2f}s vs reader "
                            f"update_feeds(workers=20) {reader_wall:.2f}s", "<= reader", concurrent.wall <= reader_wall))
    results.append(line("3 all-304 refresh", f"{answered} requests, {parses} feedparser calls, {refresh.wall:.2f}s",
                        "0 feedparser calls", parses == 0 and answered == feeds))
    return results


# -- goal 4: start-up ---------------------------------------------------------------------------

def bench_startup(repeats: int) -> list[bool]:
    def median(command: list[str]) -> float:
        return statistics.median(run(command).wall for _ in range(repeats))

    click_time = median([sys.executable, "-c", "import click"])
    help_time = median(pipeline("--help"))
    ratio = help_time / click_time
    return [line("4 start-up", f"pipeline --help {help_time * 1000:.0f}ms vs import click "
                 f"{click_time * 1000:.0f}ms = {ratio:.1f}x", "<= 3x", ratio <= 3)]


# -- goal 5: scale ------------------------------------------------------------------------------

def bench_scale(work: Path, guide_sizes: Sequence[int], feed_sizes: Sequence[int]) -> list[bool]:
    print("\n  scale: build --offline (first build; unchanged rebuild), store of 3,000 items")
    print(f"  {'guides':>7} {'first s':>8} {'ms/guide':>9} {'peak MB':>8} {'rebuild s':>10} {'ms/guide':>9} {'peak MB':>8}")
    build_rows = []
    for size in guide_sizes:
        root = make_project(work / f"scale-{size}", size)
        first = run(pipeline("--root", str(root), "build", "--offline"))
        again = run(pipeline("--root", str(root), "build", "--offline"))
        build_rows.append((size, first, again))
        print(f"  {size:>7} {first.wall:>8.2f} {first.wall / size * 1000:>9.2f} {first.peak_mb:>8.0f} "
              f"{again.wall:>10.2f} {again.wall / size * 1000:>9.2f} {again.peak_mb:>8.0f}", flush=True)
        shutil.rmtree(root)
    print("\n  scale: fetch (feeds answer at once, 20 items each, over 40 loopback hosts)")
    print(f"  {'feeds':>7} {'fetch s':>8} {'ms/feed':>9} {'peak MB':>8}")
    fetch_rows = []
    with FeedHosts(hosts=40, delay=0.0) as hosts:
        for size in feed_sizes:
            root = fetch_project(work, f"scale-fetch-{size}", hosts.urls(size))
            fetched = run(pipeline("--root", str(root), "fetch", "--quiet"))
            fetch_rows.append((size, fetched))
            print(f"  {size:>7} {fetched.wall:>8.2f} {fetched.wall / size * 1000:>9.2f} {fetched.peak_mb:>8.0f}",
                  flush=True)
    print()
    # Linear: the largest size costs per unit at most 2x the middle one (small sizes are start-up).
    # Flat: peak memory of the largest at most 2x the smallest.
    (_, mid_first, _), (big, big_first, _) = build_rows[-2], build_rows[-1]
    mid = build_rows[-2][0]
    build_linear = (big_first.wall / big) <= 2 * (mid_first.wall / mid)
    build_flat = build_rows[-1][1].peak_mb <= 2 * build_rows[0][1].peak_mb
    (fmid, fmid_run), (fbig, fbig_run) = fetch_rows[-2], fetch_rows[-1]
    fetch_linear = (fbig_run.wall / fbig) <= 2 * (fmid_run.wall / fmid)
    fetch_flat = fbig_run.peak_mb <= 2 * fetch_rows[0][1].peak_mb
    return [
        line("5 build scales", f"{mid}->{big} guides: {mid_first.wall / mid * 1000:.2f} -> "
             f"{big_first.wall / big * 1000:.2f} ms/guide; peak {build_rows[0][1].peak_mb:.0f} -> "
             f"{build_rows[-1][1].peak_mb:.0f} MB", "linear (<= 2x per guide), flat memory (<= 2x)",
             build_linear and build_flat),
        line("5 fetch scales", f"{fmid}->{fbig} feeds: {fmid_run.wall / fmid * 1000:.1f} -> "
             f"{fbig_run.wall / fbig * 1000:.1f} ms/feed; peak {fetch_rows[0][1].peak_mb:.0f} -> "
             f"{fbig_run.peak_mb:.0f} MB", "linear (<= 2x per feed), flat memory (<= 2x)",
             fetch_linear and fetch_flat),
    ]


# -- link health (issue 14): checks of listed links, and none when every verdict is fresh --------

_CHECK_LINKS = """
import datetime as dt, json, sys, time
from pipeline.linkcheck import check_links
from pipeline.models import LinkCheck
urls = sys.argv[1].split(",")
now = dt.datetime.now(dt.timezone.utc)
start = time.perf_counter()
report = check_links(urls, {}, now, timeout=10.0, max_concurrency=64, per_host=2)
wall = time.perf_counter() - start
again = check_links(urls, report.checks, now + dt.timedelta(hours=1), timeout=10.0)
ok = sum(1 for check in report.checks.values() if check.verdict == "ok")
print(json.dumps({"wall": wall, "ok": ok, "again": len(again.checks)}))
"""


def bench_links(links: int = 300, hosts: int = 30, latency: float = 0.3) -> list[bool]:
    """The checks run in their own process, as in `pipeline refresh`: the servers' threads here
    would otherwise take turns with the checker for this interpreter's lock."""
    import json

    with FeedHosts(hosts=hosts, delay=latency, items=1) as served:
        urls = served.urls(links)
        child = run([sys.executable, "-c", _CHECK_LINKS, ",".join(urls)])
        result = json.loads(child.output.strip().splitlines()[-1])
        requests = served.requests
    fresh_requests = requests - links
    return [
        line("links checked", f"{links} links on {hosts} hosts ({latency:.1f}s each, 2 per host): "
             f"{result['wall']:.2f}s, {result['ok']} ok", "<= 2 s, every link ok",
             result["wall"] <= 2.0 and result["ok"] == links),
        line("fresh verdicts", f"{fresh_requests} link requests on a refresh an hour later "
             f"({result['again']} checks)", "0 requests", fresh_requests == 0 and result["again"] == 0),
    ]


def compile_package() -> None:
    """Write the package's bytecode once, as installing it does (pip compiles every module it installs).

    An editable install under PYTHONDONTWRITEBYTECODE (set on some machines) never keeps any: every
    measured process would compile the package anew, a cost no installed pipeline pays (nor reader,
    installed with its bytecode, which goal 3 compares with).
    """
    import compileall

    import pipeline

    compileall.compile_dir(str(Path(pipeline.__file__).parent), quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="Small sizes, one run each, no one-by-one fetch: a smoke test, not a measurement.")
    parser.add_argument("--only", choices=["build", "fetch", "startup", "scale", "postgres", "links"],
                        action="append", help="Run only these parts (repeatable).")
    args = parser.parse_args(argv)
    parts = set(args.only or ["build", "fetch", "startup", "scale", "postgres", "links"])
    if parts & {"fetch", "scale", "postgres", "links"}:
        if not loopback_aliases_work():
            print("cannot bind 127.0.0.2: the fetch benchmarks need loopback aliases (Linux has them)")
            return 2
    quick = args.quick
    compile_package()
    results: list[bool] = []
    started = time.perf_counter()
    print(f"benchmarks on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
          f"{os.getloadavg()[0]:.1f}; repeated steps keep their fastest run (noise only adds time)\n")
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as temp:
        work = Path(temp)
        if "startup" in parts:
            results += bench_startup(3 if quick else 9)
        if "build" in parts:
            results += bench_build(work, 20 if quick else 1000, 1 if quick else 3)
        if "fetch" in parts:
            results += bench_fetch(work, 8 if quick else 40, quick)
        if "postgres" in parts:
            results += bench_postgres(work, 20 if quick else 1000, 8 if quick else 40, 1 if quick else 3,
                                      lambda command: run(command).wall, pipeline, line)
        if "links" in parts:
            results += bench_links()
        if "scale" in parts:
            results += bench_scale(work, (2, 5, 10) if quick else (10, 100, 1000, 10000),
                                   (2, 5, 10) if quick else (10, 100, 500))
    print(f"\n{sum(results)}/{len(results)} goals met in {time.perf_counter() - started:.0f}s")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

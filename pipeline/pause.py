"""A test hook: stop a run at a named point until the test lets it go. Off unless set.

With PIPELINE_PAUSE="POINT:COUNT:FIFO" in the environment, the COUNT-th time the run reaches pause
point POINT it writes "paused POINT PID" to the named pipe FIFO (waiting for the test to read it),
then waits until the test opens FIFO for writing (resume) or kills the process. Crash and lock tests
use it to act at an exact moment instead of guessing one with a clock.

Points: "staged.md" (a draft's new text is in its temp file; "staged.pending" for its state, written
under its pending name; "staged.json" for a state written alone), "renamed.md" (a draft replaced;
"renamed.json" its state put in place after it),
"lock-busy" (the project lock is held by another run; this one is about to wait), "forked" (a
build's second process, before it does anything).
"""

from __future__ import annotations

import os

_arrivals: dict[str, int] = {}


def pause_active() -> bool:
    """Whether a test set a pause point: a run then stays in one process, so arrivals count in one
    (but for "forked", the point a build's second process reaches first)."""
    spec = os.environ.get("PIPELINE_PAUSE")
    return bool(spec) and not spec.startswith("forked:")  # type: ignore[union-attr]


def pause_point(name: str) -> None:
    spec = os.environ.get("PIPELINE_PAUSE")
    if not spec or not spec.startswith(f"{name}:"):
        return
    _point, count, fifo = spec.split(":", 2)
    _arrivals[spec] = _arrivals.get(spec, 0) + 1
    if _arrivals[spec] != int(count):
        return
    with open(fifo, "w", encoding="utf-8") as signal:
        signal.write(f"paused {name} {os.getpid()}\n")
    with open(fifo, encoding="utf-8") as resume:
        resume.read()

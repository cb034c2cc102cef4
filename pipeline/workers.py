"""Work shared with a forked child process, so a large build uses two cores instead of one.

The child is a copy of this process made with fork (where the system has it): it does its share and
sends its result back pickled through a pipe, then ends without running any of this process's exit
handlers (its copies of open connections and buffers are this process's, not its own to close or
flush). An exception in the child comes back and is raised here.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TypeVar, cast

from .errors import PipelineError
from .pause import pause_point

Result = TypeVar("Result")
Here = TypeVar("Here")


def can_fork() -> bool:
    """Whether sharing work with a forked process can pay: Linux with two cores or more. (macOS has
    fork, but forking once its system frameworks are loaded is unsafe, which is why Python itself
    stopped forking there by default.)"""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and (os.cpu_count() or 1) > 1


def with_child(in_child: Callable[[], Result], here: Callable[[], Here]) -> tuple[Result, Here]:
    """Run `in_child` in a forked child while `here` runs in this process; both results.

    When `here` fails, the child still finishes (what it writes is whole) before the failure is
    raised; when the child fails, its exception is raised after `here` finished.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        threading.Thread(target=exit_when_orphaned, args=(os.getppid(),), name="pipeline-parent-watch",
                         daemon=True).start()
        pause_point("forked")
        _run_child(in_child, write_end)
    os.close(write_end)
    try:
        mine = here()
    except BaseException:
        try:
            _collect(read_end, pid)  # wait for the child to finish its writes
        except BaseException:  # noqa: BLE001 - the failure to report is this process's
            pass
        raise
    return cast(Result, _collect(read_end, pid)), mine


def exit_when_orphaned(parent: int) -> None:
    """Run on a thread of a forked process: end it when its parent is gone.

    A parent killed outright (SIGKILL, a cron timeout) cannot stop its children, and an orphan would
    go on with the project lock it inherited with the fork (or, with a PostgreSQL store, after the
    lock went with its parent's connection, beside the next run). Ending at any moment is safe: what
    a child writes is put in place file by file, as a killed run leaves it.
    """
    import time

    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


def _run_child(work: Callable[[], object], write_end: int) -> None:
    status = 1
    try:
        try:
            payload = pickle.dumps(("ok", work()))
            status = 0
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            payload = _pickled_failure(exc)
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
    finally:
        os._exit(status)


def _pickled_failure(exc: BaseException) -> bytes:
    """The exception itself when it survives pickling (the pipeline's own errors do), else its text
    and traceback: a bug in the child is reported as one."""
    try:
        payload = pickle.dumps(("error", exc))
        pickle.loads(payload)
        return payload
    except Exception:  # noqa: BLE001
        text = "".join(traceback.format_exception(exc))
        return pickle.dumps(("error", RuntimeError(f"in the build's second process:\n{text}")))


def _collect(read_end: int, pid: int) -> object:
    with os.fdopen(read_end, "rb") as inp:
        payload = inp.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
        raise PipelineError(f"the build's second process ended without its drafts (exit status "
                            f"{os.waitstatus_to_exitcode(status)}); run the command again")
    kind, value = pickle.loads(payload)  # noqa: S301 - our own child's bytes
    if kind == "error":
        raise value
    return value

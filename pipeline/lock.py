"""One pipeline run at a time per project. The lock follows the store: a file lock (fcntl) beside a
SQLite store, a session advisory lock in a PostgreSQL store shared by several hosts. Either is
released on exit or crash (the kernel, or the server when the session ends)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import Settings
from .errors import FileError, LockHeld
from .pause import pause_point

POLL_SECONDS = 0.1  # how often a waiting run tries again


@contextmanager
def run_lock(settings: Settings, wait_seconds: float = 10.0) -> Iterator[None]:
    """Hold the project's run lock for the block: the store's, wherever the store is."""
    if settings.store:
        from .store_postgres import advisory_lock

        with advisory_lock(settings.store, wait_seconds):
            yield
    else:
        with project_lock(settings.lock_path, wait_seconds):
            yield


@contextmanager
def project_lock(path: Path, wait_seconds: float = 10.0) -> Iterator[None]:
    """Hold the lock file for the block; wait up to `wait_seconds`, then raise LockHeld.

    The kernel drops the lock when the process dies, so a killed run never leaves it stuck.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # e.g. a folder in its place, or a read-only project folder
        raise FileError(path, f"cannot open the lock file ({exc.strerror or exc}); it holds no data, so remove "
                              "whatever is in its place and check the project folder is writable") from exc
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pause_point("lock-busy")
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                    raise LockHeld(f"another pipeline run holds {path} (pid {holder}); try again later") from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

"""The embedded store: one SQLite file in the project folder, the default (nothing to install or start).

The schema version lives in SQLite's user_version. sqlite3 errors become StoreError.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import StoreError
from .store_sql import Row, SQLStore


class SQLiteStore(SQLStore):
    """One open connection to a SQLite file (or ":memory:"); use as a context manager."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        self.location = str(path)
        try:
            # isolation_level=None: we open transactions ourselves, so each write is one unit.
            self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA busy_timeout=30000")
            version = self._version()
            try:
                self._refuse_newer(version)  # before anything, WAL mode included, touches the file
            except StoreError:
                self.db.close()
                raise
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._upgrade(version)
        except sqlite3.Error as exc:
            if isinstance(self.path, Path) and not self.path.parent.is_dir():
                raise StoreError(f"{path}: its folder does not exist; check --root") from exc
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(f"{path}: in use by another process for too long; try again") from exc
            raise StoreError(f"{path}: cannot open the item store ({exc}); if it is damaged, move it aside "
                             "to start afresh") from exc

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self._schema_lock():  # the same BEGIN IMMEDIATE ... COMMIT, with our error
                yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self.location}: write failed ({exc})") from exc

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes SQLite's write lock: a second process waits (busy_timeout), then
        # re-reads the version inside its own transaction.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return self.db.execute(sql, tuple(params)).rowcount

    def _executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self.db.executemany(sql, rows)

    def _returning(self, sql: str, rows: Sequence[Sequence[object]]) -> list[Row]:
        found: list[Row] = []
        for params in rows:
            found.extend(self.db.execute(sql, tuple(params)).fetchall())
        return found

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        try:
            return self.db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.location}: read failed ({exc})") from exc

    def _version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _set_version(self, version: int) -> None:
        self.db.execute(f"PRAGMA user_version = {int(version)}")

    def _tables(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}

"""The shared store: a PostgreSQL database a team's machines all use (`store = "postgresql://..."`).

Imported only when the store URL names PostgreSQL, so the default install never needs psycopg. The
schema version lives in a one-row table, pipeline_schema; upgrades run the same steps as SQLite's
in one transaction under a transaction-level advisory lock. Every failure is one StoreError line
naming the URL without its password.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import StoreError
from .store_sql import Row, SQLStore

CONNECT_TIMEOUT = 10  # seconds: a server that does not answer is reported, not waited on forever


def without_password(url: str) -> str:
    """The URL as messages show it: user, host and database, never the password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def driver(location: str) -> ModuleType:
    """psycopg, or one line saying how to install it."""
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(f"{location}: a PostgreSQL store needs the psycopg driver; install it with "
                         "pip install -e '.[postgres]' (or unset the store to use pipeline.sqlite3)") from exc
    return psycopg


def connect(url: str, location: str) -> Any:
    """An autocommit connection whose rows are dicts, or a StoreError saying what to fix."""
    psycopg = driver(location)
    from psycopg.rows import dict_row

    name = f"pipeline {socket.gethostname()} pid {os.getpid()}"[:63]  # shows in a lock-held message
    try:
        return psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT,
                               application_name=name)
    except psycopg.Error as exc:
        raise StoreError(connect_failure(location, url, exc)) from exc


def connect_failure(location: str, url: str, exc: Exception) -> str:
    """Why a connection failed, in one line with the fix."""
    reason = " ".join(str(exc).split())
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or parts.username or "the database"
    if "does not exist" in reason and "database" in reason:
        return (f"{location}: the database {database!r} does not exist on the server; create it "
                f"(createdb {database}, or CREATE DATABASE {database}) or fix the URL")
    if "password" in reason or "authentication" in reason:
        return (f"{location}: the server refused the login ({_last_clause(reason)}); check the user and password "
                "(in the URL, PGPASSWORD or ~/.pgpass)")
    return (f"{location}: cannot reach the PostgreSQL server ({_last_clause(reason)}); check it is running "
            "and the host and port in the URL")


def _last_clause(reason: str) -> str:
    # libpq prefixes its message with the address it tried; the end says what went wrong.
    clause = reason.rsplit(": ", 1)[-1].strip().rstrip(".")
    return clause[:160] or "no reason given"


def project_key(database: str, schema: str) -> int:
    """The advisory lock key of a project: its database and schema, as a signed 64-bit number."""
    digest = hashlib.sha256(f"pipeline run lock\0{database}\0{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


SCHEMA_LOCK_KEY = project_key("pipeline schema upgrade", "")  # not the run lock: a run opens the store under it


class PostgresStore(SQLStore):
    """One connection to a PostgreSQL database; use as a context manager."""

    def __init__(self, url: str) -> None:
        self.location = without_password(url)
        self._psycopg = driver(self.location)
        self.conn = connect(url, self.location)
        self._sql: dict[str, str] = {}
        try:
            # As SQLite's synchronous=NORMAL: a commit does not wait for the disk, so a power cut may
            # lose the last moments of writes (the next run fetches them again) but never tears one.
            self.conn.execute("SET synchronous_commit = off")
            version = self._version()
            self._refuse_newer(version)
            self._upgrade(version)
        except StoreError:
            self.conn.close()
            raise
        except self._psycopg.Error as exc:
            self.conn.close()
            raise self._failure(exc, "cannot open the store") from exc

    def close(self) -> None:
        self.conn.close()

    def _failure(self, exc: Exception, doing: str) -> StoreError:
        reason = " ".join(str(exc).split())[:200]
        if isinstance(exc, self._psycopg.OperationalError) or self.conn.closed:
            return StoreError(f"{self.location}: lost the connection to the PostgreSQL server ({reason}); "
                              "check the server is running, then run again")
        return StoreError(f"{self.location}: {doing} ({reason})")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self.conn.transaction():
                yield
        except self._psycopg.Error as exc:
            raise self._failure(exc, "write failed") from exc

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        with self.conn.transaction():
            # Held to the end of this transaction: a second process opening an old store waits here,
            # then re-reads the version and finds nothing left to do.
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            yield

    def _pg(self, sql: str) -> str:
        """SQL written for both backends (`?` placeholders) in psycopg's form (`%s`)."""
        translated = self._sql.get(sql)
        if translated is None:
            translated = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        return translated

    def _execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return int(self.conn.execute(self._pg(sql), tuple(params)).rowcount)

    def _write_one(self, sql: str, params: Sequence[object] = ()) -> None:
        # Autocommit: one statement is its own transaction, one round trip instead of three.
        try:
            self.conn.execute(self._pg(sql), tuple(params))
        except self._psycopg.Error as exc:
            raise self._failure(exc, "write failed") from exc

    def _executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(self._pg(sql), rows)

    def _returning(self, sql: str, rows: Sequence[Sequence[object]]) -> list[Row]:
        found: list[Row] = []
        with self.conn.cursor() as cursor:
            cursor.executemany(self._pg(sql), rows, returning=True)
            while True:
                found.extend(cursor.fetchall())
                if not cursor.nextset():
                    break
        return found

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        try:
            return list(self.conn.execute(self._pg(sql), tuple(params)).fetchall())
        except self._psycopg.Error as exc:
            raise self._failure(exc, "read failed") from exc

    def _version(self) -> int:
        if "pipeline_schema" not in self._tables():
            return 0
        rows = self._query("SELECT max(version) AS version FROM pipeline_schema")
        return int(rows[0]["version"] or 0)

    def _set_version(self, version: int) -> None:
        self._execute("CREATE TABLE IF NOT EXISTS pipeline_schema (version INTEGER NOT NULL)")
        self._execute("DELETE FROM pipeline_schema")
        self._execute("INSERT INTO pipeline_schema (version) VALUES (?)", (version,))

    def _tables(self) -> set[str]:
        rows = self._query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
        return {row["table_name"] for row in rows}

    def _columns(self, table: str) -> set[str]:
        rows = self._query("SELECT column_name FROM information_schema.columns "
                           "WHERE table_schema = current_schema() AND table_name = ?", (table,))
        return {row["column_name"] for row in rows}


@contextmanager
def advisory_lock(url: str, wait_seconds: float) -> Iterator[None]:
    """Hold the project's run lock in the database for the block, on a connection of its own.

    A session lock: the server drops it when the session ends, so a killed run, or a host that
    vanished, never leaves it stuck (once the server notices the connection is gone).
    """
    import time

    from .errors import LockHeld
    from .lock import POLL_SECONDS
    from .pause import pause_point

    location = without_password(url)
    conn = connect(url, location)
    try:
        try:
            names = conn.execute("SELECT current_database() AS db, current_schema() AS schema").fetchone()
            key = project_key(names["db"], names["schema"] or "")
            deadline = time.monotonic() + wait_seconds
            while not conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,)).fetchone()["got"]:
                pause_point("lock-busy")
                if time.monotonic() >= deadline:
                    raise LockHeld(f"another pipeline run holds the run lock in {location} ({_holder(conn, key)}); "
                                   "try again later")
                time.sleep(POLL_SECONDS)
        except driver(location).Error as exc:
            raise StoreError(connect_failure(location, url, exc)) from exc
        yield  # released with the session below; an explicit unlock could only fail the same way
    finally:
        conn.close()


def _holder(conn: Any, key: int) -> str:
    """Who holds the lock, as its session named itself: 'pipeline <host> pid <n>'."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(
        """SELECT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s
             AND l.objsubid = 1""",
        (unsigned >> 32, unsigned & 0xFFFFFFFF),
    ).fetchone()
    return row["name"] if row and row["name"] else "another session"

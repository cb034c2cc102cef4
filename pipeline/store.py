"""The SQLite store: feed state, items, what was last generated per draft, model cache.

Every SQL statement of the project lives here. sqlite3 errors become StoreError.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .errors import StoreError
from .models import FeedState, Item

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    last_attempt TEXT,
    last_success TEXT,
    last_status TEXT,
    last_error TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    retry_after TEXT,
    moved_to TEXT
);
CREATE TABLE IF NOT EXISTS items (
    feed_url TEXT NOT NULL,
    guid TEXT NOT NULL,
    headline TEXT NOT NULL,
    source TEXT NOT NULL,
    date TEXT,
    url TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    summary TEXT,
    PRIMARY KEY (feed_url, guid)
);
CREATE INDEX IF NOT EXISTS items_by_date ON items (date);
CREATE TABLE IF NOT EXISTS generated (
    slug TEXT NOT NULL,
    part TEXT NOT NULL,      -- a managed region name, or '*' for the whole generated text
    content TEXT NOT NULL,
    PRIMARY KEY (slug, part)
);
CREATE TABLE IF NOT EXISTS fingerprints (
    slug TEXT PRIMARY KEY,
    digest TEXT NOT NULL     -- hash of a draft's inputs and bytes when the pipeline last wrote it
);
CREATE TABLE IF NOT EXISTS model_cache (
    key TEXT PRIMARY KEY,    -- hash of model and prompt
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created TEXT NOT NULL
);
"""


# The store's layout, kept in SQLite's user_version. Upgrades are additive: tables come from SCHEMA's
# IF NOT EXISTS, columns from ADDED_COLUMNS (nullable or defaulted, so old rows stay valid). A store
# from a newer pipeline is refused, not guessed at.
SCHEMA_VERSION = 2
ADDED_COLUMNS = (("feeds", "moved_to", "TEXT"), ("items", "summary", "TEXT"))  # (table, column, definition), oldest first


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


class Store:
    """One open connection to the project's SQLite file; use as a context manager."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        try:
            # isolation_level=None: we open transactions ourselves, so each write is one unit.
            self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            self.db.execute("PRAGMA busy_timeout=30000")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:  # checked before anything, WAL mode included, touches the file
                self.db.close()
                raise StoreError(f"{path}: written by a newer pipeline (store version {version}, this one knows "
                                 f"{SCHEMA_VERSION}); upgrade pipeline, or move the file aside to start afresh")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            if version < SCHEMA_VERSION:
                self._upgrade()
        except sqlite3.Error as exc:
            if isinstance(self.path, Path) and not self.path.parent.is_dir():
                raise StoreError(f"{path}: its folder does not exist; check --root") from exc
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(f"{path}: in use by another process for too long; try again") from exc
            raise StoreError(f"{path}: cannot open the item store ({exc}); if it is damaged, move it aside "
                             "to start afresh") from exc

    def _upgrade(self) -> None:
        """Add the tables and columns this store lacks, as one transaction: two processes opening an
        old store at once take turns, and the second finds nothing left to do."""
        if self._up_to_date():
            return  # nothing to write: a store the user may only read still opens
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if not self._up_to_date():  # another process may have upgraded it meanwhile
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                for table, column, definition in ADDED_COLUMNS:
                    if column not in self._columns(table):
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}

    def _up_to_date(self) -> bool:
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return (set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)) <= tables
                and all(column in self._columns(table) for table, column, _ in ADDED_COLUMNS))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: write failed ({exc})") from exc

    def _query(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        try:
            cursor = self.db.execute(sql, tuple(params))
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: read failed ({exc})") from exc

    def _read(self, convert: Callable[[sqlite3.Row], T], rows: list[sqlite3.Row]) -> list[T]:
        """Rows into records; a value no pipeline run writes (a hand-edited file) is a StoreError."""
        try:
            return [convert(row) for row in rows]
        except (ValueError, TypeError, OverflowError) as exc:
            raise StoreError(f"{self.path}: holds a value the pipeline cannot read ({exc}); it was changed "
                             "outside the pipeline: restore it, or delete it to start afresh") from exc

    # -- feeds -------------------------------------------------------------------------------

    def feed_state(self, url: str) -> FeedState:
        rows = self._query(
            """SELECT f.*, (SELECT count(*) FROM items i WHERE i.feed_url = f.url) AS items_stored
               FROM feeds f WHERE url = ?""",
            (url,),
        )
        if not rows:
            return FeedState(url=url)
        return self._read(_feed_state, rows)[0]

    def feed_states(self) -> dict[str, FeedState]:
        rows = self._query(
            """SELECT f.*, (SELECT count(*) FROM items i WHERE i.feed_url = f.url) AS items_stored
               FROM feeds f"""
        )
        return {state.url: state for state in self._read(_feed_state, rows)}

    def save_feed_state(self, state: FeedState) -> None:
        with self.transaction() as db:
            db.execute(
                """INSERT INTO feeds (url, etag, last_modified, last_attempt, last_success, last_status,
                                      last_error, consecutive_failures, retry_after, moved_to)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (url) DO UPDATE SET
                     etag = excluded.etag, last_modified = excluded.last_modified,
                     last_attempt = excluded.last_attempt, last_success = excluded.last_success,
                     last_status = excluded.last_status, last_error = excluded.last_error,
                     consecutive_failures = excluded.consecutive_failures,
                     retry_after = excluded.retry_after, moved_to = excluded.moved_to""",
                (
                    state.url,
                    state.etag,
                    state.last_modified,
                    _iso(state.last_attempt),
                    _iso(state.last_success),
                    state.last_status,
                    state.last_error,
                    state.consecutive_failures,
                    _iso(state.retry_after),
                    state.moved_to,
                ),
            )

    def rename_feed(self, old_url: str, new_url: str) -> int:
        """Carry state and items over when a feed moved permanently; returns the items carried."""
        with self.transaction() as db:
            db.execute("DELETE FROM feeds WHERE url = ?", (new_url,))
            db.execute("UPDATE feeds SET url = ?, moved_to = NULL WHERE url = ?", (new_url, old_url))
            moved = db.execute("UPDATE OR IGNORE items SET feed_url = ? WHERE feed_url = ?", (new_url, old_url)).rowcount
            # Items the new URL already had stay as they are; their old copies are duplicates.
            db.execute("DELETE FROM items WHERE feed_url = ?", (old_url,))
        return moved

    # -- items -------------------------------------------------------------------------------

    def save_items(self, items: Iterable[Item], seen_at: dt.datetime) -> int:
        """Insert new items and refresh known ones; first_seen never moves. Returns how many are new."""
        new = 0
        with self.transaction() as db:
            for item in items:
                cursor = db.execute(
                    """INSERT INTO items (feed_url, guid, headline, source, date, url, first_seen, summary)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (feed_url, guid) DO UPDATE SET
                         headline = excluded.headline, source = excluded.source,
                         date = excluded.date, url = excluded.url, summary = excluded.summary
                       RETURNING first_seen = ? AS inserted""",
                    (
                        item.feed_url,
                        item.guid,
                        item.headline,
                        item.source,
                        item.date.isoformat() if item.date else None,
                        item.url,
                        seen_at.isoformat(),
                        item.summary,
                        seen_at.isoformat(),
                    ),
                )
                row = cursor.fetchone()
                new += int(bool(row and row[0]))
        return new

    def items(self, since: dt.date | None = None, feeds: Iterable[str] | None = None) -> list[Item]:
        """Stored items, newest first; undated items last."""
        sql = "SELECT * FROM items"
        clauses: list[str] = []
        params: list[object] = []
        if since is not None:
            clauses.append("date >= ?")
            params.append(since.isoformat())
        if feeds is not None:
            urls = list(feeds)
            clauses.append(f"feed_url IN ({','.join('?' * len(urls))})")
            params.extend(urls)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY date IS NULL, date DESC, feed_url, guid"
        return self._read(_item, self._query(sql, params))

    # -- what was last generated, per draft ----------------------------------------------------

    def generated(self, slug: str) -> dict[str, str]:
        rows = self._query("SELECT part, content FROM generated WHERE slug = ?", (slug,))
        return {row["part"]: row["content"] for row in rows}

    def save_generated(self, slug: str, parts: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany(
                """INSERT INTO generated (slug, part, content) VALUES (?, ?, ?)
                   ON CONFLICT (slug, part) DO UPDATE SET content = excluded.content""",
                [(slug, part, content) for part, content in parts.items()],
            )

    # -- input fingerprints: drafts whose inputs have not changed are skipped ---------------------

    def fingerprints(self) -> dict[str, str]:
        return {row["slug"]: row["digest"] for row in self._query("SELECT slug, digest FROM fingerprints")}

    def save_fingerprint(self, slug: str, digest: str | None) -> None:
        """Remember a draft's fingerprint; None forgets it, so the draft is looked at next time."""
        with self.transaction() as db:
            if digest is None:
                db.execute("DELETE FROM fingerprints WHERE slug = ?", (slug,))
            else:
                db.execute("INSERT OR REPLACE INTO fingerprints (slug, digest) VALUES (?, ?)", (slug, digest))

    # -- model response cache ----------------------------------------------------------------

    def cached_response(self, key: str) -> str | None:
        rows = self._query("SELECT response FROM model_cache WHERE key = ?", (key,))
        return rows[0]["response"] if rows else None

    def cache_response(self, key: str, model: str, response: str, created: dt.datetime) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO model_cache (key, model, response, created) VALUES (?, ?, ?, ?)",
                (key, model, response, created.isoformat()),
            )


def _feed_state(row: sqlite3.Row) -> FeedState:
    return FeedState(
        url=row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_attempt=_parse_dt(row["last_attempt"]),
        last_success=_parse_dt(row["last_success"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        consecutive_failures=row["consecutive_failures"],
        retry_after=_parse_dt(row["retry_after"]),
        items_stored=row["items_stored"],
        moved_to=row["moved_to"],
    )


def _item(row: sqlite3.Row) -> Item:
    return Item(
        feed_url=row["feed_url"],
        guid=row["guid"],
        headline=row["headline"],
        source=row["source"],
        date=dt.date.fromisoformat(row["date"]) if row["date"] else None,
        url=row["url"],
        first_seen=_parse_dt(row["first_seen"]),
        summary=row["summary"] or "",
    )

"""What both stores do in SQL both SQLite and PostgreSQL accept; a backend supplies the connection.

The methods here are the Store protocol (store.py). SQL is written once, with `?` placeholders
(a backend rewrites them for its driver) and portable statements: ON CONFLICT upserts, no
`INSERT OR REPLACE`. Text is ordered in Python, never by the database: PostgreSQL sorts by the
server's locale, SQLite by code point, and two checkouts must list items in the same order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from .errors import StoreError
from . import migrations
from .migrations import Step, tables_created
from .models import Condition, FeedState, Item, LinkCheck

T = TypeVar("T")
Row = Mapping[str, Any]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


class SQLStore:
    """The shared half of a store. A backend implements the hooks at the bottom of this class."""

    location: str  # how messages name the store: a file path, or a URL without its password

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema versions -----------------------------------------------------------------------

    def _refuse_newer(self, version: int) -> None:
        known = migrations.latest()
        if version > known:
            raise StoreError(f"{self.location}: written by a newer pipeline (store version {version}, this one "
                             f"knows {known}); upgrade pipeline, or move the store aside to start afresh")

    def _steps_to_run(self, version: int) -> tuple[Step, ...]:
        steps = migrations.pending(version)
        # A store made before versions existed (version 0) may already hold step 1 and the later
        # steps that only add columns and tables.
        while version == 0 and steps and self._holds(steps[0]):
            steps = steps[1:]
        return steps

    def _holds(self, step: Step) -> bool:
        tables = self._tables()
        return (set(tables_created((step,))) <= tables
                and all(column in self._columns(table) for table, column, _ in step.add_columns))

    def _upgrade(self, version: int) -> None:
        """Run the steps this store lacks, as one transaction under the backend's schema lock: two
        processes opening an old store take turns, and the second finds nothing left to do. An
        up-to-date store is not written at all (a store the user may only read still opens)."""
        if not self._steps_to_run(version):
            return
        with self._schema_lock():
            version = self._version()
            self._refuse_newer(version)
            steps = self._steps_to_run(version)
            for step in steps:
                for statement in step.sql:
                    self._execute(statement)
                for table, column, definition in step.add_columns:
                    if column not in self._columns(table):
                        self._execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            if steps:
                self._set_version(migrations.latest())

    def _read(self, convert: Callable[[Row], T], rows: Sequence[Row]) -> list[T]:
        """Rows into records; a value no pipeline run writes (a hand-edited store) is a StoreError."""
        try:
            return [convert(row) for row in rows]
        except (ValueError, TypeError, OverflowError) as exc:
            raise StoreError(f"{self.location}: holds a value the pipeline cannot read ({exc}); it was changed "
                             "outside the pipeline: restore it, or delete it to start afresh") from exc

    # -- feeds -------------------------------------------------------------------------------

    _FEED_STATE = """SELECT f.*, (SELECT count(*) FROM items i WHERE i.feed_url = f.url) AS items_stored
                     FROM feeds f"""

    def feed_state(self, url: str) -> FeedState:
        rows = self._query(self._FEED_STATE + " WHERE url = ?", (url,))
        if not rows:
            return FeedState(url=url)
        return self._read(_feed_state, rows)[0]

    def feed_states(self) -> dict[str, FeedState]:
        states = self._read(_feed_state, self._query(self._FEED_STATE))
        return {state.url: state for state in sorted(states, key=lambda s: s.url)}

    def save_feed_state(self, state: FeedState) -> None:
        self._write_one(
            """INSERT INTO feeds (url, etag, last_modified, last_attempt, last_success, last_status,
                                  last_error, consecutive_failures, retry_after, moved_to)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (url) DO UPDATE SET
                 etag = excluded.etag, last_modified = excluded.last_modified,
                 last_attempt = excluded.last_attempt, last_success = excluded.last_success,
                 last_status = excluded.last_status, last_error = excluded.last_error,
                 consecutive_failures = excluded.consecutive_failures,
                 retry_after = excluded.retry_after, moved_to = excluded.moved_to""",
            (state.url, state.etag, state.last_modified, _iso(state.last_attempt), _iso(state.last_success),
             state.last_status, _text(state.last_error), state.consecutive_failures, _iso(state.retry_after),
             state.moved_to),
        )

    def rename_feed(self, old_url: str, new_url: str) -> int:
        """Carry state and items over when a feed moved permanently; returns the items carried."""
        with self.transaction():
            self._execute("DELETE FROM feeds WHERE url = ?", (new_url,))
            self._execute("UPDATE feeds SET url = ?, moved_to = NULL WHERE url = ?", (new_url, old_url))
            # Items the new URL already has stay as they are; their old copies are duplicates.
            moved = self._execute(
                """UPDATE items SET feed_url = ? WHERE feed_url = ?
                   AND guid NOT IN (SELECT guid FROM items WHERE feed_url = ?)""",
                (new_url, old_url, new_url),
            )
            self._execute("DELETE FROM items WHERE feed_url = ?", (old_url,))
        return moved

    # -- items -------------------------------------------------------------------------------

    def save_items(self, items: Iterable[Item], seen_at: dt.datetime) -> int:
        """Insert new items and refresh known ones; first_seen never moves. Returns how many are new."""
        seen = seen_at.isoformat()
        # Feed text is untrusted: a NUL character, which PostgreSQL cannot store in text, is dropped on
        # every backend, so both keep the same item.
        rows = [(_text(item.feed_url), _text(item.guid), _text(item.headline), _text(item.source),
                 item.date.isoformat() if item.date else None, _text(item.url), seen, _text(item.summary),
                 _text(item.source_url), seen)
                for item in items]
        if not rows:
            return 0
        with self.transaction():
            inserted = self._returning(
                """INSERT INTO items (feed_url, guid, headline, source, date, url, first_seen, summary, source_url)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (feed_url, guid) DO UPDATE SET
                     headline = excluded.headline, source = excluded.source,
                     date = excluded.date, url = excluded.url, summary = excluded.summary,
                     source_url = excluded.source_url
                   RETURNING (first_seen = ?) AS inserted""",
                rows,
            )
        return sum(1 for row in inserted if row["inserted"])

    # Each item as one line of text, joined by the database: a unit separator between fields, a record
    # separator for a missing one (the digest must tell "" from none).
    _ITEM_LINE = " || '\x1f' || ".join(f"coalesce(CAST({name} AS TEXT), '\x1e')" for name in (
        "feed_url", "guid", "headline", "source", "date", "url", "summary", "source_url"))

    def items_digest(self) -> str:
        """One hash of every stored item as a build reads it: equal digests, equal items (a build
        that finds nothing new since its last clean run skips every draft at once: manifest.py)."""
        rows = self._query(f"SELECT {self._ITEM_LINE} AS line FROM items ORDER BY feed_url, guid")
        return hashlib.sha256("\n".join([row["line"] for row in rows]).encode()).hexdigest()

    def items(self, since: dt.date | None = None, feeds: Iterable[str] | None = None) -> list[Item]:
        """Stored items, newest first; undated items last; ties by feed URL, then guid."""
        sql = "SELECT * FROM items"
        clauses: list[str] = []
        params: list[object] = []
        if since is not None:
            clauses.append("date >= ?")
            params.append(since.isoformat())
        if feeds is not None:
            urls = list(feeds)
            if not urls:
                return []
            clauses.append(f"feed_url IN ({','.join('?' * len(urls))})")
            params.extend(urls)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        found = self._read(_item, self._query(sql, params))
        found.sort(key=lambda item: (item.feed_url, item.guid))
        found.sort(key=lambda item: item.date or dt.date.min, reverse=True)  # stable: ties keep the order above
        found.sort(key=lambda item: item.date is None)
        return found

    # -- link health ---------------------------------------------------------------------------

    def link_checks(self) -> dict[str, LinkCheck]:
        """The last verdict on every link ever checked."""
        rows = self._query("SELECT * FROM link_checks")
        return {check.url: check for check in sorted(self._read(_link_check, rows), key=lambda c: c.url)}

    def save_link_checks(self, checks: Iterable[LinkCheck]) -> None:
        """Record new verdicts: each replaces the link's last one and joins its history."""
        rows = list(checks)
        if not rows:
            return
        with self.transaction():
            self._executemany(
                """INSERT INTO link_checks (url, verdict, checked_at, status, detail, moved_to, strikes)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (url) DO UPDATE SET
                     verdict = excluded.verdict, checked_at = excluded.checked_at, status = excluded.status,
                     detail = excluded.detail, moved_to = excluded.moved_to, strikes = excluded.strikes""",
                [(c.url, c.verdict, c.checked_at.isoformat(), c.status, c.detail, c.moved_to, c.strikes)
                 for c in rows],
            )
            self._executemany(
                "INSERT INTO link_history (url, checked_at, verdict, status, detail) VALUES (?, ?, ?, ?, ?)",
                [(c.url, c.checked_at.isoformat(), c.verdict, c.status, c.detail) for c in rows],
            )

    def link_history(self, url: str) -> list[tuple[str, str, int | None]]:
        """(checked_at, verdict, status) of every check of one link, oldest first."""
        rows = self._query("SELECT checked_at, verdict, status FROM link_history WHERE url = ?", (url,))
        return sorted((str(r["checked_at"]), str(r["verdict"]), r["status"]) for r in rows)

    # -- what was last generated, per draft ----------------------------------------------------

    def generated(self, slug: str) -> dict[str, str]:
        rows = self._query("SELECT part, content FROM generated WHERE slug = ?", (slug,))
        return {row["part"]: row["content"] for row in sorted(rows, key=lambda row: str(row["part"]))}

    def save_generated(self, slug: str, parts: dict[str, str]) -> None:
        with self.transaction():
            self._executemany(
                """INSERT INTO generated (slug, part, content) VALUES (?, ?, ?)
                   ON CONFLICT (slug, part) DO UPDATE SET content = excluded.content""",
                [(slug, part, content) for part, content in parts.items()],
            )

    # -- input fingerprints: drafts whose inputs have not changed are skipped ---------------------

    def fingerprints(self) -> dict[str, str]:
        rows = self._query("SELECT slug, digest FROM fingerprints")
        return {row["slug"]: row["digest"] for row in sorted(rows, key=lambda row: str(row["slug"]))}

    def save_fingerprints(self, digests: Mapping[str, str | None]) -> None:
        """Remember drafts' fingerprints in one transaction; None forgets one, so that draft is looked
        at next time."""
        forget = [(slug,) for slug, digest in digests.items() if digest is None]
        keep = [(slug, digest) for slug, digest in digests.items() if digest is not None]
        if not forget and not keep:
            return
        with self.transaction():
            if forget:
                self._executemany("DELETE FROM fingerprints WHERE slug = ?", forget)
            if keep:
                self._executemany("""INSERT INTO fingerprints (slug, digest) VALUES (?, ?)
                                     ON CONFLICT (slug) DO UPDATE SET digest = excluded.digest""", keep)

    # -- model response cache ----------------------------------------------------------------

    def cached_response(self, key: str) -> str | None:
        rows = self._query("SELECT response FROM model_cache WHERE key = ?", (key,))
        return str(rows[0]["response"]) if rows else None

    def cache_response(self, key: str, model: str, response: str, created: dt.datetime) -> None:
        self._write_one(
            """INSERT INTO model_cache (key, model, response, created) VALUES (?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET model = excluded.model, response = excluded.response,
                 created = excluded.created""",
            (key, model, response, created.isoformat()),
        )

    # -- the condition ledger: what needs a person, reported once ----------------------------------

    def conditions(self) -> list[Condition]:
        rows = self._query("SELECT subject, kind, message, signature, since FROM conditions")
        found = [Condition(row["subject"], row["kind"], row["message"], row["signature"], row["since"])
                 for row in rows]
        return sorted(found, key=lambda condition: (condition.since, condition.subject, condition.kind))

    def save_conditions(self, opened: Iterable[Condition], closed: Iterable[tuple[str, str]]) -> None:
        """Record conditions found (new or changed) and forget those that are over, in one transaction."""
        with self.transaction():
            self._executemany("DELETE FROM conditions WHERE subject = ? AND kind = ?", list(closed))
            self._executemany(
                """INSERT INTO conditions (subject, kind, message, signature, since) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (subject, kind) DO UPDATE SET message = excluded.message,
                     signature = excluded.signature, since = excluded.since""",
                [(c.subject, c.kind, c.message, c.signature, c.since) for c in opened],
            )

    # -- whole tables, for `pipeline store copy` ------------------------------------------------

    def tables(self) -> list[str]:
        """The tables this pipeline's steps create that the store holds, in creation order."""
        present = self._tables()
        return [name for name in tables_created(migrations.STEPS) if name in present]

    def dump(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """A table's column names and every row."""
        self._known_table(table)
        rows = self._query(f"SELECT * FROM {table}")
        columns = sorted(self._columns(table)) if not rows else list(rows[0].keys())
        return columns, [tuple(row[c] for c in columns) for row in rows]

    def row_count(self, table: str) -> int:
        self._known_table(table)
        return int(self._query(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def replace_all(self, tables: Mapping[str, tuple[list[str], list[tuple[Any, ...]]]]) -> None:
        """Empty every named table and fill it with the given rows, as one transaction."""
        with self.transaction():
            for table in reversed(list(tables)):
                self._known_table(table)
                self._execute(f"DELETE FROM {table}")
            for table, (columns, rows) in tables.items():
                if rows:
                    self._executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                                      f"VALUES ({', '.join('?' * len(columns))})", rows)

    def _known_table(self, table: str) -> None:
        if table not in tables_created(migrations.STEPS):  # names go into SQL text: only ours
            raise StoreError(f"{self.location}: no table {table!r} in this pipeline's store")

    # -- what a backend provides ---------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """One write unit: everything inside commits together or not at all."""
        raise NotImplementedError

    def _schema_lock(self) -> AbstractContextManager[None]:
        """A transaction no other process can upgrade the store alongside."""
        raise NotImplementedError

    def _execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement inside a transaction; returns the rows it changed."""
        raise NotImplementedError

    def _write_one(self, sql: str, params: Sequence[object] = ()) -> None:
        """One statement that is a write unit by itself (a backend may spare the BEGIN and COMMIT)."""
        with self.transaction():
            self._execute(sql, params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        raise NotImplementedError

    def _returning(self, sql: str, rows: Sequence[Sequence[object]]) -> list[Row]:
        """Run a statement with RETURNING once per parameter row; the rows it returned."""
        raise NotImplementedError

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        raise NotImplementedError

    def _version(self) -> int:
        raise NotImplementedError

    def _set_version(self, version: int) -> None:
        raise NotImplementedError

    def _tables(self) -> set[str]:
        raise NotImplementedError

    def _columns(self, table: str) -> set[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _text(value: str | None) -> str | None:
    return value.replace("\x00", "") if value and "\x00" in value else value


def _feed_state(row: Row) -> FeedState:
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


def _item(row: Row) -> Item:
    return Item(
        feed_url=row["feed_url"],
        guid=row["guid"],
        headline=row["headline"],
        source=row["source"],
        date=dt.date.fromisoformat(row["date"]) if row["date"] else None,
        url=row["url"],
        first_seen=_parse_dt(row["first_seen"]),
        summary=row["summary"] or "",
        source_url=row["source_url"] or "",
    )


def _link_check(row: Row) -> LinkCheck:
    return LinkCheck(
        url=row["url"],
        verdict=row["verdict"],
        checked_at=dt.datetime.fromisoformat(row["checked_at"]),
        status=row["status"],
        detail=row["detail"] or "",
        moved_to=row["moved_to"],
        strikes=row["strikes"] or 0,
    )

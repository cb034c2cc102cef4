"""The store: feed state, items, what was last generated per draft, model cache.

`Store` is the interface every stage codes against; `open_store` picks the implementation from a
location: a path means the embedded SQLite file (the default), a `postgresql://` URL a shared
server for a team. Every SQL statement lives in the implementations (store_sql.py and its
backends); the schema's versions are the steps in migrations.py, which every backend runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from .migrations import SCHEMA_VERSION
from .models import Condition, FeedState, Item

__all__ = ["SCHEMA_VERSION", "Store", "is_server_url", "open_store"]

Table = tuple[list[str], list[tuple[Any, ...]]]  # column names, rows


class Store(Protocol):
    """What the pipeline keeps between runs. Open one with `open_store`; use it as a context manager."""

    location: str  # how messages name the store: a file path, or a URL without its password

    def __enter__(self) -> Store: ...
    def __exit__(self, *exc: object) -> None: ...
    def close(self) -> None: ...
    def transaction(self) -> AbstractContextManager[None]: ...

    def feed_state(self, url: str) -> FeedState: ...
    def feed_states(self) -> dict[str, FeedState]: ...
    def save_feed_state(self, state: FeedState) -> None: ...
    def rename_feed(self, old_url: str, new_url: str) -> int: ...

    def save_items(self, items: Iterable[Item], seen_at: dt.datetime) -> int: ...
    def items(self, since: dt.date | None = None, feeds: Iterable[str] | None = None) -> list[Item]: ...

    def generated(self, slug: str) -> dict[str, str]: ...
    def save_generated(self, slug: str, parts: dict[str, str]) -> None: ...

    def fingerprints(self) -> dict[str, str]: ...
    def save_fingerprint(self, slug: str, digest: str | None) -> None: ...

    def conditions(self) -> list[Condition]: ...
    def save_conditions(self, opened: Iterable[Condition], closed: Iterable[tuple[str, str]]) -> None: ...

    def cached_response(self, key: str) -> str | None: ...
    def cache_response(self, key: str, model: str, response: str, created: dt.datetime) -> None: ...

    # whole tables, for `pipeline store copy`
    def tables(self) -> list[str]: ...
    def dump(self, table: str) -> Table: ...
    def row_count(self, table: str) -> int: ...
    def replace_all(self, tables: Mapping[str, Table]) -> None: ...


def is_server_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path) -> Store:
    """Open (creating or upgrading as needed) the store at a file path or a postgresql:// URL."""
    if is_server_url(location):
        from .store_postgres import PostgresStore  # only here: SQLite users never import psycopg

        return PostgresStore(str(location))
    from .store_sqlite import SQLiteStore

    return SQLiteStore(location)

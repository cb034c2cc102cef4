"""`pipeline store copy`: every table of one store into another (SQLite to PostgreSQL and back)."""

from __future__ import annotations

from pathlib import Path

from .errors import StoreError
from .store import is_server_url, open_store


def copy_store(source: str, target: str, *, force: bool = False) -> dict[str, int]:
    """Copy every row of `source` into `target`, as one transaction on the target; returns rows per table.

    A target that holds anything is refused unless `force`, which replaces what it holds.
    """
    if not is_server_url(source) and not Path(source).is_file():
        raise StoreError(f"{source}: no such store file; name a pipeline.sqlite3 or a postgresql:// URL")
    with open_store(source) as origin, open_store(target) as destination:
        if not force:
            held = {table: count for table in destination.tables() if (count := destination.row_count(table))}
            if held:
                listing = ", ".join(f"{count} in {table}" for table, count in held.items())
                raise StoreError(f"{destination.location}: already holds rows ({listing}); pass --force to "
                                 "replace them with the copy")
        tables = {table: origin.dump(table) for table in origin.tables()}
        destination.replace_all(tables)
    return {table: len(rows) for table, (_columns, rows) in tables.items()}

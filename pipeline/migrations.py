"""The store's layout as ordered steps; every backend runs the same steps to reach the same version.

To add a table or a column: append one Step with the next version number (never edit a step that
has shipped: stores out there already ran it), then add the methods that use it to SQLStore in
store_sql.py. Write the SQL both SQLite and PostgreSQL accept: TEXT, INTEGER, BIGINT, REAL,
`CREATE TABLE IF NOT EXISTS`, `CREATE INDEX IF NOT EXISTS`. Columns go in `add_columns`, which a
backend adds only where missing (SQLite has no ADD COLUMN IF NOT EXISTS); make them nullable or
defaulted so the rows already stored stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One schema version: statements run in order, then columns added where missing."""

    version: int
    why: str
    sql: tuple[str, ...] = ()
    add_columns: tuple[tuple[str, str, str], ...] = ()  # (table, column, definition)


STEPS: tuple[Step, ...] = (
    Step(
        1,
        "the tables of the first versioned store (stores made before versions existed gain what they lack)",
        sql=(
            """CREATE TABLE IF NOT EXISTS feeds (
                url TEXT PRIMARY KEY,
                etag TEXT,
                last_modified TEXT,
                last_attempt TEXT,
                last_success TEXT,
                last_status TEXT,
                last_error TEXT,
                consecutive_failures INTEGER NOT NULL DEFAULT 0,
                retry_after TEXT
            )""",
            """CREATE TABLE IF NOT EXISTS items (
                feed_url TEXT NOT NULL,
                guid TEXT NOT NULL,
                headline TEXT NOT NULL,
                source TEXT NOT NULL,
                date TEXT,
                url TEXT NOT NULL,
                first_seen TEXT NOT NULL,
                PRIMARY KEY (feed_url, guid)
            )""",
            "CREATE INDEX IF NOT EXISTS items_by_date ON items (date)",
            """CREATE TABLE IF NOT EXISTS generated (
                slug TEXT NOT NULL,
                part TEXT NOT NULL,      -- a managed region name, or '*' for the whole generated text
                content TEXT NOT NULL,
                PRIMARY KEY (slug, part)
            )""",
            """CREATE TABLE IF NOT EXISTS fingerprints (
                slug TEXT PRIMARY KEY,
                digest TEXT NOT NULL     -- hash of a draft's inputs and bytes when the pipeline last wrote it
            )""",
            """CREATE TABLE IF NOT EXISTS model_cache (
                key TEXT PRIMARY KEY,    -- hash of model and prompt
                model TEXT NOT NULL,
                response TEXT NOT NULL,
                created TEXT NOT NULL
            )""",
        ),
        add_columns=(("feeds", "moved_to", "TEXT"),),
    ),
    Step(2, "items keep the feed's summary as plain text: evidence of relevance",
         add_columns=(("items", "summary", "TEXT"),)),
    Step(3, "items keep the publisher's site an aggregator names, to list the publisher's own copy",
         add_columns=(("items", "source_url", "TEXT"),)),
    Step(
        4,
        "the condition ledger: what needs a person, since when, so cron reports each condition once",
        sql=(
            """CREATE TABLE IF NOT EXISTS conditions (
                subject TEXT NOT NULL,   -- a draft's path or a feed's url
                kind TEXT NOT NULL,      -- what is wrong: 'region-edited:context', 'failing', ...
                message TEXT NOT NULL,   -- the line a person was shown
                signature TEXT NOT NULL, -- the message with counters and times masked
                since TEXT NOT NULL,     -- when a run first found it
                PRIMARY KEY (subject, kind)
            )""",
        ),
    ),
    Step(5, "link health: the last verdict on each listed link, and every verdict as history",
         sql=(
             """CREATE TABLE IF NOT EXISTS link_checks (
                 url TEXT PRIMARY KEY,
                 verdict TEXT NOT NULL,
                 checked_at TEXT NOT NULL,
                 status INTEGER,
                 detail TEXT NOT NULL DEFAULT '',
                 moved_to TEXT,
                 strikes INTEGER NOT NULL DEFAULT 0
             )""",
             """CREATE TABLE IF NOT EXISTS link_history (
                 url TEXT NOT NULL,
                 checked_at TEXT NOT NULL,
                 verdict TEXT NOT NULL,
                 status INTEGER,
                 detail TEXT NOT NULL DEFAULT ''
             )""",
             "CREATE INDEX IF NOT EXISTS link_history_by_url ON link_history (url, checked_at)",
         )),
)

SCHEMA_VERSION = STEPS[-1].version


def latest() -> int:
    """The version a store is at once every step ran."""
    return STEPS[-1].version


def tables_created(steps: tuple[Step, ...]) -> list[str]:
    """Every table the steps create, in creation order: what `pipeline store copy` carries over."""
    names: list[str] = []
    for step in steps:
        for statement in step.sql:
            words = statement.split()
            if words[:5] == ["CREATE", "TABLE", "IF", "NOT", "EXISTS"]:
                name = words[5].split("(")[0]
                names += [] if name in names else [name]
            elif words[:4] == ["DROP", "TABLE", "IF", "EXISTS"] and words[4] in names:
                names.remove(words[4])
    return names


def pending(version: int) -> tuple[Step, ...]:
    """The steps a store at `version` still has to run, oldest first."""
    return tuple(step for step in STEPS if step.version > version)


def check_steps() -> None:
    """Versions run 1, 2, 3... with no gap or repeat (a test calls this)."""
    versions = [step.version for step in STEPS]
    if versions != list(range(1, len(STEPS) + 1)):
        raise AssertionError(f"migration versions must be 1..{len(STEPS)} in order, not {versions}")

"""Project settings and sources/feeds.toml, read once into typed records."""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError
from .models import SITES, Feed
from .urls import is_web_url

FEED_KEYS = {"url", "publisher", "tags"}
TOOL_KEYS = {"model", "max_concurrency", "per_host_concurrency", "timeout", "max_body_bytes", "store", "check_links",
             "site"}
SERVER_SCHEMES = ("postgresql://", "postgres://")

# Each draft's merge state lives in output/STATE_DIR/ (state.py), beside the drafts.
STATE_DIR = ".pipeline"


def guide_paths(guides_dir: Path) -> list[Path]:
    """The guides of a project: templates/guides/*.md but hidden (".") and parked ("_") files, by name."""
    # Sorted by name (as Path order would, within one folder), without comparing thousands of Paths.
    return [guides_dir / name for name in sorted(
        entry.name for entry in os.scandir(guides_dir)
        if entry.name.endswith(".md") and not entry.name.startswith((".", "_")) and entry.is_file())]


@dataclass(frozen=True)
class Settings:
    """Where everything lives and how the run behaves; passed down, never global."""

    root: Path
    model: str | None = None  # LangChain "provider:model"; None means no AI assistance
    max_concurrency: int = 64  # feeds fetched at once (cheap: one socket each; hosts are limited below)
    per_host_concurrency: int = 2  # politeness: requests at once to one host
    timeout: float = 10.0  # seconds for connect and for each read
    max_body_bytes: int = 10 * 1024 * 1024  # compressed and decompressed body cap per feed
    check_links: bool = True  # refresh checks the links drafts list (off: check_links = false)
    store: str | None = None  # a postgresql:// URL shared by a team; None means pipeline.sqlite3 here
    site: str | None = None  # "hugo" or "jekyll": drafts carry that generator's publishing key alone

    @property
    def sources_path(self) -> Path:
        return self.root / "sources" / "feeds.toml"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def guides_dir(self) -> Path:
        return self.root / "templates" / "guides"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def store_path(self) -> Path:
        return self.root / "pipeline.sqlite3"

    @property
    def store_location(self) -> str | Path:
        """What `open_store` opens: the configured server URL, else the SQLite file."""
        return self.store if self.store else self.store_path

    @property
    def lock_path(self) -> Path:
        return self.root / ".pipeline.lock"


def _declares_pipeline(pyproject: Path) -> bool:
    """True when pyproject.toml has a [tool.pipeline] table (a broken file still counts if it says so)."""
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        return isinstance(tomllib.loads(text).get("tool", {}).get("pipeline"), dict)
    except tomllib.TOMLDecodeError:
        # load_settings names the syntax error; finding the project must not hide it.
        return re.search(r"^\s*\[\s*tool\s*\.\s*pipeline\s*\]", text, re.MULTILINE) is not None


def is_project(folder: Path) -> bool:
    """A project folder holds sources/feeds.toml, or a pyproject.toml with [tool.pipeline]."""
    return (folder / "sources" / "feeds.toml").is_file() or _declares_pipeline(folder / "pyproject.toml")


def find_root(start: Path | None = None) -> Path | None:
    """Like git: the nearest project folder at or above `start` (the current folder); None outside any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_project(folder):
            return folder
    return None


def not_a_project(folder: Path) -> ConfigError:
    return ConfigError(folder, "not a pipeline project (no sources/feeds.toml, no [tool.pipeline] in "
                               "pyproject.toml); nothing was created; pass --root with the project folder")


def load_settings(root: Path | None = None) -> Settings:
    """Read [tool.pipeline] from pyproject.toml, then let PIPELINE_* variables override it.

    `root` is the project folder as given (`--root`); without it the project is found by walking up
    from the current folder, and outside any project this stops in one line naming --root.
    """
    if root is None:
        found = find_root()
        if found is None:
            raise ConfigError(Path.cwd(), "not inside a pipeline project (no sources/feeds.toml, or pyproject.toml "
                                          "with [tool.pipeline], here or in any folder above); cd into one or "
                                          "pass --root PROJECT")
        root = found
    root = root.resolve()
    table: dict[str, object] = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(pyproject, f"not valid TOML ({exc}); fix the syntax") from exc
        raw = data.get("tool", {}).get("pipeline", {})
        if not isinstance(raw, dict):
            raise ConfigError(pyproject, "[tool.pipeline] must be a table")
        unknown = sorted(set(raw) - TOOL_KEYS)
        if unknown:
            raise ConfigError(
                pyproject,
                f"unknown key {unknown[0]!r} in [tool.pipeline]; allowed: {', '.join(sorted(TOOL_KEYS))}",
            )
        table = raw
    model = os.environ.get("PIPELINE_MODEL", table.get("model")) or None
    store = _store_setting(table, pyproject)
    try:
        return Settings(
            root=root,
            model=str(model) if model else None,
            store=store,
            max_concurrency=int(str(table.get("max_concurrency", 64))),
            per_host_concurrency=int(str(table.get("per_host_concurrency", 2))),
            timeout=float(str(table.get("timeout", 10.0))),
            max_body_bytes=int(str(table.get("max_body_bytes", 10 * 1024 * 1024))),
            check_links=_flag(table.get("check_links", True)),
            site=_site(table.get("site")),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(pyproject, f"[tool.pipeline] has a value of the wrong type ({exc})") from exc


def _site(value: object) -> str | None:
    if value is None or value in SITES:
        return value
    raise ValueError(f"site must be {' or '.join(repr(site) for site in SITES)} (or left out for both keys), "
                     f"not {value!r}")


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"check_links must be true or false, not {value!r}")
    return value


def _store_setting(table: dict[str, object], pyproject: Path) -> str | None:
    """PIPELINE_STORE, else `store` in [tool.pipeline]: a PostgreSQL URL, or None for the SQLite file."""
    store = os.environ.get("PIPELINE_STORE", table.get("store")) or None
    if store is not None and not (isinstance(store, str) and store.startswith(SERVER_SCHEMES)):
        where = "PIPELINE_STORE" if os.environ.get("PIPELINE_STORE") else pyproject
        scheme = str(store).split(":", 1)[0][:20]  # never the rest: it may hold a password
        raise ConfigError(where, f"store must be a postgresql://user@host/database URL, not a {scheme!r} one; "
                                 "unset it to use pipeline.sqlite3 in the project folder")
    return store


def now_utc() -> dt.datetime:
    """The current time, or SOURCE_DATE_EPOCH when set, for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc)
        except (ValueError, OverflowError, OSError) as exc:  # OverflowError/OSError: beyond year 9999
            raise ConfigError("SOURCE_DATE_EPOCH", f"must be whole seconds since 1970, not {epoch!r}") from exc
    return dt.datetime.now(dt.timezone.utc)


def _feed_at_error(text: str, exc: tomllib.TOMLDecodeError) -> str:
    """' in feed #N' for the [[feeds]] table holding a syntax error, so the author knows where to look."""
    found = re.search(r"at line (\d+)", str(exc))
    if not found:
        return ""
    before = text.splitlines()[: int(found.group(1))]
    number = sum(1 for line in before if line.strip().replace(" ", "") == "[[feeds]]")
    return f" in feed #{number}" if number else ""


def load_feeds(path: Path) -> list[Feed]:
    """Parse sources/feeds.toml; any mistake stops with one line naming the file and the fix."""
    tables = _feed_tables(path)
    feeds: list[Feed] = []
    seen: dict[str, int] = {}
    for number, table in enumerate(tables, start=1):
        feed = _feed(path, number, table)
        if feed.url in seen:
            raise ConfigError(path, f"feed #{number} ({feed.url}): same url as feed #{seen[feed.url]}; "
                                    "remove one of the two entries")
        seen[feed.url] = number
        feeds.append(feed)
    return feeds


def _feed_tables(path: Path) -> list[object]:
    """The [[feeds]] tables of the file, not yet checked one by one."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: editors on Windows may save a BOM
    except FileNotFoundError as exc:
        raise ConfigError(path, "not found; create it with [[feeds]] tables (see README)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot be read ({exc})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"not valid TOML{_feed_at_error(text, exc)}: {exc}; fix the syntax there") from exc
    unknown_top = sorted(set(data) - {"feeds"})
    if unknown_top:
        raise ConfigError(path, f"unknown top-level key {unknown_top[0]!r}; only [[feeds]] tables belong here")
    tables = data.get("feeds", [])
    if not isinstance(tables, list):
        raise ConfigError(path, "'feeds' must be written as [[feeds]] tables")
    return tables


def _feed_where(number: int, table: dict) -> str:
    """The feed named the way its author will find it in the file: by url, else by publisher."""
    url = table.get("url")
    if isinstance(url, str) and url.strip():
        return f"feed #{number} ({url.strip()})"
    if isinstance(table.get("publisher"), str):
        return f"feed #{number} (publisher {table['publisher']!r})"
    return f"feed #{number}"


def _feed(path: Path, number: int, table: object) -> Feed:
    if not isinstance(table, dict):
        raise ConfigError(path, f"feed #{number} must be a [[feeds]] table")
    where = _feed_where(number, table)
    unknown = sorted(set(table) - FEED_KEYS)
    if unknown:
        raise ConfigError(path, f"{where}: unknown key {unknown[0]!r}; allowed keys are url, publisher, tags")
    url = _feed_url(path, where, table.get("url"))
    publisher = table.get("publisher")
    if publisher is not None and (not isinstance(publisher, str) or not publisher.strip()):
        raise ConfigError(path, f"{where}: 'publisher' must be a non-empty string")
    tags = table.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(path, f"{where}: 'tags' must be a list of strings, e.g. tags = [\"visa\"]")
    return Feed(url=url, publisher=publisher.strip() if publisher else None,
                tags=tuple(t.strip().lower() for t in tags if t.strip()))


def _feed_url(path: Path, where: str, url: object) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(path, f"{where}: missing 'url'; add url = \"https://...\"")
    url = url.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ConfigError(path, f"{where}: url contains a control character (\\n, \\t, \\u0000...); remove it")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ConfigError(path, f"{where}: url is not a valid URL ({exc}); fix it") from exc
    if not is_web_url(url):
        raise ConfigError(path, f"{where}: url must start with http:// or https://")
    return url

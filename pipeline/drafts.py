"""Draft files on disk: compose and split them, find managed regions, write atomically.

A draft is YAML front matter between '---' lines, then Markdown. Managed regions sit between
`<!-- pipeline:begin NAME -->` and `<!-- pipeline:end NAME -->`; everything else belongs to reviewers
once the draft exists.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml

from .errors import DraftError
from .frontmatter import FrontMatterMissing, FrontMatterUnclosed, replace_key, split_front_matter
from .pause import pause_point
from .yamlout import fast_dump

TEMP_PREFIX = ".pipeline-"
TEMP_SUFFIX = ".tmp"
_REGION = re.compile(
    r"^<!-- pipeline:begin (?P<name>[a-z][a-z0-9-]*) -->\n(?P<content>.*?)\n?^<!-- pipeline:end (?P=name) -->$",
    re.MULTILINE | re.DOTALL,
)
_MARKER = re.compile(r"<!-- pipeline:(begin|end) ([a-z][a-z0-9-]*) -->")


class _Dumper(yaml.SafeDumper):
    """Block-style YAML that Hugo and Jekyll read; lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump_yaml(data: dict[str, object]) -> str:
    # Generated front matter is written by yamlout's fast path, byte for byte what the library writes;
    # shapes it does not know take the library's whole path.
    fast = fast_dump(data, _scalar)
    return fast if fast is not None else _dump(data)


def _dump(data: dict[str, object]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=4096)


@lru_cache(maxsize=8192)
def _scalar(text: str) -> str:
    """One string as the library writes a mapping value (quoted, escaped); raises for several lines."""
    line = _dump({"k": text})
    if not line.startswith("k: ") or line.count("\n") != 1 or any(mark in line for mark in "\x85\u2028\u2029"):
        raise ValueError(f"not a one-line scalar: {text!r}")
    return line[3:-1]


def compose_draft_text(front_matter: dict[str, object], body: str) -> str:
    return f"---\n{dump_yaml(front_matter)}---\n\n{body}"


@dataclass(frozen=True)
class DraftFile:
    """A draft as read back from disk."""

    path: Path
    text: str
    front_matter_text: str  # the YAML between the '---' lines, byte for byte
    front_matter: dict[str, object]
    body: str  # everything after the closing '---' line and one blank line
    gap: str = "\n"  # what separated front matter and body: kept, so a rewrite moves no other byte
    newline: str = "\n"  # "\r\n" when a reviewer saved the file with Windows line endings: kept on write

    @property
    def regions(self) -> dict[str, str]:
        return find_regions(self.body)

    def with_changes(self, front_matter_text: str, body: str) -> str:
        """The file's text with new front matter and body, laid out as the reviewer left it."""
        return f"---\n{front_matter_text}---\n{self.gap}{body}"


class _UniqueKeys:
    """Refuses a repeated key: YAML would keep the last silently, so `pipeline status` could set one
    `status:` line while Hugo, Jekyll and `check` read another (Hugo refuses the file)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[object, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in first:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key_node.value!r} appears twice (first on line "
                        f"{first[key_node.value] + 2}); keep one", key_node.start_mark)
                first[key_node.value] = key_node.start_mark.line
        return super().construct_mapping(node, deep)  # type: ignore[misc]


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """The pure-Python parser: its error messages are the ones a person reads."""


_FastUniqueKeyLoader: type | None = None
if getattr(yaml, "CSafeLoader", None) is not None:
    class _FastUniqueKeyLoader(_UniqueKeys, yaml.CSafeLoader):  # type: ignore[no-redef]
        """libyaml's parser, many times faster: every draft written is read back, thousands a build."""


def _load_front_matter(fm_text: str) -> object:
    if _FastUniqueKeyLoader is not None:
        try:
            return yaml.load(fm_text, Loader=_FastUniqueKeyLoader)  # noqa: S506 - a SafeLoader
        except yaml.YAMLError:
            pass  # the pure-Python parser says what is wrong, in the words our messages use
    return yaml.load(fm_text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader


def split_draft(path: Path, text: str) -> DraftFile:
    """Split a draft into front matter and body; a broken front matter is a DraftError with its line."""
    if text.startswith("\ufeff"):
        raise DraftError(path, "starts with a byte order mark (BOM); save it as UTF-8 without BOM", 1)
    try:
        parts = split_front_matter(text)
    except FrontMatterMissing:
        raise DraftError(path, "does not start with '---' front matter", 1) from None
    except FrontMatterUnclosed:
        raise DraftError(path, "front matter is not closed by a '---' line", 1) from None
    fm_text = parts.yaml
    try:
        data = _load_front_matter(fm_text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DraftError(path, f"front matter is not valid YAML ({getattr(exc, 'problem', exc)})",
                         mark.line + 2 if mark else 2) from exc
    if not isinstance(data, dict):
        raise DraftError(path, "front matter must be a YAML mapping", 2)
    body = parts.body
    gap = ""
    if body.startswith("\n"):
        body, gap = body[1:], "\n"
    return DraftFile(path=path, text=text, front_matter_text=fm_text, front_matter=data, body=body, gap=gap)


def read_draft(path: Path) -> DraftFile | None:
    """The draft on disk, or None when there is none yet."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DraftError(path, f"cannot be read ({exc})") from exc
    # Text is worked on with "\n" (as read_text gives it); a CRLF file is written back as CRLF, so a
    # refresh never turns every line of a Windows reviewer's file into a change.
    draft = split_draft(path, raw.replace("\r\n", "\n").replace("\r", "\n"))
    return replace(draft, newline="\r\n") if "\r\n" in raw else draft


def repeated_regions(body: str) -> list[tuple[int, str]]:
    """(line, name) of each begin marker whose region already appeared: a copied region.

    Regions are found by name, so with two copies one would be filled from the other and a
    reviewer's words in either copy would be lost.
    """
    seen: set[str] = set()
    repeats: list[tuple[int, str]] = []
    for match in _MARKER.finditer(body):
        kind, name = match.groups()
        if kind != "begin":
            continue
        if name in seen:
            repeats.append((body.count("\n", 0, match.start()) + 1, name))
        seen.add(name)
    return repeats


def find_regions(body: str) -> dict[str, str]:
    return {m.group("name"): m.group("content") for m in _REGION.finditer(body)}


def marker_problems(body: str) -> list[tuple[int, str]]:
    """(line, message) for markers that are unbalanced, nested, repeated or out of order."""
    problems: list[tuple[int, str]] = []
    open_name: str | None = None
    seen: set[str] = set()
    for match in _MARKER.finditer(body):
        line = body.count("\n", 0, match.start()) + 1
        kind, name = match.groups()
        if kind == "begin":
            if open_name:
                problems.append((line, f"region {name!r} begins inside region {open_name!r}"))
            elif name in seen:
                problems.append((line, f"region {name!r} appears twice"))
            open_name = name
            seen.add(name)
        else:
            if open_name != name:
                problems.append((line, f"end of region {name!r} without its begin marker"))
            open_name = None
    if open_name:
        problems.append((body.count("\n") + 1, f"region {open_name!r} is never closed"))
    return problems


def replace_region(body: str, name: str, content: str) -> str:
    """The body with one region's content replaced; the markers and all else stay byte for byte."""
    def swap(match: re.Match[str]) -> str:
        if match.group("name") != name:
            return match.group(0)
        # An empty region is written as the two markers alone, which is how it reads back as empty.
        inner = f"{content}\n" if content else ""
        return f"<!-- pipeline:begin {name} -->\n{inner}<!-- pipeline:end {name} -->"

    return _REGION.sub(swap, body)


def blank_regions(body: str) -> str:
    """The body with every region emptied: what reviewers own, for merging."""
    return _REGION.sub(lambda m: f"<!-- pipeline:begin {m.group('name')} -->\n<!-- pipeline:end {m.group('name')} -->", body)


def fill_regions(skeleton: str, regions: dict[str, str]) -> str:
    for name, content in regions.items():
        skeleton = replace_region(skeleton, name, content)
    return skeleton


def set_front_matter_key(fm_text: str, key: str, value: object) -> str:
    """Replace one top-level key's YAML block (or append it), leaving every other byte alone."""
    return replace_key(fm_text, key, dump_yaml({key: value}))


def write_atomic(path: Path, text: str, newline: str = "\n") -> None:
    """Write through a temp file in the same folder and rename: readers see old or new, never half.

    Inside `batched_writes()` the draft is staged instead, and replaced when the batch commits.
    """
    batch = _batch.get()
    if batch is not None:
        batch.stage(path, text, newline)
        return
    temp = _write_temp(path, text, newline, sync=True)
    try:
        pause_point(f"staged{path.suffix}")
        os.replace(temp, path)
    except BaseException as exc:
        _unlink(temp)
        if isinstance(exc, OSError):
            raise _unwritable(path, exc) from exc
        raise
    pause_point(f"renamed{path.suffix}")


def unstage(path: Path) -> None:
    """Forget a write staged for `path` in the current batch, if any (the file on disk is untouched)."""
    batch = _batch.get()
    if batch is not None:
        batch.unstage(path)


def after_write(path: Path, action: Callable[[], None]) -> None:
    """Run `action` once the draft at `path` is in place: now, or when its batch commits (never, if
    the batch leaves it alone).

    What the store records about a draft must never run ahead of the file: a record of text that a
    kill kept from reaching the disk would make the old draft look edited by hand.
    """
    batch = _batch.get()
    if batch is None or not batch.then(path, action):
        action()


@dataclass
class _Staged:
    temp: Path
    before: tuple[int, int, int] | None  # the file in place when staged (inode, size, mtime), None if none
    actions: list[Callable[[], None]] = field(default_factory=list)


class DraftBatch:
    """Drafts written together, durable with one barrier instead of one per file.

    Each draft is written to a temp file beside it; `commit()` makes them all durable with one sync
    of the filesystem, renames each into place, then syncs the folders (so the renames last too).
    Killed at any moment, every draft is the old file or the new one: temp files never replace a
    draft before the sync, and the next run sweeps any left behind. A draft whose file changed on
    disk after it was staged (a reviewer saved it meanwhile) is not replaced: their save wins.
    """

    def __init__(self, limit: int = 4000) -> None:
        # Staged files (a draft and its state are two) that make the batch commit on its own, so
        # memory stays flat: 2,000 drafts to a barrier.
        self.limit = limit
        self._staged: dict[Path, _Staged] = {}
        self._left: dict[Path, tuple[Literal["kept", "error"], str]] = {}

    def __len__(self) -> int:
        return len(self._staged)

    def stage(self, path: Path, text: str, newline: str = "\n") -> None:
        if len(self._staged) >= self.limit:
            self._put_in_place()
        temp = _write_temp(path, text, newline, sync=False)
        earlier = self._staged.pop(path, None)
        if earlier is not None:  # written twice in one batch: the later text wins
            _unlink(earlier.temp)
        self._staged[path] = _Staged(temp, _identity(path), earlier.actions if earlier else [])
        pause_point(f"staged{path.suffix}")

    def unstage(self, path: Path) -> None:
        entry = self._staged.pop(path, None)
        if entry is not None:
            _unlink(entry.temp)

    def then(self, path: Path, action: Callable[[], None]) -> bool:
        """Hold `action` until the draft staged at `path` is in place; False when none is staged."""
        entry = self._staged.get(path)
        if entry is not None:
            entry.actions.append(action)
        return entry is not None

    def commit(self) -> dict[Path, tuple[Literal["kept", "error"], str]]:
        """Put every staged draft in place; {path: (outcome, why)} for those that were not: "kept" when
        a reviewer saved it meanwhile, "error" when it could not be written
        (since the batch began: a batch past its limit has committed on its own before)."""
        self._put_in_place()
        left, self._left = self._left, {}
        return left

    def _put_in_place(self) -> None:
        staged, self._staged = self._staged, {}
        if not staged:
            return
        left = self._left
        _make_durable(list(staged.values()))
        for path, entry in staged.items():
            if _identity(path) != entry.before:
                _unlink(entry.temp)
                left[path] = ("kept", "changed on disk while the pipeline worked on it; left alone until the next run")
                continue
            try:
                os.replace(entry.temp, path)
            except OSError as exc:
                _unlink(entry.temp)
                left[path] = ("error", _unwritable_reason(path, exc))
                continue
            pause_point(f"renamed{path.suffix}")
        _sync_folders({path.parent for path in staged if path not in left})
        for path, entry in staged.items():
            if path not in left:
                for action in entry.actions:
                    action()

    def discard(self) -> None:
        for entry in self._staged.values():
            _unlink(entry.temp)
        self._staged = {}


_batch: ContextVar[DraftBatch | None] = ContextVar("draft_batch", default=None)


@contextmanager
def batched_writes() -> Iterator[DraftBatch]:
    """Within the block, write_atomic() stages drafts in a DraftBatch; commit it before the block ends
    (what is still staged at the end, e.g. after an error, is discarded: the old drafts stay)."""
    batch = DraftBatch()
    token = _batch.set(batch)
    try:
        yield batch
    finally:
        _batch.reset(token)
        batch.discard()


def _write_temp(path: Path, text: str, newline: str, *, sync: bool) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            handle.write(text)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException as exc:
        _unlink(temp)
        if isinstance(exc, OSError):
            raise _unwritable(path, exc) from exc
        raise
    return Path(temp)


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _make_durable(entries: list[_Staged]) -> None:
    """One sync of each filesystem holding the temp files (Linux syncfs); elsewhere, one fsync each."""
    by_device = {folder.stat().st_dev: folder for folder in {entry.temp.parent for entry in entries}}
    if all(_syncfs(folder) for folder in by_device.values()):
        return
    for entry in entries:
        with open(entry.temp, "rb") as handle:
            os.fsync(handle.fileno())


def _syncfs(folder: Path) -> bool:
    try:
        import ctypes

        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # not Linux (or not glibc): no syncfs
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)


def _sync_folders(folders: set[Path]) -> None:
    for folder in folders:
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass  # a filesystem that cannot sync a folder: the renames are as durable as it allows
        finally:
            os.close(fd)


def _unlink(temp: Path | str) -> None:
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass


def _unwritable(path: Path, exc: OSError) -> DraftError:
    return DraftError(path, _unwritable_reason(path, exc))


def _unwritable_reason(path: Path, exc: OSError) -> str:
    return f"cannot be written ({exc.strerror or exc}); check that {path.parent} is writable and the disk has space"


def remove_stale_temp_files(folder: Path) -> int:
    """Temp files a killed run left behind; they never replaced a draft, so they can go."""
    removed = 0
    for temp in folder.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        try:
            temp.unlink()
            removed += 1
        except OSError:
            pass  # a read-only folder: the write that follows reports it
    return removed

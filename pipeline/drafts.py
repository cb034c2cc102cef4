"""Draft files on disk: compose and split them, find managed regions, write atomically.

A draft is YAML front matter between '---' lines, then Markdown. Managed regions sit between
`<!-- pipeline:begin NAME -->` and `<!-- pipeline:end NAME -->`; everything else belongs to reviewers
once the draft exists.
"""

from __future__ import annotations

import itertools
import os
import re
import stat
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
from .fingerprint import files_digest
from .frontmatter import FrontMatterMissing, FrontMatterUnclosed, replace_key, split_front_matter
from .pause import pause_point
from .yamlout import fast_dump

TEMP_PREFIX = ".pipeline-"
TEMP_SUFFIX = ".tmp"
_REGION = re.compile(
    r"^<!-- pipeline:begin (?P<name>[a-z][a-z0-9-]*) -->\n(?P<content>.*?)\n?^<!-- pipeline:end (?P=name) -->$",
    re.MULTILINE | re.DOTALL,
)
# The same regions, found many times faster: without the leading "^" the engine skips to the marker's
# text instead of trying every position. Equal whenever each begin marker starts a line (_regions()).
_REGION_UNANCHORED = re.compile(_REGION.pattern.removeprefix("^"), re.MULTILINE | re.DOTALL)
_BEGIN = "<!-- pipeline:begin "
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
    return {m.group("name"): m.group("content") for m in _regions(body).finditer(body)}


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

    return _regions(body).sub(swap, body)


def blank_regions(body: str) -> str:
    """The body with every region emptied: what reviewers own, for merging."""
    return _regions(body).sub(lambda m: f"<!-- pipeline:begin {m.group('name')} -->\n<!-- pipeline:end {m.group('name')} -->", body)


def _regions(body: str) -> re.Pattern[str]:
    """The region pattern for `body`: the fast one when every begin marker starts a line (then a
    match can only start where the anchored one's does), else the anchored one."""
    at_line_start = body.count("\n" + _BEGIN) + body.startswith(_BEGIN)
    return _REGION_UNANCHORED if body.count(_BEGIN) == at_line_start else _REGION


def fill_regions(skeleton: str, regions: dict[str, str]) -> str:
    for name, content in regions.items():
        skeleton = replace_region(skeleton, name, content)
    return skeleton


def set_front_matter_key(fm_text: str, key: str, value: object) -> str:
    """Replace one top-level key's YAML block (or append it), leaving every other byte alone."""
    return replace_key(fm_text, key, dump_yaml({key: value}))


def drop_front_matter_key(fm_text: str, key: str) -> str:
    """Take one top-level key's YAML block out (a reviewer's comments in it stay), every other byte alone."""
    return replace_key(fm_text, key, "")


def write_atomic(path: Path, text: str, newline: str = "\n") -> None:
    """Write through a temp file in the same folder and rename: readers see old or new, never half.

    Inside `batched_writes()` the draft is staged instead, and replaced when the batch commits.
    """
    batch = _batch.get()
    if batch is not None:
        batch.stage(path, text, newline)
        return
    data = _encoded(text, newline)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _create_temp(path, data, _mode_of(path), sync=True)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    try:
        pause_point(f"staged{path.suffix}")
        os.replace(temp, path)
    except BaseException as exc:
        _unlink(temp)
        if isinstance(exc, OSError):
            raise _unwritable(path, exc) from exc
        raise
    pause_point(f"renamed{path.suffix}")


def written_digest(path: Path) -> str | None:
    """fingerprint.files_digest() of the draft and state the current batch put at `path`, if it did:
    what was just written need not be read back to be fingerprinted."""
    batch = _batch.get()
    return batch.digest(path) if batch is not None else None


def current_batch() -> DraftBatch | None:
    """The batch `write_atomic` stages into right now, if any."""
    return _batch.get()


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


@dataclass(frozen=True)
class Follower:
    """A file written with a draft and put in place right after it (the draft's state): written under
    the fixed name `scratch`, which a reader can find after a kill, and renamed to `final`."""

    scratch: Path
    text: str
    final: Path


@dataclass
class _Staged:
    temp: Path
    before: tuple[int, int, int] | None  # the file in place when staged (inode, size, mtime), None if none
    follower: Follower | None = None
    actions: list[Callable[[], None]] = field(default_factory=list)
    digest: str | None = None  # fingerprint.files_digest() of the draft and its follower, as written


class DraftBatch:
    """Drafts written together, durable with one barrier instead of one per file.

    Each draft is written to a temp file beside it; `commit()` makes them all durable with one sync
    of the filesystem, renames each into place, then syncs the folders (so the renames last too).
    Killed at any moment, every draft is the old file or the new one: temp files never replace a
    draft before the sync, and the next run sweeps any left behind. A draft whose file changed on
    disk after it was staged (a reviewer saved it meanwhile) is not replaced: their save wins.
    """

    def __init__(self, limit: int = 2000) -> None:
        # Staged drafts that make the batch commit on its own, so memory stays flat.
        self.limit = limit
        self._staged: dict[Path, _Staged] = {}
        self._left: dict[Path, tuple[Literal["kept", "error"], str]] = {}
        self._folders: set[Path] = set()  # made (or found) in this batch: one mkdir each
        self._digests: dict[Path, str] = {}  # drafts put in place with their followers -> files_digest()
        self._names = itertools.count()

    def __len__(self) -> int:
        return len(self._staged)

    def stage(self, path: Path, text: str, newline: str = "\n", follower: Follower | None = None, *,
              new: bool = False) -> None:
        """Stage `text` for `path` (and a follower to put in place right after it). `new`: the caller
        found no file at `path`, so one found there at commit is someone else's, and is kept."""
        if len(self._staged) >= self.limit:
            self._put_in_place()
        data = _encoded(text, newline)
        follower_data = _encoded(follower.text, "\n") if follower is not None else None
        before = None if new else _stat(path)
        temp = path.parent / f"{TEMP_PREFIX}{path.name}.{os.getpid()}-{next(self._names)}{TEMP_SUFFIX}"
        try:
            self._make_folders(path, follower)
            if follower is not None and follower_data is not None:
                _write_in_place(follower.scratch, follower_data)
            _write_new(temp, data, None if before is None else stat.S_IMODE(before.st_mode))
        except OSError as exc:
            if follower is not None:
                _unlink(follower.scratch)
            raise _unwritable(path, exc) from exc
        earlier = self._staged.pop(path, None)
        if earlier is not None:  # written twice in one batch: the later text wins
            _unlink(earlier.temp)
        kept = None if follower is None else replace(follower, text="")  # written: only its names are kept
        self._staged[path] = _Staged(temp, _identity_of(before), kept, earlier.actions if earlier else [],
                                     files_digest(data, follower_data) if follower_data is not None else None)
        if follower is not None:
            pause_point(f"staged{follower.scratch.suffix}")
        pause_point(f"staged{path.suffix}")

    def _make_folders(self, path: Path, follower: Follower | None) -> None:
        for folder in (path.parent, *((follower.scratch.parent,) if follower is not None else ())):
            if folder not in self._folders:
                folder.mkdir(parents=True, exist_ok=True)
                self._folders.add(folder)

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
            if path not in left:
                self._rename(path, entry)
        _sync_folders({path.parent for path in staged if path not in left}
                      | {e.follower.final.parent for p, e in staged.items() if e.follower and p not in left})
        for path, entry in staged.items():
            if path not in left:
                for action in entry.actions:
                    action()

    def _rename(self, path: Path, entry: _Staged) -> None:
        """Put one draft in place, then its follower; record in `_left` why not."""
        if _identity(path) != entry.before:
            _unlink(entry.temp)
            self._left[path] = ("kept", "changed on disk while the pipeline worked on it; left alone until the next run")
            return
        try:
            os.replace(entry.temp, path)
        except OSError as exc:
            _unlink(entry.temp)
            self._left[path] = ("error", _unwritable_reason(path, exc))
            return
        pause_point(f"renamed{path.suffix}")
        if entry.follower is not None:
            try:
                os.replace(entry.follower.scratch, entry.follower.final)
            except OSError as exc:  # the draft is in place: its scratch state is read with it (state.load_state)
                self._left[path] = ("error", _unwritable_reason(entry.follower.final, exc))
                return
            pause_point(f"renamed{entry.follower.final.suffix}")
            if entry.digest is not None:
                self._digests[path] = entry.digest

    def digest(self, path: Path) -> str | None:
        """files_digest() of the draft this batch put at `path` with its follower, if it did."""
        return self._digests.get(path)

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


def _encoded(text: str, newline: str) -> bytes:
    return (text if newline == "\n" else text.replace("\n", newline)).encode("utf-8")


def _create_temp(path: Path, data: bytes, mode: int | None, *, sync: bool) -> Path:
    """`data` in a fresh temp file beside `path`, with the permissions of the file it replaces (`mode`)
    or, for a new file, the umask's."""
    fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, mode if mode is not None else _NEW_FILE_MODE)
        _write_all(fd, data)
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(temp)
        raise
    os.close(fd)
    return Path(temp)


def _write_new(name: Path, data: bytes, mode: int | None) -> None:
    """`data` in a new file called `name` (a temp name of this run: one a killed run left is ours to
    replace), with the permissions of the file it will replace, or the umask's."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(name, flags, 0o666)
    except FileExistsError:
        _unlink(name)
        fd = os.open(name, flags, 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        _unlink(name)
        raise
    os.close(fd)


def _write_in_place(path: Path, data: bytes) -> None:
    """A scratch file written under its own name (nothing reads it until it is renamed or checked)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# A new draft gets the permissions any editor's new file gets (mkstemp alone would give 0600, which a
# web server running as another user cannot read).
_NEW_FILE_MODE = 0o666 & ~_current_umask()


def _mode_of(path: Path) -> int | None:
    found = _stat(path)
    return None if found is None else stat.S_IMODE(found.st_mode)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _identity_of(found: os.stat_result | None) -> tuple[int, int, int] | None:
    return None if found is None else (found.st_ino, found.st_size, found.st_mtime_ns)


def _identity(path: Path) -> tuple[int, int, int] | None:
    return _identity_of(_stat(path))


def _make_durable(entries: list[_Staged]) -> None:
    """One sync of each filesystem holding the temp files (Linux syncfs); elsewhere, one fsync each."""
    files = [entry.temp for entry in entries] + [entry.follower.scratch for entry in entries if entry.follower]
    by_device = {folder.stat().st_dev: folder for folder in {file.parent for file in files}}
    if all(_syncfs(folder) for folder in by_device.values()):
        return
    for file in files:
        with open(file, "rb") as handle:
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

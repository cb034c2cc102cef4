"""Input hashes for drafts: a draft whose inputs and bytes are what they were is not rebuilt.

A fingerprint covers everything a draft is made from: the guide file's bytes, every shared
template's bytes, the Further Reading items chosen for it (selection depends on today's date, so it
is hashed after selecting, never "now" itself), the settings that change the text, the pipeline's own
code and the draft file's current bytes. A hand edit changes the draft's bytes and a changed guide or
template changes its bytes, so neither is ever skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from . import __version__
from .models import Item

PACKAGE_DIR = Path(__file__).resolve().parent


def _tree_digest(folder: Path, pattern: str, skip: str | None = None) -> str:
    """One hash over the names and bytes of every file under `folder` matching `pattern`, except
    the top-level folder `skip` (not even walked: it may hold thousands of guides)."""
    digest = hashlib.sha256()
    for path in sorted(_walk(folder, pattern, skip)):
        relative = path.relative_to(folder).as_posix()
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _walk(folder: Path, pattern: str, skip: str | None) -> list[Path]:
    found: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir():
            if entry.name != skip:
                found += [path for path in entry.rglob(pattern) if path.is_file()]
        elif entry.match(pattern):
            found.append(entry)
    return found


@dataclass(frozen=True)
class BuildInputs:
    """What every draft of one run shares; hashed once per run."""

    digest: str

    @classmethod
    def collect(cls, templates_dir: Path, output_dir: Path, model: str | None, mode: str,
                site: str | None = None) -> BuildInputs:
        """`mode` tells `build` from `refresh`: refresh leaves guide changes for build to merge; `site`
        names the publishing keys drafts carry."""
        digest = hashlib.sha256()
        for part in (__version__, _tree_digest(PACKAGE_DIR, "*.py"),
                     _tree_digest(templates_dir, "*", skip="guides"),
                     str(output_dir), model or "", mode, site or ""):
            digest.update(part.encode() + b"\0")
        return cls(digest.hexdigest())

    def draft(self, guide_path: Path, chosen: Sequence[Item], files: str | None,
              guide_bytes: bytes | None = None) -> str:
        """The fingerprint of one draft: shared inputs, its guide, its items and its files as they are
        (`files`: files_digest() of the draft and its state, None when there is no draft)."""
        return self.guide(guide_path, guide_bytes).draft(chosen, files)

    def guide(self, guide_path: Path, guide_bytes: bytes | None = None) -> GuideInputs:
        """The shared inputs and one guide, hashed: what a draft's fingerprint starts from (a few
        hundred bytes to keep until the draft is written, instead of the guide's text)."""
        digest = hashlib.sha256(self.digest.encode())
        digest.update(guide_path.name.encode() + b"\0")
        try:
            digest.update((guide_bytes if guide_bytes is not None else guide_path.read_bytes()) + b"\0")
        except OSError:
            digest.update(b"\1unreadable\0")  # never equal to a fingerprint of readable bytes
        return GuideInputs(digest)


class GuideInputs:
    """BuildInputs.guide(): the fingerprint of one guide's draft, but for its items and files."""

    def __init__(self, digest: Any) -> None:
        self._digest = digest

    def draft(self, chosen: Sequence[Item], files: str | None) -> str:
        digest = self._digest.copy()
        for item in chosen:
            for value in (item.feed_url, item.guid, item.headline, item.source,
                          item.date.isoformat() if item.date else "", item.url):
                digest.update(value.encode() + b"\0")
            digest.update(b"\1")
        digest.update(b"\2" if files is None else b"\3" + files.encode())
        return str(digest.hexdigest())


def files_digest(draft: bytes, state: bytes | None) -> str:
    """One hash of a draft's bytes and its state's (a state taken from either side of a git
    conflict is looked at too)."""
    return hashlib.sha256(draft + b"\0" + (state or b"")).hexdigest()


def read_bytes(path: Path) -> bytes | None:
    """A draft's bytes, or None when there is none (or it cannot be read: then it is never skipped)."""
    try:
        return path.read_bytes()
    except OSError:
        return None

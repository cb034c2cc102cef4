"""What changed in a draft since it was approved: word-level per region, or one unified diff.

The approved text travels with the draft (`output/.pipeline/<slug>.json`, see `state`); these are
pure functions of that text and the draft's text now.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from .drafts import blank_regions, find_regions, split_draft
from .errors import DraftError

FRONT_MATTER = "front matter"
OUTSIDE = "text outside the managed regions"
_WORDS = re.compile(r"\s+|\w+|[^\w\s]")
SAME, INSERT, DELETE = "same", "insert", "delete"


@dataclass(frozen=True)
class RegionDiff:
    """One part of a draft (front matter, a managed region, the reviewers' text) old against new."""

    name: str
    segments: tuple[tuple[str, str], ...]  # (SAME | INSERT | DELETE, text) in reading order

    @property
    def changed(self) -> bool:
        return any(kind != SAME for kind, _ in self.segments)

    def count(self, kind: str) -> int:
        """Words inserted or deleted (whitespace not counted)."""
        return sum(len(re.findall(r"\w+|[^\w\s]", text)) for k, text in self.segments if k == kind)


def draft_parts(text: str) -> dict[str, str]:
    """A draft split as reviewers think of it: front matter, each managed region, the rest."""
    try:
        draft = split_draft(_LABEL, text)
    except DraftError:
        return {"draft": text}  # broken front matter: compare the text as a whole
    parts = {FRONT_MATTER: draft.front_matter_text}
    parts.update(find_regions(draft.body))
    parts[OUTSIDE] = blank_regions(draft.body)
    return parts


_LABEL = Path("draft.md")


def word_diff(old: str, new: str) -> tuple[tuple[str, str], ...]:
    """Word-level difference of two texts, as (kind, text) runs; whitespace is a token of its own."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    segments: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            segments.append((SAME, "".join(a[i1:i2])))
            continue
        if i2 > i1:
            segments.append((DELETE, "".join(a[i1:i2])))
        if j2 > j1:
            segments.append((INSERT, "".join(b[j1:j2])))
    return tuple(segments)


def region_diffs(approved: str, current: str) -> list[RegionDiff]:
    """Every part of the draft, approved against now, in the draft's order (new parts last)."""
    old, new = draft_parts(approved), draft_parts(current)
    names = list(new) + [name for name in old if name not in new]
    return [RegionDiff(name, word_diff(old.get(name, ""), new.get(name, ""))) for name in names]


def unified_diff(approved: str, current: str, label: str, approved_at: str) -> str:
    """The draft now against its approved text, as `diff -u` would print it."""
    lines = difflib.unified_diff(approved.splitlines(keepends=True), current.splitlines(keepends=True),
                                 fromfile=f"{label} (approved {approved_at})", tofile=f"{label} (now)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)

"""`pipeline status` without a PATH: every draft, its review status, what changed since approval, and the
conditions still open (the ledger cron reports from), so nothing said once is ever lost from view."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conditions import project_subject
from .drafts import read_draft
from .errors import PipelineError
from .models import Condition


@dataclass(frozen=True)
class ChangeSince:
    at: str
    region: str
    summary: str


@dataclass(frozen=True)
class DraftOverview:
    path: Path
    status: str  # the front matter's value, or "unreadable"
    approved_at: str | None  # when the approved snapshot was taken (state file), if approved
    changes: tuple[ChangeSince, ...]  # since approval, oldest first
    conditions: tuple[Condition, ...]  # open conditions on this draft
    problem: str | None = None  # why the draft could not be read

    def as_json(self, shown: str) -> dict[str, object]:
        return {
            "path": shown, "status": self.status, "approved_at": self.approved_at, "problem": self.problem,
            "changes_since_approval": [{"at": c.at, "region": c.region, "summary": c.summary} for c in self.changes],
            "open": [{"kind": c.kind, "since": c.since, "message": c.message} for c in self.conditions],
        }


def _approval(output_dir: Path, slug: str) -> tuple[str | None, tuple[ChangeSince, ...]]:
    """Approval time and changes since, from the per-draft state file (pipeline/state.py), when kept."""
    try:
        state: Any = importlib.import_module(".state", __package__)
    except ImportError:  # a pipeline without per-draft state: nothing recorded since approval
        return None, ()
    try:
        loaded = state.load_state(output_dir, slug)
    except PipelineError:
        return None, ()
    if loaded is None or getattr(loaded, "approved", None) is None:
        return None, ()
    changes = tuple(ChangeSince(str(c.at), str(c.region), str(c.summary))
                    for c in getattr(loaded, "changes_since_approval", ()))
    return str(loaded.approved.at), changes


def overview(root: Path, output_dir: Path, open_conditions: Sequence[Condition],
             only: Path | None = None) -> tuple[list[DraftOverview], list[Condition]]:
    """Every draft in `output_dir` (or just `only`), and the open conditions that belong to no draft."""
    paths = [only] if only is not None else sorted(output_dir.glob("*.md"))
    by_subject: dict[str, list[Condition]] = {}
    for condition in open_conditions:
        by_subject.setdefault(condition.subject, []).append(condition)
    drafts = []
    for path in paths:
        # Keyed by the project's name for it; by its absolute path if kept before a run took that over.
        mine = tuple(by_subject.pop(project_subject(root, path), ())) + tuple(by_subject.pop(str(path), ()))
        try:
            draft = read_draft(path)
        except PipelineError as exc:
            drafts.append(DraftOverview(path, "unreadable", None, (), mine, exc.message))
            continue
        if draft is None:
            drafts.append(DraftOverview(path, "missing", None, (), mine, f"{path}: no such draft"))
            continue
        status = str(draft.front_matter.get("status", "draft"))
        approved_at, changes = _approval(output_dir, path.stem)
        drafts.append(DraftOverview(path, status, approved_at if status.strip().lower() == "approved" else None,
                                    changes if approved_at else (), mine))
    rest = [] if only is not None else [c for conditions in by_subject.values() for c in conditions]
    return drafts, rest

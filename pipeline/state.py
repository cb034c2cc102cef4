"""Each draft's merge state, kept beside it in `output/.pipeline/<slug>.json` and committed with it.

The state says what the pipeline last wrote into the draft (its managed regions, the skeleton of the
body, the generated front matter keys), when the draft was approved and as what text, and what changed
since. It is what tells a reviewer's edit from the pipeline's own text, so it travels with the drafts
through git: a clone with drafts and states and no store behaves as the machine that wrote them.

The file is plain JSON with sorted keys and one text line per array element, so a diff or a git merge
of a state reads like the diff or merge of its draft. It is written together with its draft: staged
next to the draft (`<slug>.json.pending`), then the draft is renamed into place, then the state. A run
killed between the two renames leaves a pending state whose `draft_sha256` names the draft on disk;
`load_state` takes it then, and ignores it when the draft is still the old one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from .config import STATE_DIR
from .drafts import Follower, after_write, current_batch, unstage, write_atomic
from .errors import DraftError

STATE_VERSION = 1
PENDING_SUFFIX = ".pending"


@dataclass(frozen=True)
class Approval:
    """A draft as it was when it became approved."""

    at: str  # ISO 8601 UTC, by the pipeline's clock (SOURCE_DATE_EPOCH honoured)
    text: str  # the whole draft file


@dataclass(frozen=True)
class Change:
    """A change the pipeline made to an approved draft that kept it approved."""

    at: str  # ISO 8601 UTC
    region: str  # the managed region it touched
    summary: str  # one line for a person, e.g. "2 stories added, 1 dropped"


@dataclass(frozen=True)
class DraftState:
    """What the pipeline last wrote into one draft, and its approval."""

    regions: dict[str, str] = field(default_factory=dict)  # region -> content last written there
    skeleton: str | None = None  # the body with regions emptied as `build` last generated it
    front_matter: dict[str, object] | None = None  # generated keys as last written; None: no record
    approved: Approval | None = None
    changes_since_approval: tuple[Change, ...] = ()
    draft_sha256: str = ""  # the draft text the pipeline last wrote with this state ("\n" line ends)

    @property
    def has_record(self) -> bool:
        """False for a state that only holds an approval (a draft the pipeline has not written)."""
        return bool(self.regions) or self.skeleton is not None or self.front_matter is not None

    def to_json(self) -> str:
        data: dict[str, object] = {
            "version": STATE_VERSION,
            "draft_sha256": self.draft_sha256,
            "regions": {name: _lines(text) for name, text in self.regions.items()},
            "skeleton": None if self.skeleton is None else _lines(self.skeleton),
            "front_matter": self.front_matter,
            "approved": None if self.approved is None else {"at": self.approved.at, "text": _lines(self.approved.text)},
            "changes_since_approval": [{"at": c.at, "region": c.region, "summary": c.summary}
                                       for c in self.changes_since_approval],
        }
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DraftState:
        """Parse a state file; ValueError, KeyError or TypeError when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"not a version {STATE_VERSION} draft state")
        approved = data.get("approved")
        skeleton = data.get("skeleton")
        front = data.get("front_matter")
        if front is not None and not isinstance(front, dict):
            raise TypeError("front_matter must be an object")
        return cls(
            regions={str(name): _text(lines) for name, lines in dict(data.get("regions") or {}).items()},
            skeleton=None if skeleton is None else _text(skeleton),
            front_matter=front,
            approved=None if approved is None else Approval(str(approved["at"]), _text(approved["text"])),
            changes_since_approval=tuple(Change(str(c["at"]), str(c["region"]), str(c["summary"]))
                                         for c in data.get("changes_since_approval") or ()),
            draft_sha256=str(data.get("draft_sha256", "")),
        )


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _text(lines: object) -> str:
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise TypeError("text must be a list of lines")
    return "\n".join(lines)


def stamp(moment: dt.datetime) -> str:
    """A moment as the state (and front matter) write it: ISO 8601 UTC to the second."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def state_path(output_dir: Path, slug: str) -> Path:
    return output_dir / STATE_DIR / f"{slug}.json"


def _pending_path(output_dir: Path, slug: str) -> Path:
    return output_dir / STATE_DIR / f"{slug}.json{PENDING_SUFFIX}"


def _draft_text(output_dir: Path, slug: str) -> str | None:
    try:
        raw = (output_dir / f"{slug}.md").read_text(encoding="utf-8")  # universal newlines, as read_draft
    except (OSError, UnicodeDecodeError):
        return None
    return raw


def _read(path: Path) -> DraftState | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DraftError(path, f"cannot be read ({exc}); restore it from git, or delete it "
                               "(the draft is then treated as one without a record)") from exc
    try:
        return DraftState.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise DraftError(path, f"is not a draft state the pipeline wrote ({exc}); if a git merge left "
                               "conflict markers in it, take either side and run `pipeline build`") from exc


@dataclass(frozen=True)
class Listing:
    """The drafts folder as listed when a run began. A draft or state it does not list is new and is
    never looked for: on a first build that spares thousands of lookups of missing files, each one
    waiting on the folder while new files are created in it. (A file that appears meanwhile is seen
    when the draft is put in place, and left alone: see drafts.DraftBatch.)"""

    drafts: frozenset[str]
    states: frozenset[str]

    @classmethod
    def of(cls, output_dir: Path) -> Listing:
        return cls(_names(output_dir), _names(output_dir / STATE_DIR))

    def has_draft(self, slug: str) -> bool:
        return f"{slug}.md" in self.drafts

    def has_state(self, slug: str) -> bool:
        return f"{slug}.json" in self.states or f"{slug}.json{PENDING_SUFFIX}" in self.states


def _names(folder: Path) -> frozenset[str]:
    try:
        return frozenset(os.listdir(folder))
    except FileNotFoundError:
        return frozenset()


def load_state(output_dir: Path, slug: str, listing: Listing | None = None) -> DraftState | None:
    """The draft's state, None when there is none (a draft made by hand or by an older pipeline)."""
    if listing is not None and not listing.has_state(slug):
        return None
    pending_path = _pending_path(output_dir, slug)
    if pending_path.exists():
        try:
            pending = _read(pending_path)
        except DraftError:
            pending = None  # a half-staged state: the draft was never renamed after it
        draft = _draft_text(output_dir, slug)
        if pending is not None and draft is not None and text_sha256(draft) == pending.draft_sha256:
            return pending  # the run was killed after writing the draft, before renaming its state
    return _read(state_path(output_dir, slug))


def stage_state(output_dir: Path, slug: str, state: DraftState) -> Path:
    """Write the state where `commit_state` renames it from, durably; its draft is written next."""
    pending = _pending_path(output_dir, slug)
    write_atomic(pending, state.to_json())
    return pending


def commit_state(output_dir: Path, slug: str, pending: Path) -> None:
    """Put a staged state in place, once its draft is."""
    final = state_path(output_dir, slug)
    try:
        os.replace(pending, final)
    except OSError as exc:
        raise DraftError(final, f"cannot be written ({exc.strerror or exc}); check that {final.parent} "
                                "is writable") from exc


def write_with_state(path: Path, text: str, newline: str, state: DraftState, *, new: bool = False) -> None:
    """Write a draft and its state (naming the draft's text) so that a kill at any moment leaves a
    pair `load_state` reads right: the state is written to its pending name first, the draft is
    renamed into place, then the state. `new`: the caller found no draft there (one that appears
    before the batch commits is left alone)."""
    output_dir, slug = path.parent, path.stem
    state_text = replace(state, draft_sha256=text_sha256(text)).to_json()
    _settle_pending(output_dir, slug)
    batch = current_batch()
    if batch is not None:  # both written by the batch's writer, put in place when it commits
        batch.stage(path, text, newline, Follower(_pending_path(output_dir, slug), state_text,
                                                  state_path(output_dir, slug)), new=new)
        return
    pending = _pending_path(output_dir, slug)
    write_atomic(pending, state_text)
    try:
        write_atomic(path, text, newline)
    except BaseException:
        discard_state(pending)
        raise
    commit_state(output_dir, slug, pending)


def _settle_pending(output_dir: Path, slug: str) -> None:
    """A pending state left by a run killed between a draft and its state becomes the state when it
    names the draft on disk (and goes when it does not): a new pending state must never write over
    the only record of the draft as it is."""
    pending = _pending_path(output_dir, slug)
    if not pending.exists():
        return
    try:
        left = _read(pending)
    except DraftError:
        left = None
    draft = _draft_text(output_dir, slug)
    if left is not None and draft is not None and text_sha256(draft) == left.draft_sha256:
        commit_state(output_dir, slug, pending)
    else:
        discard_state(pending)


def discard_state(pending: Path) -> None:
    unstage(pending)  # staged in a batch of writes: never put in place
    try:
        pending.unlink()
    except FileNotFoundError:
        pass


def save_state(output_dir: Path, slug: str, state: DraftState) -> None:
    """Write a state alone (its draft did not change), unless it already says the same.

    A pending state (left by a run killed between a draft and its state, and maybe the one `state`
    was read from) goes only once this state is in place: a kill before then keeps the pair readable.
    """
    path = state_path(output_dir, slug)
    pending = _pending_path(output_dir, slug)
    text = state.to_json()
    try:
        same = path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        same = False
    if same:
        discard_state(pending)
        return
    write_atomic(path, text)
    after_write(path, partial(discard_state, pending))

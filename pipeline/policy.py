"""The review policies a build applies to a draft a reviewer may have edited.

Each policy is named after the part of the README's "Review workflow" that promises it:

- regions: which managed regions are replaced and which are left alone, and why (`decide_regions`);
- body merge: a three-way merge of the skeleton, everything outside the regions (`merge_body`);
- front matter: generated keys follow the guide unless a reviewer changed them (`merge_front_matter`);
- status: what a review status means for a change (`review_status`, `hold_for_approval`, `judge_status`):
  per region, who vouches for its text once a draft is approved.

Writing (atomically, unless the file changed meanwhile) is `build.write_draft`. The policies are pure:
they take what the pipeline last wrote, what is on disk and the new generation, and return decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import merge3

from .drafts import DraftFile, blank_regions, fill_regions, find_regions, set_front_matter_key
from .models import STATUSES, Status
from .state import Approval, Change, DraftState


# Front matter keys the pipeline keeps up to date, unless a reviewer changed them.
GENERATED_KEYS = ("title", "description", "audience", "tags", "keywords", "guide", "max_age_days",
                  "further_reading", "generator", "ai")
# Front matter keys written from a region: they stay with the region when it is left alone.
REGION_KEYS = {"further-reading": ("further_reading",), "context": ("ai",)}
_FOLLOWING_KEYS = frozenset(key for keys in REGION_KEYS.values() for key in keys)
# A region whose text is written from another one: the context paragraph cites the Further Reading list,
# so when a reviewer's list is kept, the context that matches it is kept too.
REGION_FOLLOWS = {"context": "further-reading"}

FORCE_HINT = "(use --force to replace it)"


def generated_keys(front_matter: Mapping[str, object]) -> dict[str, object]:
    return {k: front_matter[k] for k in GENERATED_KEYS if k in front_matter}


# -- regions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionOutcome:
    """What one region holds after this run, and what is remembered as the pipeline's text there."""

    text: str  # the region's content to write
    kept: bool  # the reviewer's text was left alone (so are the front matter keys written from it)
    remember: str | None  # recorded as last written; None keeps the previous record
    note: str | None = None  # said after "PATH: region 'NAME'", e.g. " was edited by hand; ..."


# (last written there or None, on disk, newly generated) -> outcome. A region may get its own strategy
# (the Further Reading list can merge entry by entry); every other region is taken or left whole.
RegionStrategy = Callable[[str | None, str, str], RegionOutcome]


def whole_region(last: str | None, on_disk: str, new: str) -> RegionOutcome:
    """Replace a region that still holds the pipeline's text; leave a hand-edited one alone."""
    if on_disk == new or on_disk == last:
        return RegionOutcome(new, kept=False, remember=new)
    if last is None:
        # Without a record we cannot tell a hand edit from our own text, so we keep the words.
        return RegionOutcome(on_disk, kept=True, remember=None, note=(
            f": no record of what the pipeline last wrote there (new store?); left alone {FORCE_HINT}"))
    return RegionOutcome(on_disk, kept=True, remember=None, note=f" was edited by hand; left alone {FORCE_HINT}")


def _forced(last: str | None, on_disk: str, new: str) -> RegionOutcome:
    return RegionOutcome(new, kept=False, remember=new)


@dataclass(frozen=True)
class RegionPlan:
    """Every managed region's fate in one draft."""

    write: dict[str, str]  # region -> content to write (replaced or merged)
    kept: frozenset[str]  # regions left as the reviewer has them (or without markers)
    remember: dict[str, str]  # region -> what the pipeline wrote there this time
    notes: tuple[str, ...] = ()
    outcomes: dict[str, RegionOutcome] = field(default_factory=dict)

    @property
    def kept_keys(self) -> frozenset[str]:
        """Front matter keys written from a kept region: they are left alone with it."""
        return frozenset(key for name in self.kept for key in REGION_KEYS.get(name, ()))

    def hold(self, name: str) -> RegionPlan:
        """The same plan with one region left as it is, silently, and its record unmoved."""
        return replace(self, write={k: v for k, v in self.write.items() if k != name}, kept=self.kept | {name},
                       remember={k: v for k, v in self.remember.items() if k != name})


def decide_regions(
    path: Path,
    new: Mapping[str, str],
    on_disk: Mapping[str, str],
    last: Mapping[str, str],
    *,
    force: bool = False,
    strategies: Mapping[str, RegionStrategy] | None = None,
) -> RegionPlan:
    """Which regions are replaced and which are left alone; leaders decide before their followers."""
    write: dict[str, str] = {}
    kept: set[str] = set()
    remember: dict[str, str] = {}
    notes: list[str] = []
    outcomes: dict[str, RegionOutcome] = {}
    for name in sorted(new, key=lambda region: region in REGION_FOLLOWS):
        if name not in on_disk:
            notes.append(f"{path}: region {name!r} markers are missing; region not updated "
                         "(restore the markers, or use `build --force` to regenerate)")
            kept.add(name)
            continue
        leader = REGION_FOLLOWS.get(name)
        if leader in kept and on_disk[name] != new[name]:
            notes.append(f"{path}: region {name!r} cites region {leader!r}, which was left alone; left alone too")
            kept.add(name)
            continue
        strategy = _forced if force else (strategies or {}).get(name, whole_region)
        outcome = strategy(last.get(name), on_disk[name], new[name])
        outcomes[name] = outcome
        if outcome.note:
            notes.append(f"{path}: region {name!r}{outcome.note}")
        if outcome.kept:
            kept.add(name)
        else:
            write[name] = outcome.text
        if outcome.remember is not None:
            remember[name] = outcome.remember
    return RegionPlan(write, frozenset(kept), remember, tuple(notes), outcomes)


# -- body merge ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyMerge:
    body: str | None  # None: the reviewer's edits conflict with the new generation
    notes: tuple[str, ...] = ()


def merge3_lines(base: str, ours: str, theirs: str) -> str | None:
    """Line-based three-way merge; None on conflict."""
    merger = merge3.Merge3(base.splitlines(True), ours.splitlines(True), theirs.splitlines(True))
    if any(group[0] == "conflict" for group in merger.merge_groups()):
        return None
    return "".join(merger.merge_lines())


def merge_body(path: Path, body: str, base: str | None, new_skeleton: str, plan: RegionPlan,
               *, regions_only: bool = False) -> BodyMerge:
    """The reviewer's body with the guide's changes merged in and the regions of `plan` written.

    `base` is the skeleton (body with regions emptied) the pipeline last wrote; `refresh` never
    merges the skeleton, only `build` does.
    """
    ours = blank_regions(body)
    notes: tuple[str, ...] = ()
    skeleton = ours
    if not regions_only and base is None:
        notes = (f"{path}: no record of the last generation (new store?); only managed regions "
                 "updated; use --force to regenerate",)
    elif not regions_only and base is not None:
        merged = merge3_lines(base, ours, new_skeleton)
        if merged is None:
            return BodyMerge(None, (f"{path}: reviewer edits conflict with the changed guide or templates; draft "
                                    "left untouched (resolve by hand, or use --force to regenerate)",))
        skeleton = merged
    # Filling the reviewer's own body (not the merged skeleton) when only regions move keeps every
    # other byte exactly as it was, blank lines inside untouched regions included.
    if skeleton == ours:
        return BodyMerge(fill_regions(body, plan.write), notes)
    on_disk = find_regions(body)
    kept = {name: on_disk[name] for name in plan.kept if name in on_disk}
    return BodyMerge(fill_regions(skeleton, {**kept, **plan.write}), notes)


# -- front matter --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrontMerge:
    text: str  # the front matter YAML to write
    remember: dict[str, object]  # generated keys as the pipeline last wrote them, after this run
    notes: tuple[str, ...] = ()


def merge_front_matter(
    path: Path,
    existing: DraftFile,
    new: Mapping[str, object],
    last: Mapping[str, object] | None,
    kept_keys: frozenset[str] = frozenset(),
    *,
    regions_only: bool = False,
    force: bool = False,
) -> FrontMerge:
    """Generated keys follow the generation unless a reviewer changed (or deleted) them.

    `last` holds the generated keys as last written, None when there is no record. A key written from
    a region (further_reading) comes back with its region; any other key a reviewer deleted stays
    deleted. `regions_only` (refresh) touches only the keys written from regions.
    """
    text = existing.front_matter_text
    notes: list[str] = []
    keys = [k for k in GENERATED_KEYS if k in new and k not in kept_keys
            and (not regions_only or k in _FOLLOWING_KEYS)]
    for key in keys:
        decision = _key_decision(key, existing.front_matter, new[key], last, force=force)
        if decision == "unknown":
            notes.append(f"{path}: front matter {key!r}: no record of what the pipeline last wrote there (new "
                         f"store?); left alone {FORCE_HINT}")
        elif decision == "ours" and existing.front_matter.get(key) != new[key]:
            text = set_front_matter_key(text, key, new[key])
    remember = dict(last or {})
    remember.update({key: value for key, value in generated_keys(new).items()
                     if key not in kept_keys and (not regions_only or key in _FOLLOWING_KEYS)})
    return FrontMerge(text, remember, tuple(notes))


def _key_decision(key: str, current: Mapping[str, object], new: object, last: Mapping[str, object] | None,
                  *, force: bool) -> Literal["ours", "theirs", "unknown"]:
    """Whose value one generated key keeps: ours (the generation), theirs (the reviewer's) or unknown."""
    if force and key in _FOLLOWING_KEYS:
        return "ours"
    in_file = key in current
    deletable = key not in _FOLLOWING_KEYS
    if last is None:
        # Without a record a reviewer's value cannot be told from an old generation: keep it.
        return "unknown" if (current[key] != new if in_file else deletable) else "ours"
    if key in last and (current[key] != last[key] if in_file else deletable):
        return "theirs"
    return "ours"


# -- status --------------------------------------------------------------------------------------


def review_status(front_matter: Mapping[str, object]) -> tuple[Status, str | None]:
    """The status the pipeline acts on, and a note when the file's value is not one of STATUSES.

    A hand-typed 'Approved' means approved; anything else unknown ('aproved', 'final') is treated as
    approved too, because wrongly protecting a draft costs a note and wrongly changing one breaks a promise.
    """
    raw = front_matter.get("status", "draft")
    status = str(raw).strip().lower()
    for known in STATUSES:
        if status == known:
            return known, None
    return "approved", f"unknown status {raw!r}; treated as approved (use one of {', '.join(STATUSES)})"


# Who vouches for a region's text in an approved draft. "feed": data from the feeds, escaped and
# format-checked, that a reader takes as the news' (a change keeps the approval and is recorded);
# "ours": prose a reader takes as ours (a change sends the draft back to in-review).
Voucher = Literal["feed", "ours"]
# A change to front matter alone, as a "region" of the list of changes: refresh writes only the keys
# that follow the regions (further_reading, ai), so the feeds vouch for it.
FRONT_MATTER = "front-matter"


def drafted_by_model(front_matter: Mapping[str, object] | None) -> bool:
    """True when the context paragraph the front matter describes was written by a model."""
    ai = (front_matter or {}).get("ai")
    context = ai.get("context") if isinstance(ai, dict) else None
    return isinstance(context, dict) and context.get("status") == "drafted"


def voucher(region: str, front_matter: Mapping[str, object]) -> Voucher:
    """The list is the feeds'; the context is ours when a model wrote it, the feeds' when the template
    only restates the list; any other region holds text from the guide, which is ours."""
    if region in ("further-reading", FRONT_MATTER) or (region == "context" and not drafted_by_model(front_matter)):
        return "feed"
    return "ours"


def hold_for_approval(plan: RegionPlan, on_disk: Mapping[str, str]) -> RegionPlan:
    """In an approved draft a region written from another moves only when its leader does: while the
    list stays, so does the context, so turning a model on or off is not news."""
    for follower, leader in REGION_FOLLOWS.items():
        leader_moves = leader in plan.write and plan.write[leader] != on_disk.get(leader)
        if follower in plan.write and plan.write[follower] != on_disk.get(follower) and not leader_moves:
            plan = plan.hold(follower)
    return plan


@dataclass(frozen=True)
class StatusOutcome:
    """The status part of a run: front matter to write, notes, and the approval to record."""

    front_matter_text: str
    approved: Approval | None
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()


def judge_status(path: Path, status: Status, fm_text: str, last: DraftState, text_before: str,
                 changed: Mapping[str, tuple[str, str]], vouchers: Mapping[str, Voucher], at: str) -> StatusOutcome:
    """What a change means for the review status, region by region.

    `changed` maps each region this run rewrites to (old text, new text). An approved draft stays
    approved through changes the feeds vouch for, each recorded as a change since approval; a change to
    our own prose sends it back to in-review with one note. A draft that became approved (by command or
    by hand) since the last run has its approval recorded now, as the text it had.
    """
    if status != "approved":
        return StatusOutcome(fm_text, None)
    approved = last.approved or Approval(at, text_before)
    changes = last.changes_since_approval if last.approved else ()
    ours = [name for name in changed if vouchers.get(name, "ours") == "ours"]
    if ours:
        what = "AI-drafted context" if ours[0] == "context" else f"region {ours[0]!r}"
        return StatusOutcome(set_front_matter_key(fm_text, "status", "in-review"), None, (), (
            f"{path}: was approved; its {what} changed, so it is back to in-review",))
    recorded = tuple(Change(at, name, summarize_change(name, old, new)) for name, (old, new) in changed.items())
    return StatusOutcome(fm_text, approved, changes + recorded)


def summarize_change(region: str, old: str, new: str) -> str:
    """One line saying what changed in a region, for the list of changes since approval."""
    if region == FRONT_MATTER:
        return "generated keys written again to match the regions"
    if region != "further-reading":
        return "rewritten to follow the Further Reading list"
    before, after = _headlines(old), _headlines(new)
    added, dropped = len([h for h in after if h not in before]), len([h for h in before if h not in after])
    parts = [f"{count} {'story' if count == 1 else 'stories'} {verb}"
             for count, verb in ((added, "added"), (dropped, "dropped")) if count]
    return ", ".join(parts) or "entries reworded or reordered"


def _headlines(region_text: str) -> list[str]:
    return [line[1:].strip() for line in region_text.splitlines() if line.startswith("🔸")]

"""Guides + stored items -> drafts on disk, without ever losing what a reviewer wrote.

`build_drafts` regenerates whole drafts and three-way merges them into reviewed files; with
`regions_only` (what `pipeline refresh` runs) it rewrites only the managed regions. Both remember what they generated in the store,
which is how a hand edit is told apart from the pipeline's own text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import merge3

from .config import Settings
from .drafts import (
    DraftFile,
    blank_regions,
    compose_draft_text,
    fill_regions,
    read_draft,
    remove_stale_temp_files,
    repeated_regions,
    set_front_matter_key,
    split_draft,
    write_atomic,
)
from .errors import DraftError, GuideError, PipelineError
from .fingerprint import BuildInputs, read_bytes
from .guides import guide_paths, load_guide
from .models import Draft, Feed, Guide, Item
from .select import Candidates, select_further_reading
from .store import Store

# Front matter keys the pipeline keeps up to date, unless a reviewer changed them.
GENERATED_KEYS = ("title", "description", "audience", "tags", "keywords", "guide", "max_age_days",
                  "further_reading", "generator", "ai")
REGION_KEYS = {"further-reading": ("further_reading",), "context": ("ai",)}
# A region whose text is written from another one: the context paragraph cites the Further Reading list,
# so when a reviewer's list is kept, the context that matches it is kept too.
REGION_FOLLOWS = {"context": "further-reading"}
STATUSES = ("draft", "in-review", "approved")

# Drafts a model part: (guide, items) -> (context paragraph, provenance for front matter) or None.
ContextDrafter = Callable[[Guide, Sequence[Item]], "tuple[str, dict[str, object]] | None"]


@dataclass(frozen=True)
class DraftReport:
    """What happened to one draft."""

    slug: str
    path: Path
    outcome: str  # created, updated, unchanged, kept, conflict, error
    notes: tuple[str, ...] = ()  # things a person should know, one line each

    @property
    def failed(self) -> bool:
        return self.outcome in ("conflict", "error")


@dataclass(frozen=True)
class BuildReport:
    drafts: tuple[DraftReport, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[DraftReport, ...]:
        return tuple(d for d in self.drafts if d.failed)

    def count(self, outcome: str) -> int:
        return sum(1 for d in self.drafts if d.outcome == outcome)


@dataclass(frozen=True)
class Generation:
    """The draft as the pipeline would write it now, split the way merging needs it."""

    draft: Draft
    skeleton: str  # body with regions emptied

    @property
    def records(self) -> dict[str, str]:
        parts = {"skeleton": self.skeleton, "front_matter": json.dumps(_generated_keys(self.draft.front_matter))}
        parts.update({f"region:{name}": content for name, content in self.draft.regions.items()})
        return parts


def _generated_keys(front_matter: dict[str, object]) -> dict[str, object]:
    return {k: front_matter[k] for k in GENERATED_KEYS if k in front_matter}


def generate(
    settings: Settings,
    guide: Guide,
    items: Sequence[Item],
    feeds: Sequence[Feed],
    now: dt.datetime,
    env: object,
    context_drafter: ContextDrafter | None = None,
    chosen: Sequence[Item] | None = None,
) -> Generation:
    if chosen is None:  # build_drafts selects first, to fingerprint the selection
        chosen = select_further_reading(items, guide, now, {feed.url: feed.tags for feed in feeds})
    context = None
    extra: dict[str, object] = {}
    if context_drafter is not None:
        drafted = context_drafter(guide, chosen)
        if drafted is not None:
            context, extra = drafted
    from .render import render_draft  # Jinja2 loads only when a draft is rendered

    draft = render_draft(env, guide, chosen, settings.output_dir, now, context_paragraph=context)  # type: ignore[arg-type]
    if extra:
        draft.front_matter.update(extra)
    return Generation(draft=draft, skeleton=blank_regions(draft.body))


def _wanted_guide_paths(settings: Settings, only: Sequence[str] | None) -> tuple[list[Path], list[DraftReport]]:
    failures: list[DraftReport] = []
    if not settings.guides_dir.is_dir():  # a wrong --root or folder would otherwise "build 0 drafts" and pass
        raise GuideError(settings.guides_dir, "no guides folder here; check --root (or the current folder), "
                                              "or start a guide with `pipeline new \"TOPIC\"`")
    paths = guide_paths(settings.guides_dir)
    if only:
        wanted = set(only)
        paths = [p for p in paths if p.stem in wanted]
        missing = wanted - {p.stem for p in paths}
        for slug in sorted(missing):
            failures.append(DraftReport(slug, settings.guides_dir / f"{slug}.md", "error",
                                        (f"{settings.guides_dir / (slug + '.md')}: no such guide",)))
    return paths, failures


def build_drafts(
    settings: Settings,
    store: Store,
    feeds: Sequence[Feed],
    now: dt.datetime,
    *,
    force: bool = False,
    only: Sequence[str] | None = None,
    regions_only: bool = False,
    context_drafter: ContextDrafter | None = None,
) -> BuildReport:
    """Render every guide and bring its draft up to date; one bad guide never stops the others."""
    try:
        settings.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a file named output, or a read-only project folder
        raise DraftError(settings.output_dir, f"cannot be made the drafts folder ({exc.strerror or exc}); "
                                              "move away what is in its place or make its parent writable") from exc
    remove_stale_temp_files(settings.output_dir)
    paths, reports = _wanted_guide_paths(settings, only)
    env: object | None = None  # made at the first draft that needs rendering: none when all are skipped
    feed_tags = {feed.url: feed.tags for feed in feeds}
    inputs = BuildInputs.collect(settings.templates_dir, settings.output_dir, settings.model,
                                 "refresh" if regions_only else "build")
    fingerprints = store.fingerprints()
    # One guide at a time, so memory stays flat however many guides there are. Items are read once
    # per age window and selections are shared by guides that differ only in slug and path.
    windows: dict[int, Candidates] = {}
    selections: dict[bytes, list[Item]] = {}  # keyed by a digest, so no guide text is kept
    for guide_path in paths:
        slug = guide_path.stem
        path = settings.output_dir / f"{slug}.md"
        try:
            guide_bytes = read_bytes(guide_path)  # read once: parsed, and hashed for twins and fingerprint
            guide = load_guide(guide_path, guide_bytes)
            if guide.max_age_days not in windows:
                since = now.date() - dt.timedelta(days=guide.max_age_days)
                windows[guide.max_age_days] = Candidates(store.items(since=since), now, guide.max_age_days)
            # Identical files give guides equal but for slug and path; an unreadable one shares nothing.
            twin = hashlib.sha256(guide_bytes).digest() if guide_bytes is not None else slug.encode()
            if twin not in selections:
                selections[twin] = windows[guide.max_age_days].select(guide, feed_tags)
            chosen = selections[twin]
            digest = inputs.draft(guide_path, chosen, read_bytes(path), guide_bytes)
            if not force and fingerprints.get(slug) == digest:
                reports.append(DraftReport(slug, path, "unchanged"))  # inputs and file as last written
                continue
            if env is None:
                from .render import make_environment

                env = make_environment(settings.templates_dir)
            generation = generate(settings, guide, (), feeds, now, env, context_drafter, chosen=chosen)
            existing = read_draft(path)
            if regions_only and existing is None:
                continue  # refresh only maintains drafts that `build` created
            report = _update(store, slug, path, generation, existing, now, force=force,
                             regions_only=regions_only)
            # Only a clean outcome may be skipped next time: notes must keep reaching a person.
            clean = report.outcome in ("created", "updated", "unchanged") and not report.notes
            store.save_fingerprint(slug, inputs.draft(guide_path, chosen, read_bytes(path), guide_bytes)
                                   if clean else None)
        except PipelineError as exc:
            report = DraftReport(slug, path, "error", (exc.message,))
        reports.append(report)
    return BuildReport(tuple(reports))


def _update(
    store: Store,
    slug: str,
    path: Path,
    generation: Generation,
    existing: DraftFile | None,
    now: dt.datetime,
    *,
    force: bool,
    regions_only: bool,
) -> DraftReport:
    draft = generation.draft
    records = store.generated(slug)
    if existing is None or (force and not regions_only):
        return _write_whole(store, slug, path, generation, existing)

    repeats = repeated_regions(existing.body)
    if repeats:
        line, name = repeats[0]
        line += existing.text.count("\n") - existing.body.count("\n")  # body line -> file line
        return DraftReport(slug, path, "error", (
            f"{path}:{line}: region {name!r} appears twice; draft left untouched (keep one copy of its "
            "markers and move your text outside them, or use `build --force` to regenerate)",))

    status, status_note = review_status(existing.front_matter)
    notes: list[str] = [f"{path}: {status_note}"] if status_note else []
    if status == "approved" and not regions_only and not force:
        return DraftReport(slug, path, "kept", (*notes, f"{path}: approved; body left alone (use --force to regenerate)"))

    # Regions: replaced unless a reviewer edited them since the pipeline last wrote them.
    on_disk = existing.regions
    regions: dict[str, str] = {}
    left_alone: set[str] = set()
    # Leaders first, so a follower knows whether its leader was kept.
    order = sorted(draft.regions, key=lambda name: name in REGION_FOLLOWS)
    for name in order:
        content = draft.regions[name]
        if name not in on_disk:
            notes.append(f"{path}: region {name!r} markers are missing; region not updated "
                         "(restore the markers, or use `build --force` to regenerate)")
            left_alone.add(name)
            continue
        last = records.get(f"region:{name}")
        leader = REGION_FOLLOWS.get(name)
        if leader in left_alone and on_disk[name] != content:
            notes.append(f"{path}: region {name!r} cites region {leader!r}, which was left alone; "
                         "left alone too")
            left_alone.add(name)
        elif force or on_disk[name] == content or on_disk[name] == last:
            regions[name] = content
        elif last is None:
            # Without a record we cannot tell a hand edit from our own text, so we keep the words.
            notes.append(f"{path}: region {name!r}: no record of what the pipeline last wrote there (new "
                         "store?); left alone (use --force to replace it)")
            left_alone.add(name)
        else:
            notes.append(f"{path}: region {name!r} was edited by hand; left alone (use --force to replace it)")
            left_alone.add(name)

    # Everything outside the regions: three-way merge of last generation, reviewer's file, new generation.
    ours = blank_regions(existing.body)
    base = records.get("skeleton")
    if regions_only:
        skeleton = ours
    elif base is None:
        skeleton = ours
        notes.append(f"{path}: no record of the last generation (new store?); only managed regions "
                     "updated; use --force to regenerate")
    else:
        merged = _merge(base, ours, generation.skeleton)
        if merged is None:
            return DraftReport(slug, path, "conflict", (
                f"{path}: reviewer edits conflict with the changed guide or templates; draft left untouched "
                "(resolve by hand, or use --force to regenerate)",))
        skeleton = merged
    # Filling the reviewer's own body (not the merged skeleton) when only regions move keeps every
    # other byte exactly as it was, blank lines inside untouched regions included.
    if skeleton == ours:
        body = fill_regions(existing.body, regions)
    else:
        kept = {name: on_disk[name] for name in left_alone if name in on_disk}
        body = fill_regions(skeleton, {**kept, **regions})

    # Front matter: generated keys follow the generation unless a reviewer changed them.
    fm_text = existing.front_matter_text
    front_recorded = "front_matter" in records
    last_front = json.loads(records["front_matter"]) if front_recorded else {}
    owned_by_kept_region = {key for name in left_alone for key in REGION_KEYS.get(name, ())}
    region_keys = {key for keys in REGION_KEYS.values() for key in keys}
    keys = [k for k in GENERATED_KEYS if k in draft.front_matter]
    if regions_only:
        keys = [k for k in keys if k in region_keys]
    for key in keys:
        if key in owned_by_kept_region:
            continue
        current = existing.front_matter.get(key)
        in_file = key in existing.front_matter
        # A key that follows a region (further_reading) comes back with its region; any other key a
        # reviewer deleted stays deleted, as a reviewer's change of its value stays.
        deletable = key not in region_keys
        reviewer_changed = key in last_front and (current != last_front[key] if in_file else deletable)
        if reviewer_changed and not (force and key in region_keys):
            continue  # a reviewer changed it: theirs
        unknown = not front_recorded and (current != draft.front_matter[key] if in_file else deletable)
        if unknown and not (force and key in region_keys):
            # Without a record a reviewer's value cannot be told from an old generation: keep it.
            notes.append(f"{path}: front matter {key!r}: no record of what the pipeline last wrote there (new "
                         "store?); left alone (use --force to replace it)")
            continue
        if current != draft.front_matter[key]:
            fm_text = set_front_matter_key(fm_text, key, draft.front_matter[key])

    changed_body = body != existing.body
    if fm_text != existing.front_matter_text or changed_body:
        if status == "approved":  # front matter alone counts too: an approved draft never changes silently
            fm_text = set_front_matter_key(fm_text, "status", "in-review")
            notes.append(f"{path}: was approved; news changed it, so it is back to in-review")
        fm_text = set_front_matter_key(fm_text, "lastmod", draft.front_matter["lastmod"])
        text = existing.with_changes(fm_text, body)
        split_draft(path, text)  # never write a draft we could not read back
        if not _write_unless_changed_meanwhile(path, existing, text):
            return DraftReport(slug, path, "kept", (
                f"{path}: changed on disk while the pipeline worked on it; left alone until the next run",))
        outcome = "updated"
    else:
        outcome = "unchanged"

    # Records say what the pipeline last wrote: a region it left alone keeps its old record, so a
    # reviewer who undoes their edit hands the region back to the pipeline.
    records_out = generation.records
    for name in left_alone:
        records_out.pop(f"region:{name}", None)
    generated_front = _generated_keys(draft.front_matter)
    kept_front = dict(last_front)
    for key, value in generated_front.items():
        if key in owned_by_kept_region or (regions_only and key not in region_keys):
            continue
        kept_front[key] = value
    records_out["front_matter"] = json.dumps(kept_front)
    if regions_only:
        records_out.pop("skeleton")  # refresh never moves the merge base: only `build` regenerates it
    store.save_generated(slug, records_out)
    return DraftReport(slug, path, outcome, tuple(notes))


def _write_whole(
    store: Store, slug: str, path: Path, generation: Generation, existing: DraftFile | None
) -> DraftReport:
    """A new draft, or `build --force`: the generation as it is, keeping only date and status."""
    draft = generation.draft
    front = dict(draft.front_matter)
    notes: list[str] = []
    if existing is not None:
        front["date"] = existing.front_matter.get("date", front["date"])
        status, _ = review_status(existing.front_matter)
        front["status"] = "in-review" if status == "approved" else status
        # Same text but for lastmod is no change: lastmod moves only when something else did.
        same = dict(front, lastmod=existing.front_matter.get("lastmod", front["lastmod"]))
        if compose_draft_text(same, draft.body) == existing.text:
            store.save_generated(slug, generation.records)
            return DraftReport(slug, path, "unchanged")
        notes.append(f"{path}: regenerated with --force; hand edits replaced")
        if status == "approved":
            notes.append(f"{path}: was approved; regenerated, so it is back to in-review")
    text = compose_draft_text(front, draft.body)
    if existing is None:
        write_atomic(path, text)
    elif not _write_unless_changed_meanwhile(path, existing, text):
        return DraftReport(slug, path, "kept", (
            f"{path}: changed on disk while the pipeline worked on it; left alone until the next run",))
    store.save_generated(slug, generation.records)
    return DraftReport(slug, path, "created" if existing is None else "updated", tuple(notes))


def _write_unless_changed_meanwhile(path: Path, existing: DraftFile, text: str) -> bool:
    """Write `text` unless a reviewer saved the file since we read it; their save wins."""
    try:
        now_on_disk = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        now_on_disk = None
    if now_on_disk != existing.text:
        return False
    write_atomic(path, text, existing.newline)
    return True


def review_status(front_matter: dict[str, object]) -> tuple[str, str | None]:
    """The status the pipeline acts on, and a note when the file's value is not one of STATUSES.

    A hand-typed 'Approved' means approved; anything else unknown ('aproved', 'final') is treated as
    approved too, because wrongly protecting a draft costs a note and wrongly changing one breaks a promise.
    """
    raw = front_matter.get("status", "draft")
    status = str(raw).strip().lower()
    if status in STATUSES:
        return status, None
    return "approved", f"unknown status {raw!r}; treated as approved (use one of {', '.join(STATUSES)})"


def _merge(base: str, ours: str, theirs: str) -> str | None:
    """Line-based three-way merge; None on conflict."""
    merger = merge3.Merge3(base.splitlines(True), ours.splitlines(True), theirs.splitlines(True))
    if any(group[0] == "conflict" for group in merger.merge_groups()):
        return None
    return "".join(merger.merge_lines())


def set_status(path: Path, status: str) -> bool:
    """Move a draft along draft -> in-review -> approved; True when the file changed."""
    if status not in STATUSES:
        raise DraftError(path, f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    existing = read_draft(path)
    if existing is None:
        raise DraftError(path, "no such draft; run `pipeline build` first")
    if existing.front_matter.get("status") == status:
        return False
    fm_text = set_front_matter_key(existing.front_matter_text, "status", status)
    write_atomic(path, existing.with_changes(fm_text, existing.body), existing.newline)
    return True

"""Guides + stored items -> drafts on disk, without ever losing what a reviewer wrote.

`build_drafts` regenerates whole drafts and three-way merges them into reviewed files;
`refresh_drafts` rewrites only the managed regions. Both remember what they generated in the store,
which is how a hand edit is told apart from the pipeline's own text.
"""

from __future__ import annotations

import datetime as dt
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
    set_front_matter_key,
    split_draft,
    write_atomic,
)
from .errors import DraftError, PipelineError
from .guides import guide_paths, load_guide
from .models import Draft, Feed, Guide, Item
from .render import make_environment, render_draft
from .select import select_further_reading
from .store import Store

# Front matter keys the pipeline keeps up to date, unless a reviewer changed them.
GENERATED_KEYS = ("title", "description", "audience", "tags", "keywords", "guide", "max_age_days",
                  "further_reading", "generator", "ai")
REGION_KEYS = {"further-reading": ("further_reading",), "context": ("ai",)}
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
) -> Generation:
    feed_tags = {feed.url: feed.tags for feed in feeds}
    chosen = select_further_reading(items, guide, now.date(), feed_tags)
    context = None
    extra: dict[str, object] = {}
    if context_drafter is not None:
        drafted = context_drafter(guide, chosen)
        if drafted is not None:
            context, extra = drafted
    draft = render_draft(env, guide, chosen, settings.output_dir, now, context_paragraph=context)  # type: ignore[arg-type]
    if extra:
        draft.front_matter.update(extra)
    return Generation(draft=draft, skeleton=blank_regions(draft.body))


def _load_guides(settings: Settings, only: Sequence[str] | None) -> tuple[list[Guide], list[DraftReport]]:
    guides: list[Guide] = []
    failures: list[DraftReport] = []
    paths = guide_paths(settings.guides_dir)
    if only:
        wanted = set(only)
        paths = [p for p in paths if p.stem in wanted]
        missing = wanted - {p.stem for p in paths}
        for slug in sorted(missing):
            failures.append(DraftReport(slug, settings.guides_dir / f"{slug}.md", "error",
                                        (f"{settings.guides_dir / (slug + '.md')}: no such guide",)))
    for path in paths:
        try:
            guides.append(load_guide(path))
        except PipelineError as exc:
            failures.append(DraftReport(path.stem, settings.output_dir / f"{path.stem}.md", "error", (exc.message,)))
    return guides, failures


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
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(settings.output_dir)
    guides, reports = _load_guides(settings, only)
    env = make_environment(settings.templates_dir)
    oldest = min((now.date() - dt.timedelta(days=g.max_age_days) for g in guides), default=None)
    items = store.items(since=oldest)
    for guide in guides:
        path = settings.output_dir / f"{guide.slug}.md"
        try:
            generation = generate(settings, guide, items, feeds, now, env, context_drafter)
            existing = read_draft(path)
            if regions_only and existing is None:
                continue  # refresh only maintains drafts that `build` created
            report = _update(store, guide.slug, path, generation, existing, now, force=force,
                             regions_only=regions_only)
        except PipelineError as exc:
            report = DraftReport(guide.slug, path, "error", (exc.message,))
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
        front = dict(draft.front_matter)
        notes: list[str] = []
        if existing is not None:
            front["date"] = existing.front_matter.get("date", front["date"])
            status = str(existing.front_matter.get("status", "draft"))
            front["status"] = "in-review" if status == "approved" else status
            notes.append(f"{path}: regenerated with --force; hand edits replaced")
        text = compose_draft_text(front, draft.body)
        if existing is not None and existing.text == text:
            store.save_generated(slug, generation.records)
            return DraftReport(slug, path, "unchanged")
        write_atomic(path, text)
        store.save_generated(slug, generation.records)
        return DraftReport(slug, path, "created" if existing is None else "updated", tuple(notes))

    status = str(existing.front_matter.get("status", "draft"))
    if status == "approved" and not regions_only and not force:
        return DraftReport(slug, path, "kept", (f"{path}: approved; body left alone (use --force to regenerate)",))

    notes = []
    # Regions: replaced unless a reviewer edited them since the pipeline last wrote them.
    on_disk = existing.regions
    regions: dict[str, str] = {}
    hand_edited: set[str] = set()
    for name, content in draft.regions.items():
        if name not in on_disk:
            notes.append(f"{path}: region {name!r} markers are missing; region not updated")
            hand_edited.add(name)
            continue
        last = records.get(f"region:{name}")
        if not force and last is not None and on_disk[name] != last and on_disk[name] != content:
            notes.append(f"{path}: region {name!r} was edited by hand; left alone (use --force to replace it)")
            hand_edited.add(name)
            regions[name] = on_disk[name]
        else:
            regions[name] = content

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
        skeleton = _merge(path, base, ours, generation.skeleton)
        if skeleton is None:
            return DraftReport(slug, path, "conflict", (
                f"{path}: reviewer edits conflict with the changed guide or templates; draft left untouched "
                "(resolve by hand, or use --force to regenerate)",))
    body = fill_regions(skeleton, regions)

    # Front matter: generated keys follow the generation unless a reviewer changed them.
    fm_text = existing.front_matter_text
    last_front = json.loads(records["front_matter"]) if "front_matter" in records else {}
    owned_by_region = {key for name in hand_edited for key in REGION_KEYS.get(name, ())}
    keys = [k for k in GENERATED_KEYS if k in draft.front_matter]
    if regions_only:
        keys = [k for k in keys if k in {"further_reading", "ai"}]
    for key in keys:
        if key in owned_by_region:
            continue
        current = existing.front_matter.get(key)
        if key in existing.front_matter and key in last_front and current != last_front[key]:
            continue  # a reviewer changed it: theirs
        if current != draft.front_matter[key]:
            fm_text = set_front_matter_key(fm_text, key, draft.front_matter[key])

    changed_body = body != existing.body
    if fm_text != existing.front_matter_text or changed_body:
        if status == "approved" and changed_body:
            fm_text = set_front_matter_key(fm_text, "status", "in-review")
            notes.append(f"{path}: was approved; news changed it, so it is back to in-review")
        fm_text = set_front_matter_key(fm_text, "lastmod", draft.front_matter["lastmod"])
        text = f"---\n{fm_text}---\n\n{body}"
        split_draft(path, text)  # never write a draft we could not read back
        write_atomic(path, text)
        outcome = "updated"
    else:
        outcome = "unchanged"
    records_out = generation.records
    if regions_only:
        # Refresh moves neither the merge base nor the record of guide-owned front matter keys.
        records_out.pop("skeleton")
        kept = dict(last_front)
        kept.update({k: v for k, v in _generated_keys(draft.front_matter).items() if k in {"further_reading", "ai"}})
        records_out["front_matter"] = json.dumps(kept)
    store.save_generated(slug, records_out)
    return DraftReport(slug, path, outcome, tuple(notes))


def _merge(path: Path, base: str, ours: str, theirs: str) -> str | None:
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
    write_atomic(path, f"---\n{fm_text}---\n\n{existing.body}")
    return True

"""Guides + stored items -> drafts on disk, without ever losing what a reviewer wrote.

`build_drafts` regenerates whole drafts and three-way merges them into reviewed files; with
`regions_only` (what `pipeline refresh` runs) it rewrites only the managed regions. Both remember what they generated in the store,
which is how a hand edit is told apart from the pipeline's own text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import cast

from . import manifest
from .config import Settings, guide_paths, now_utc
from .drafts import (
    DraftFile,
    after_write,
    batched_writes,
    blank_regions,
    compose_draft_text,
    fill_regions,
    read_draft,
    remove_stale_temp_files,
    repeated_regions,
    set_front_matter_key,
    split_draft,
    write_atomic,
    written_digest,
)
from .entries import CHOICES_KEY, arrange, entry_items, read_choices, read_list, story_entries, write_choices
from .errors import ChoicesError, DraftError, GuideError, PipelineError, StoreError
from .fingerprint import BuildInputs, GuideInputs, files_digest, read_bytes
from .guides import load_guide
from .models import BuildReport, Draft, DraftReport, Feed, Guide, Item, LinkVerdicts, ListChoices
from .pause import pause_active
from .policy import (
    FRONT_MATTER,
    REGION_FOLLOWS,
    STATUSES,
    RegionPlan,
    RegionStrategy,
    Status,
    decide_regions,
    entry_list_region,
    drafted_by_model,
    hold_for_approval,
    judge_status,
    voucher,
    generated_keys,
    merge_body,
    merge_front_matter,
    review_status,
)
from .publish import follow_status, publish_keys
from .select import Candidates, select_further_reading
from .state import (
    STATE_DIR,
    Approval,
    DraftState,
    Listing,
    load_state,
    save_state,
    stamp,
    state_path,
    text_sha256,
    write_with_state,
)
from .store import Store, open_store
from .workers import can_fork, with_child

# Region -> its own merge strategy (e.g. the Further Reading list, entry by entry); any other region is
# replaced or left alone whole (`policy.whole_region`).
REGION_STRATEGIES: dict[str, RegionStrategy] = {}
NO_RECORD = ("{path}: no record of what the pipeline last wrote here (a draft made by hand, or by an older "
             "pipeline without its store); every word kept, nothing updated (use `build --force` to "
             "regenerate it, or `refresh --force` to replace its regions)")

# Drafts a model part: (guide, items) -> (context paragraph, provenance for front matter) or None.
ContextDrafter = Callable[[Guide, Sequence[Item]], "tuple[str, dict[str, object]] | None"]


@dataclass(frozen=True)
class Generation:
    """The draft as the pipeline would write it now, split the way merging needs it."""

    draft: Draft
    skeleton: str  # body with regions emptied


def generate(
    settings: Settings,
    guide: Guide,
    items: Sequence[Item],
    feeds: Sequence[Feed],
    now: dt.datetime,
    env: object,
    context_drafter: ContextDrafter | None = None,
    chosen: Sequence[Item] | None = None,
    front_extra: dict[str, object] | None = None,
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

    draft = render_draft(env, guide, chosen, settings.output_dir, now, context_paragraph=context,  # type: ignore[arg-type]
                         site=settings.site)
    draft.front_matter.update(front_extra or {})
    if extra:
        draft.front_matter.update(extra)
    return Generation(draft=draft, skeleton=blank_regions(draft.body))


def _generation(settings: Settings, guide: Guide, listing: ListPlan, feeds: Sequence[Feed], now: dt.datetime,
                env: object, drafter: ContextDrafter | None, path: Path, existing: DraftFile | None,
                last: DraftState | None, *, force: bool, regions_only: bool) -> Generation:
    """The draft as it would be written now; the model drafts its context only where that text is used."""
    chosen, extra = listing.items, listing.front_matter
    generation = generate(settings, guide, (), feeds, now, env, None, chosen=chosen, front_extra=extra)
    if drafter is not None and context_wanted(path, generation, existing, last, listing, force=force,
                                              regions_only=regions_only):
        generation = generate(settings, guide, (), feeds, now, env, drafter, chosen=chosen, front_extra=extra)
    return generation


def _files_digest(settings: Settings, slug: str) -> tuple[bytes | None, str | None]:
    """A draft's bytes (None: no draft) and the digest of its files as they are on disk."""
    draft = read_bytes(settings.output_dir / f"{slug}.md")
    if draft is None:
        return None, None
    return draft, files_digest(draft, read_bytes(state_path(settings.output_dir, slug)))


def _fingerprint(recorded: dict[str, str | None], settings: Settings, path: Path, guide: GuideInputs,
                 chosen: list[Item], clean: bool) -> None:
    # Only a clean outcome may be skipped next time: notes must keep reaching a person. What was just
    # put in place is not read back: the batch hashed it as it wrote it.
    slug = path.stem
    if not clean:
        recorded[slug] = None
        return
    files = written_digest(path) or _files_digest(settings, slug)[1]
    recorded[slug] = guide.draft(chosen, files)


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


@dataclass(frozen=True)
class BuildRun:
    """What every draft of one run shares, worked out once (before a second process is forked)."""

    settings: Settings
    feeds: Sequence[Feed]
    now: dt.datetime
    force: bool
    regions_only: bool
    context_drafter: ContextDrafter | None
    links: LinkVerdicts | None
    inputs: BuildInputs
    fingerprints: dict[str, str]
    on_disk: Listing


# Guides from which a build shares its drafts with a second process: below it, forking costs more
# than the second core saves.
SHARED_FROM = 200


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
    links: LinkVerdicts | None = None,
    processes: int | None = None,
    shortcut: manifest.Shortcut | None = None,
) -> BuildReport:
    """Render every guide and bring its draft up to date; one bad guide never stops the others.

    `links` (from link health) names links never to list (dead) and links that moved (the entry
    takes the new URL). Drafts and their states are written as a batch made durable with one sync
    (drafts.DraftBatch); what follows a draft's write waits until the draft is in place. A draft a
    reviewer saved meanwhile is left alone, and reported so. A large build shares its guides with a
    forked second process (`processes`: 1 or 2; None decides by size, see `_processes`). A run with
    nothing changed since the last clean one reports every draft unchanged at once (`shortcut`, as
    `manifest.check` works it out; given, when the caller has looked already).
    """
    _prepare_output(settings)
    paths, failures = _wanted_guide_paths(settings, only)
    if shortcut is None:
        shortcut = manifest.check(settings, store, feeds, now, regions_only=regions_only,
                                  eligible=not (force or only or context_drafter), links=links)
    if shortcut.report is not None:
        return shortcut.report  # nothing changed since the last clean run
    run = BuildRun(settings, tuple(feeds), now, force, regions_only, context_drafter, links, shortcut.inputs,
                   shortcut.fingerprints, Listing.of(settings.output_dir))
    loaded = _Loaded()
    if _processes(run, len(paths), processes) > 1:
        loaded.warm(run, store, paths[0])  # once, here: the forked process finds it made
        half = (len(paths) + 1) // 2  # each process writes its own drafts: no file is written by both
        (theirs, their_records), (reports, recorded) = with_child(
            partial(_build_share, run, None, paths[half:], loaded), partial(_build_share, run, store, paths[:half], loaded))
        reports += theirs
        recorded.update(their_records)
    else:
        reports, recorded = _build_share(run, store, paths, loaded)
    clean = not failures and all(d.outcome in ("created", "updated", "unchanged") and not d.notes for d in reports)
    recorded[manifest.RECORD_KEYS[shortcut.mode]] = (manifest.record(shortcut.key, manifest.stamps(settings, paths))
                                                     if shortcut.key and clean else None)
    store.save_fingerprints(recorded)  # one transaction; a run killed before it only rebuilds more next time
    return BuildReport(tuple(failures + reports))


def _processes(run: BuildRun, guides: int, wanted: int | None) -> int:
    """Two processes for a large build on a machine with two cores, one otherwise: and always one
    with a model (its calls, cache and notes belong to this process) or a test's pause hook."""
    if not hasattr(os, "fork") or run.context_drafter is not None or pause_active():
        return 1
    if wanted is not None:
        return max(1, min(2, wanted))
    return 2 if guides >= SHARED_FROM and can_fork() else 1


class _Loaded:
    """What drafts share and a run works out once: the items of each age window, selections of
    guides that differ only in slug and path, the templates. Before a second process is forked the
    templates and the first guide's window are made, so that it starts from them (and, when every
    guide shares that window, never opens the store)."""

    def __init__(self) -> None:
        self.windows: dict[int, Candidates] = {}
        # Keyed by a digest (so no guide text is kept) and the links the draft's reviewers excluded.
        self.selections: dict[tuple[bytes, frozenset[str]], list[Item]] = {}
        self.env: object | None = None  # made at the first draft that needs rendering
        self.empty_list = ""  # the Further Reading the templates write when no story matched

    def window(self, run: BuildRun, store: Store, max_age_days: int) -> Candidates:
        if max_age_days not in self.windows:
            since = run.now.date() - dt.timedelta(days=max_age_days)
            self.windows[max_age_days] = Candidates(store.items(since=since), run.now, max_age_days)
        return self.windows[max_age_days]

    def warm(self, run: BuildRun, store: Store, guide_path: Path) -> None:
        """The templates, and the window of the first guide (most sites give every guide the same
        age window); a broken guide is left for the build to report."""
        self.templates(run)
        try:
            self.window(run, store, load_guide(guide_path).max_age_days)
        except GuideError:
            pass

    def templates(self, run: BuildRun) -> object:
        if self.env is None:
            from .render import make_environment, render_further_reading

            self.env = make_environment(run.settings.templates_dir)
            self.empty_list = render_further_reading(self.env, [])
        return self.env


class _StoreWhenNeeded:
    """The store, opened at its first use: a forked process that finds all it needs loaded never
    connects (its parent's connection is not its to use)."""

    def __init__(self, location: str | Path) -> None:
        self._location = location
        self._store: Store | None = None

    def __getattr__(self, name: str) -> object:
        if self._store is None:
            self._store = open_store(self._location)
        return getattr(self._store, name)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _build_share(run: BuildRun, store: Store | None, paths: Sequence[Path],
                 loaded: _Loaded) -> tuple[list[DraftReport], dict[str, str | None]]:
    """The drafts of `paths`, written as one batch, and their fingerprints to record. With `store`
    None (a forked process), the store is opened anew, when first needed."""
    if store is None:
        own = _StoreWhenNeeded(run.settings.store_location)
        try:
            return _build_share(run, cast(Store, own), paths, loaded)
        finally:
            own.close()
    recorded: dict[str, str | None] = {}  # slug -> fingerprint, once its draft is in place
    with batched_writes() as batch:
        reports = _build_drafts(run, store, paths, recorded, loaded)
        left = batch.commit()
    return [DraftReport(d.slug, d.path, left[d.path][0], (f"{d.path}: {left[d.path][1]}",)) if d.path in left else d
            for d in reports], recorded


def _prepare_output(settings: Settings) -> None:
    try:
        settings.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a file named output, or a read-only project folder
        raise DraftError(settings.output_dir, f"cannot be made the drafts folder ({exc.strerror or exc}); "
                                              "move away what is in its place or make its parent writable") from exc
    remove_stale_temp_files(settings.output_dir)
    remove_stale_temp_files(settings.output_dir / STATE_DIR)


def _build_drafts(run: BuildRun, store: Store, paths: Sequence[Path], recorded: dict[str, str | None],
                  loaded: _Loaded) -> list[DraftReport]:
    settings, now, links = run.settings, run.now, run.links
    reports: list[DraftReport] = []
    feed_tags = {feed.url: feed.tags for feed in run.feeds}
    selections = loaded.selections
    # One guide at a time, so memory stays flat however many guides there are.
    for guide_path in paths:
        slug = guide_path.stem
        path = settings.output_dir / f"{slug}.md"
        try:
            guide_bytes = read_bytes(guide_path)  # read once: parsed, and hashed for twins and fingerprint
            guide = load_guide(guide_path, guide_bytes)
            window = loaded.window(run, store, guide.max_age_days)
            draft_bytes, files = _files_digest(settings, slug) if run.on_disk.has_draft(slug) else (None, None)
            remembered = _remembered_choices(path, draft_bytes)
            # Identical files give guides equal but for slug and path; an unreadable one shares nothing.
            twin = hashlib.sha256(guide_bytes).digest() if guide_bytes is not None else slug.encode()
            passed_over = _passed_over(remembered)

            def choose(excluded: frozenset[str], guide: Guide = guide, window: Candidates = window) -> list[Item]:
                """The guide's stories past `excluded` and dead links, listed under the links they moved to."""
                chosen_now = window.select(guide, feed_tags, excluded | links.dead if links else excluded)
                return links.follow(chosen_now) if links else chosen_now

            if (twin, passed_over) not in selections:
                selections[twin, passed_over] = choose(passed_over)
            chosen = selections[twin, passed_over]
            guide_inputs = run.inputs.guide(guide_path, guide_bytes)
            digest = guide_inputs.draft(chosen, files)
            if not run.force and run.fingerprints.get(slug) == digest:
                reports.append(DraftReport(slug, path, "unchanged"))  # inputs and file as last written
                continue
            existing = read_draft(path) if draft_bytes is not None else None
            if run.regions_only and existing is None:
                continue  # refresh only maintains drafts that `build` created
            env = loaded.templates(run)
            last = last_written(store, settings.output_dir, slug, existing is not None, run.on_disk)
            listing = plan_list(loaded.empty_list, existing, last.regions.get("further-reading") if last else None,
                                remembered, choose, guide.further_reading_count, chosen)
            generation = _generation(settings, guide, listing, run.feeds, now, env, run.context_drafter,
                                     path, existing, last, force=run.force, regions_only=run.regions_only)
            report = _update(slug, path, generation, existing, last, listing, stamp(now), force=run.force,
                             regions_only=run.regions_only, site=settings.site)
            # Only a clean outcome may be skipped next time. The selection fingerprinted is the one the
            # next run makes from the reviewer choices written now.
            clean = report.outcome in ("created", "updated", "unchanged") and not report.notes
            after_write(path, partial(_fingerprint, recorded, settings, path, guide_inputs, listing.selection, clean))
        except StoreError:
            raise  # the store is gone (e.g. the server stopped): stop the run, with one line
        except PipelineError as exc:
            report = DraftReport(slug, path, "error", (exc.message,))
        reports.append(report)
    return reports


def last_written(store: Store, output_dir: Path, slug: str, on_disk: bool = True,
                 listing: Listing | None = None) -> DraftState | None:
    """What the pipeline last wrote into a draft: its state file, else (a draft made by an older
    pipeline) the store's record, which the next write turns into a state file (`on_disk`: whether
    the draft exists; a draft that does not has no old record to carry over)."""
    state = load_state(output_dir, slug, listing)
    if (state is not None and state.has_record) or not on_disk:
        return state
    records = store.generated(slug)
    if not records:
        return state
    regions = {part.removeprefix("region:"): text for part, text in records.items() if part.startswith("region:")}
    front = json.loads(records["front_matter"]) if "front_matter" in records else None
    return replace(state or DraftState(), regions=regions, skeleton=records.get("skeleton"), front_matter=front)


# -- the Further Reading list, entry by entry ----------------------------------------------------


@dataclass(frozen=True)
class ListPlan:
    """This run's Further Reading for one draft, laid out from its reviewers' choices."""

    items: list[Item]  # the list to write, as the templates render it (fixes applied, pins first)
    selection: list[Item]  # the stories chosen past this draft's exclusions and pins
    front_matter: dict[str, object]  # {further_reading_choices: ...} to write, or nothing
    unreadable: tuple[int, str] | None = None  # (file line, why): the list on disk is not all entries
    notes: tuple[str, ...] = ()


def reviewer_passed_over(path: Path) -> frozenset[str]:
    """The links a draft's reviewers removed from its Further Reading or pinned there (the draft at
    `path`, if any): selection passes them over, as a build does."""
    return _passed_over(_remembered_choices(path, read_bytes(path)))


def _passed_over(choices: ListChoices) -> frozenset[str]:
    """Links the selection skips: excluded by a reviewer, or pinned (a pin is listed first anyway)."""
    return frozenset((*choices.exclude, *choices.pinned))


def _remembered_choices(path: Path, draft_bytes: bytes | None) -> ListChoices:
    """Front matter further_reading_choices, read before selecting (most drafts have none: no parse)."""
    if draft_bytes is None or CHOICES_KEY.encode() not in draft_bytes:
        return ListChoices()
    return _choices_of(read_draft(path))


def _choices_of(existing: DraftFile | None) -> ListChoices:
    if existing is None:
        return ListChoices()
    try:
        return read_choices(existing.front_matter.get(CHOICES_KEY))
    except ChoicesError as exc:
        at = existing.front_matter_text.split("\n")
        line = next((n + 2 for n, text in enumerate(at) if text.startswith(f"{CHOICES_KEY}:")), None)
        raise DraftError(existing.path, f"front matter {CHOICES_KEY}: {exc.message}; fix it by hand (see "
                                        "README, Editing Further Reading); draft left untouched", line) from exc


def plan_list(empty_list: str, existing: DraftFile | None, last_list: str | None, remembered: ListChoices,
              choose: Callable[[frozenset[str]], list[Item]], count: int, chosen: list[Item]) -> ListPlan:
    """Read the list on disk against the one last written (`last_list`, None: no record), then lay
    out the next one (entries.arrange).

    `empty_list` is what the templates write when no story matched: a list without entries; `choose`
    selects the guide's stories past some links; `chosen` is what it gave for the remembered choices.
    """
    on_disk = existing.regions.get("further-reading") if existing is not None else None
    reading = read_list(on_disk, last_list, remembered, empty_list)
    passed_over = _passed_over(reading.choices)
    if passed_over != _passed_over(remembered):  # the reviewer deleted or added an entry just now
        chosen = choose(passed_over)
    laid_out = arrange(reading.choices, reading.current, story_entries(chosen), count)
    written = write_choices(laid_out.choices)
    had_key = existing is not None and CHOICES_KEY in existing.front_matter
    unreadable = None
    if reading.unreadable is not None and existing is not None and on_disk is not None:
        line, why = reading.unreadable
        unreadable = (_list_file_line(existing) + line, why)
    notes = tuple(f"{existing.path if existing else 'draft'}: {CHOICES_KEY} pins {link}, which is neither in the list nor among the stories; "
                  "add its entry to the list, or remove the pin" for link in laid_out.unresolved_pins)
    return ListPlan(entry_items(laid_out.entries, chosen), chosen,
                    {CHOICES_KEY: written} if written or had_key else {}, unreadable, notes)


def _list_file_line(existing: DraftFile) -> int:
    """The file line of the further-reading begin marker (the list's line 1 is the next one)."""
    at = existing.text.find("<!-- pipeline:begin further-reading -->")
    return existing.text.count("\n", 0, at) + 1


def _repeated_region(path: Path, existing: DraftFile) -> str | None:
    repeats = repeated_regions(existing.body)
    if not repeats:
        return None
    line, name = repeats[0]
    line += existing.text.count("\n") - existing.body.count("\n")  # body line -> file line
    return (f"{path}:{line}: region {name!r} appears twice; draft left untouched (keep one copy of its "
            "markers and move your text outside them, or use `build --force` to regenerate)")


def plan_regions(path: Path, generation: Generation, existing: DraftFile, last: DraftState, status: Status,
                 listing: ListPlan, *, force: bool, regions_only: bool) -> RegionPlan:
    """The regions policy for one draft, approval included (see `policy.decide_regions`); the list is
    merged entry by entry (`plan_list` laid it out from the reviewer's choices)."""
    strategies = {**REGION_STRATEGIES, "further-reading": entry_list_region(listing.unreadable)}
    plan = decide_regions(path, generation.draft.regions, existing.regions, last.regions, force=force,
                          strategies=strategies)
    if status == "approved" and regions_only:
        plan = hold_for_approval(plan, existing.regions)
    return plan


def context_wanted(path: Path, offline: Generation, existing: DraftFile | None, last: DraftState | None,
                   listing: ListPlan, *, force: bool, regions_only: bool) -> bool:
    """Whether a model's context paragraph would be used, decided before anyone asks the model.

    `offline` is the generation with the template's context. The model is asked only for a region the
    run will write: not for a hand-edited context or one that follows a kept list, not for an approved
    draft whose body `build` keeps, nor while an approved draft's list stays the same; and an approved
    draft whose context the template wrote keeps a template context (turning a model on is not news).
    """
    if existing is None or (force and not regions_only):
        return True
    status, _ = review_status(existing.front_matter)
    if status == "approved" and (not regions_only or not drafted_by_model(last.front_matter if last else None)):
        return False
    if last is None or not last.has_record:
        return force
    plan = plan_regions(path, offline, existing, last, status, listing, force=force, regions_only=regions_only)
    return "context" in plan.write and REGION_FOLLOWS["context"] not in plan.kept


def _update(
    slug: str,
    path: Path,
    generation: Generation,
    existing: DraftFile | None,
    last: DraftState | None,
    listing: ListPlan,
    at: str,
    *,
    force: bool,
    regions_only: bool,
    site: str | None = None,
) -> DraftReport:
    """Bring one reviewed draft up to date, policy by policy (see `policy`); `site` names the publishing
    keys (publish.py)."""
    if existing is None or (force and not regions_only):
        return _write_whole(slug, path, generation, existing, site)
    repeated = _repeated_region(path, existing)
    if repeated:
        return DraftReport(slug, path, "error", (repeated,))
    status, status_note = review_status(existing.front_matter)
    notes: list[str] = [f"{path}: {status_note}"] if status_note else []
    left_whole = _left_whole(path, existing, last, status, at, force=force, regions_only=regions_only, site=site)
    if left_whole is not None:
        return DraftReport(slug, path, "kept", (*notes, left_whole))
    last = last or DraftState()

    draft = generation.draft
    plan = plan_regions(path, generation, existing, last, status, listing, force=force, regions_only=regions_only)
    body = merge_body(path, existing.body, last.skeleton, generation.skeleton, plan, regions_only=regions_only)
    if body.body is None:
        return DraftReport(slug, path, "conflict", body.notes)
    front = merge_front_matter(path, existing, draft.front_matter, last.front_matter, plan.kept_keys,
                               regions_only=regions_only, force=force)
    notes += [*plan.notes, *body.notes, *front.notes]
    if "further-reading" not in plan.kept:
        notes += listing.notes
    judged = judge_status(path, status, front.text, last, existing.text, _changes(existing, plan, front.text),
                          {name: voucher(name, draft.front_matter) for name in (*plan.write, FRONT_MATTER)}, at)
    # A region left alone keeps its old record, so a reviewer who undoes their edit hands the region
    # back to the pipeline; refresh never moves the skeleton (only `build` merges guide changes).
    state = replace(last, regions={**last.regions, **plan.remember}, front_matter=front.remember,
                    skeleton=last.skeleton if regions_only else generation.skeleton,
                    approved=judged.approved, changes_since_approval=judged.changes)

    fm_text, new_body = existing.front_matter_text, existing.body
    if front.text != existing.front_matter_text or body.body != existing.body:
        fm_text = set_front_matter_key(judged.front_matter_text, "lastmod", draft.front_matter["lastmod"])
        new_body = body.body
    return _finish(slug, path, existing, fm_text, new_body, state, (*notes, *judged.notes), site)


def _finish(slug: str, path: Path, existing: DraftFile, fm_text: str, body: str, state: DraftState,
            notes: tuple[str, ...], site: str | None) -> DraftReport:
    """Write the draft (and its state) when anything changed; publishing follows whatever status it now
    has: set by hand, or sent back by this run."""
    fm_text = follow_status(fm_text, existing.front_matter if fm_text == existing.front_matter_text else None, site)
    if fm_text == existing.front_matter_text and body == existing.body:
        # The draft is not ours to re-hash: its state changes only when what it records does, so a
        # reviewer's edit and a run on another machine do not both touch the state in git.
        save_state(path.parent, slug, state)
        return DraftReport(slug, path, "unchanged", notes)
    if not write_draft(path, existing, existing.with_changes(fm_text, body), state):
        return _changed_meanwhile(slug, path)
    return DraftReport(slug, path, "updated", notes)


def _published_text(existing: DraftFile, site: str | None) -> str:
    """The draft's text with `draft`/`published` in step with its status."""
    fm_text = follow_status(existing.front_matter_text, existing.front_matter, site)
    return existing.text if fm_text == existing.front_matter_text else existing.with_changes(fm_text, existing.body)


def _left_whole(path: Path, existing: DraftFile, last: DraftState | None, status: Status, at: str, *,
                force: bool, regions_only: bool, site: str | None) -> str | None:
    """Why a draft is left exactly as it is (no record of ours; approved, and `build` keeps its body)."""
    if force:
        return None
    if last is None or not last.has_record:
        return NO_RECORD.format(path=path)
    if status == "approved" and not regions_only:
        _note_approval(path, existing, last, at)  # as the reviewer approved it; publishing follows
        if not _publish_as_status(path, existing, site):
            return f"{path}: changed on disk while the pipeline worked on it; left alone until the next run"
        return f"{path}: approved; body left alone (use --force to regenerate)"
    return None


def _publish_as_status(path: Path, existing: DraftFile, site: str | None) -> bool:
    """Bring `draft`/`published` in step with a status set by hand; False when a reviewer saved the
    file meanwhile (it is left alone)."""
    text = _published_text(existing, site)
    return text == existing.text or write_draft(path, existing, text)


def _changes(existing: DraftFile, plan: RegionPlan, fm_text: str) -> dict[str, tuple[str, str]]:
    """(old, new) of each region this run rewrites; front matter alone counts too, so an approved draft
    never changes silently."""
    on_disk = existing.regions
    changed = {name: (on_disk.get(name, ""), text) for name, text in plan.write.items() if on_disk.get(name) != text}
    if not changed and fm_text != existing.front_matter_text:
        changed[FRONT_MATTER] = (existing.front_matter_text, fm_text)
    return changed


def _note_approval(path: Path, existing: DraftFile, last: DraftState, at: str) -> None:
    """An approval set by hand since the last run is recorded, as the text the draft had."""
    if last.approved is None and last.has_record:
        save_state(path.parent, path.stem, replace(last, approved=Approval(at, existing.text), changes_since_approval=()))


def _changed_meanwhile(slug: str, path: Path) -> DraftReport:
    return DraftReport(slug, path, "kept", (
        f"{path}: changed on disk while the pipeline worked on it; left alone until the next run",))


def _write_whole(slug: str, path: Path, generation: Generation, existing: DraftFile | None,
                 site: str | None) -> DraftReport:
    """A new draft, or `build --force`: the generation as it is, keeping only date and status."""
    draft = generation.draft
    state = DraftState(regions=dict(draft.regions), skeleton=generation.skeleton,
                       front_matter=generated_keys(draft.front_matter))
    front = dict(draft.front_matter)
    notes: list[str] = []
    if existing is not None:
        front["date"] = existing.front_matter.get("date", front["date"])
        status, _ = review_status(existing.front_matter)
        front["status"] = "in-review" if status == "approved" else status
        front.update(publish_keys(front["status"], site))
        # Same text but for lastmod is no change: lastmod moves only when something else did.
        same = dict(front, lastmod=existing.front_matter.get("lastmod", front["lastmod"]))
        if compose_draft_text(same, draft.body) == existing.text:
            save_state(path.parent, slug, replace(state, draft_sha256=text_sha256(existing.text)))
            return DraftReport(slug, path, "unchanged")
        notes.append(f"{path}: regenerated with --force; hand edits replaced")
        if status == "approved":
            notes.append(f"{path}: was approved; regenerated, so it is back to in-review")
    # Composed from a mapping by the YAML emitter, so it reads back: no parse to prove it.
    if not write_draft(path, existing, compose_draft_text(front, draft.body), state, composed=True):
        return _changed_meanwhile(slug, path)
    return DraftReport(slug, path, "created" if existing is None else "updated", tuple(notes))


# -- write ---------------------------------------------------------------------------------------


def write_draft(path: Path, existing: DraftFile | None, text: str, state: DraftState | None = None, *,
                composed: bool = False) -> bool:
    """Write a draft and its state atomically, unless a reviewer saved the draft since we read it
    (their save wins: False, and nothing is written).

    The one place drafts are written; the state is put in place right after the draft, naming the
    draft text it belongs to, so a run killed in between leaves a pair `load_state` mends. Text made
    by editing a draft is read back first (`composed`: made whole by `compose_draft_text`).
    """
    if not composed:
        split_draft(path, text)  # never write a draft we could not read back
    if existing is not None and _changed_meanwhile_on_disk(path, existing):
        return False
    newline = existing.newline if existing is not None else "\n"
    if state is None:
        write_atomic(path, text, newline)
    else:
        write_with_state(path, text, newline, state, new=existing is None)
    return True


def _changed_meanwhile_on_disk(path: Path, existing: DraftFile) -> bool:
    """Whether a reviewer saved the file since we read it; their save wins."""
    try:
        now_on_disk = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        now_on_disk = None
    return now_on_disk != existing.text


def set_status(path: Path, status: str, now: dt.datetime | None = None, site: str | None = None) -> bool:
    """Move a draft along draft -> in-review -> approved; True when the file changed.

    Approving records the draft's whole text and the time (`now`, by default the pipeline's clock) in
    its state; leaving approved clears that record.
    """
    if status not in STATUSES:
        raise DraftError(path, f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    existing = read_draft(path)
    if existing is None:
        raise DraftError(path, "no such draft; run `pipeline build` first")
    last = load_state(path.parent, path.stem) or DraftState()
    moved = existing.front_matter.get("status") != status
    fm_text = set_front_matter_key(existing.front_matter_text, "status", status) if moved else existing.front_matter_text
    fm_text = follow_status(fm_text, {**existing.front_matter, "status": status}, site)  # publishing follows status
    if fm_text == existing.front_matter_text:
        if status == "approved" and last.approved is None:  # approved by hand: recorded now
            save_state(path.parent, path.stem, _approval(last, existing.text, now))
        return False
    text = existing.with_changes(fm_text, existing.body)
    if status != "approved":
        state = replace(last, approved=None, changes_since_approval=()) if moved else last
    else:
        state = _approval(last, text, now) if moved or last.approved is None else last
    if not write_draft(path, existing, text, state):
        raise DraftError(path, "changed on disk while its status was set; run the command again")
    return True


def _approval(last: DraftState, text: str, now: dt.datetime | None) -> DraftState:
    return replace(last, approved=Approval(stamp(now or now_utc()), text), changes_since_approval=())

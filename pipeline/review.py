"""`pipeline review`: a static site under output/_review/ showing every draft as readers will see it.

The index lists each draft with its status, what needs a person, problem and note counts and the
last change; each draft page shows the article with where each part came from, every check problem
at its place, reviewer notes, the guide's due-for-review warnings and what changed since approval.
No server: the pages are plain files (a CI artifact), loading nothing from anywhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .changes import RegionDiff, region_diffs, unified_diff
from .check import check_files, draft_paths, load_reference
from .conditions import DEAD_LINK as DEAD_LINK_KIND
from .conditions import project_subject
from .config import Settings
from .drafts import find_regions, split_draft, write_atomic
from .entries import readable_entries
from .errors import DraftError
from .guide_due import guide_warnings
from .models import Condition as LedgerCondition
from .models import Item, LinkCheck, Problem
from .notes import Note, find_notes
from .review_html import PlacedProblem, render_article

REVIEW_DIR = "_review"  # under output/: the leading "_" keeps Jekyll from publishing it
INDEX = "index.html"
# Hugo would publish the pages as content; a section file telling it to render and list nothing below
# it keeps them out of the site (and it is not an output/*.md draft: it sits one folder down).
HUGO_SECTION = "_index.md"
HUGO_SECTION_TEXT = """---
# Written by `pipeline review`: the reviewers' pages are not part of the published site.
# (`_build` is the spelling every Hugo release reads; newer ones also say `build`.)
_build: {render: never, list: never, publishResources: false}
cascade:
  _build: {render: never, list: never, publishResources: false}
---
"""
CONFLICT, HAND_EDITED, REVOKED, CHANGED, DEAD_LINK, DUE = (
    "conflict", "edited by hand", "approval revoked", "changed since approval", "dead link", "guide due for review")


@dataclass(frozen=True)
class Condition:
    """Something about a draft that waits for a person."""

    kind: str  # CONFLICT, HAND_EDITED, REVOKED, DEAD_LINK or DUE
    detail: str


@dataclass(frozen=True)
class DraftReview:
    """Everything the review pages show about one draft."""

    slug: str
    path: Path
    text: str
    title: str
    status: str
    last_change: str  # YYYY-MM-DD, from front matter lastmod (the file's time when it has none)
    problems: tuple[Problem, ...]  # `pipeline check`, in line order
    notes: tuple[Note, ...]
    conditions: tuple[Condition, ...]
    guide_warnings: tuple[Problem, ...]  # due for review and time-relative phrases, in the guide file
    approved_at: str | None
    diffs: tuple[RegionDiff, ...]  # parts changed since approval (empty when none or never approved)
    front_matter: dict[str, object]
    body: str
    body_offset: int  # file line of the body's first line, minus one

    @property
    def page(self) -> str:
        return quote(f"{self.slug}.html")

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that fail `pipeline check` (notes are counted on their own)."""
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def attention(self) -> int:
        return len(self.conditions) * 1000 + len(self.errors) + len(self.notes)


def _load_state(output_dir: Path, slug: str) -> Any:
    """The draft's travelling state (approved text, regions last written), or None."""
    try:
        from .state import load_state
    except ImportError:  # pragma: no cover - the per-draft state is landing separately
        return None
    return load_state(output_dir, slug)


# The condition ledger's kinds (see `conditions`) as the index names them; others show as they are.
LEDGER_KINDS = {"conflict": CONFLICT, "approval-revoked": REVOKED, "region-edited": HAND_EDITED}


def collect(settings: Settings, now: dt.datetime, items: Sequence[Item] = (),
            ledger: Sequence[LedgerCondition] = (), link_checks: Mapping[str, LinkCheck] | None = None
            ) -> list[DraftReview]:
    """Every output/*.md, read once and checked once, with the ledger's open conditions for it
    and the listed links the last link check judged dead."""
    paths = draft_paths([], settings.output_dir)
    problems, errors = check_files(paths, load_reference(settings.templates_dir), now)
    by_path: dict[Path, list[Problem]] = {}
    for problem in problems:
        by_path.setdefault(problem.path, []).append(problem)
    unreadable = {error.path for error in errors}
    guide_cache: dict[Path, tuple[Condition | None, tuple[Problem, ...]]] = {}
    reviews = []
    for path in paths:
        if path in unreadable:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # removed or rewritten since check read it: the next review shows it
        review = _review_one(settings, path, text, tuple(by_path.get(path, ())), now, items, guide_cache)
        conditions = (_with_ledger(review.conditions, settings.root, path, ledger)
                      + _dead_links(review.body, link_checks))
        reviews.append(replace(review, conditions=conditions))
    return reviews


def _dead_links(body: str, link_checks: Mapping[str, LinkCheck] | None) -> tuple[Condition, ...]:
    """Links the list shows that were judged dead: refresh drops them, so one still shown sits in a list a
    person keeps (whose front matter copy no longer follows it: the list itself is read)."""
    if not link_checks:
        return ()
    found = []
    for entry in readable_entries(find_regions(body).get("further-reading", "")):
        url = entry.link
        check = link_checks.get(url)
        if check is not None and check.verdict == "dead":
            why = f" ({check.detail})" if check.detail else ""
            found.append(Condition(DEAD_LINK, f"{url}{why}, checked {check.checked_at:%Y-%m-%d}; "
                                              "remove it, or let `pipeline refresh` replace it"))
    return tuple(found)


def _with_ledger(found: tuple[Condition, ...], root: Path, path: Path, ledger: Sequence[LedgerCondition]
                 ) -> tuple[Condition, ...]:
    """The conditions a run found for this draft and still open, before what the review itself finds."""
    subjects = {project_subject(root, path.resolve()), str(path), str(path.resolve())}
    # Dead links are shown from the link checks themselves (_dead_links), which may be newer than the ledger.
    opened = [Condition(LEDGER_KINDS.get(c.kind.split(":")[0], c.kind), c.message)
              for c in ledger if c.subject in subjects and not c.kind.startswith(DEAD_LINK_KIND)]
    kinds = {c.kind for c in opened}
    return tuple(opened) + tuple(c for c in found if c.kind not in kinds or c.kind in (CHANGED, DUE))


def _review_one(settings: Settings, path: Path, text: str, problems: tuple[Problem, ...], now: dt.datetime,
                items: Sequence[Item], guide_cache: dict) -> DraftReview:
    slug = path.stem
    try:
        draft = split_draft(path, text)
        front, body = draft.front_matter, draft.body
    except DraftError:
        front, body = {}, text
    offset = text.count("\n") - body.count("\n")
    status = str(front.get("status", "draft"))
    conditions: list[Condition] = []
    state = _load_state(settings.output_dir, slug)
    approved_at: str | None = None
    diffs: tuple[RegionDiff, ...] = ()
    if state is not None:
        on_disk = find_regions(body)
        for name, content in sorted(getattr(state, "regions", {}).items()):
            if name in on_disk and on_disk[name] != content:
                conditions.append(Condition(HAND_EDITED, f"region {name!r} differs from what the pipeline last "
                                                         "wrote; refresh leaves it alone"))
        approval = getattr(state, "approved", None)
        if approval is not None:
            approved_at = approval.at
            diffs = tuple(d for d in region_diffs(approval.text, text) if d.changed)
            summaries = "; ".join(f"{c.region}: {c.summary}" for c in getattr(state, "changes_since_approval", ()))
            if status != "approved":
                conditions.append(Condition(REVOKED, f"approved {approval.at}, now {status}"))
            elif diffs:  # still approved: the feeds vouched for the change, a person should still look
                conditions.append(Condition(CHANGED, f"approved {approval.at}; "
                                                     + (summaries or "the text differs from what was approved")))
    guide_condition, warnings = _guide_review(settings, slug, front, now, items, guide_cache)
    if guide_condition is not None:
        conditions.append(guide_condition)
    return DraftReview(
        slug=slug, path=path, text=text, title=str(front.get("title") or slug), status=status,
        last_change=_last_change(front, path), problems=problems, notes=tuple(find_notes(body, offset + 1)),
        conditions=tuple(conditions), guide_warnings=warnings, approved_at=approved_at, diffs=diffs,
        front_matter=front, body=body, body_offset=offset,
    )


def _guide_review(settings: Settings, slug: str, front: dict[str, object], now: dt.datetime,
                  items: Sequence[Item], cache: dict) -> tuple[Condition | None, tuple[Problem, ...]]:
    named = front.get("guide")
    path = settings.root / named if isinstance(named, str) and named else settings.guides_dir / f"{slug}.md"
    if path not in cache:
        due, warnings = guide_warnings(path, items, now.date())
        shown = tuple(replace(p, path=_relative(p.path, settings.root)) for p in warnings)
        cache[path] = (Condition(DUE, due[0].message) if due else None, shown)
    return cache[path]


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def _last_change(front: dict[str, object], path: Path) -> str:
    value = front.get("lastmod")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    if isinstance(value, str) and len(value) >= 10:
        return value[:10]
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc).date().isoformat()


# -- pages ---------------------------------------------------------------------------------------

def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("pipeline", "review_templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def render_index(reviews: Sequence[DraftReview], now: dt.datetime, env: Any = None) -> str:
    env = env or _environment()
    script = env.get_template("sort.js").render()
    style = env.get_template("review.css").render()
    rows = sorted(reviews, key=lambda r: (-r.attention, r.slug))
    return str(env.get_template("index.html.j2").render(
        reviews=rows, generated=now.strftime("%Y-%m-%d %H:%M UTC"), script=script, style=style,
        script_hash=_csp_hash(script), style_hash=_csp_hash(style)))


def render_draft_page(review: DraftReview, now: dt.datetime, env: Any = None) -> str:
    env = env or _environment()
    style = env.get_template("review.css").render()
    placed, front_problems = [], []
    for number, problem in enumerate(review.problems, start=1):
        anchor = f"problem-{number}"
        index = problem.line - review.body_offset - 1
        if index < 0:
            front_problems.append((anchor, problem))
        else:
            placed.append(PlacedProblem(anchor, index, problem))
    ai = review.front_matter.get("ai")
    context = ai.get("context") if isinstance(ai, dict) else None
    context = context if isinstance(context, dict) else {}
    by_model = context.get("status") == "drafted"
    article = render_article(review.body, placed, context_by_model=by_model)
    front_text = review.text[: len(review.text) - len(review.body)]
    return str(env.get_template("draft.html.j2").render(
        review=review, article=article.html, front_text=front_text, front_problems=front_problems,
        model=context.get("model") if by_model else None, drafted_at=context.get("drafted_at"),
        generated=now.strftime("%Y-%m-%d %H:%M UTC"), style=style, style_hash=_csp_hash(style),
        diff_parts=[_collapse(d) for d in review.diffs]))


CONTEXT_WORDS = 12  # unchanged words shown either side of a change


def _collapse(diff: RegionDiff) -> tuple[str, list[tuple[str, str]]]:
    """A part's diff with long unchanged stretches shortened to the words around each change."""
    import re

    segments: list[tuple[str, str]] = []
    last = len(diff.segments) - 1
    for position, (kind, text) in enumerate(diff.segments):
        words = re.findall(r"\s*\S+", text)
        if kind != "same" or len(words) <= 2 * CONTEXT_WORDS:
            segments.append((kind, text))
            continue
        head = "".join(words[:CONTEXT_WORDS]) if position > 0 else ""
        tail = "".join(words[-CONTEXT_WORDS:]) if position < last else ""
        segments.append((kind, head))
        segments.append(("skip", " … "))
        segments.append((kind, tail + (text[len(text.rstrip()):] if position < last else "")))
    return diff.name, [s for s in segments if s[1]]


def write_site(settings: Settings, now: dt.datetime, items: Sequence[Item] = (),
               ledger: Sequence[LedgerCondition] = (), link_checks: Mapping[str, LinkCheck] | None = None) -> Path:
    """Write output/_review/ (index.html and one page per draft); pages of drafts now gone are removed."""
    reviews = collect(settings, now, items, ledger, link_checks)
    folder = settings.output_dir / REVIEW_DIR
    env = _environment()
    written = {INDEX}
    write_atomic(folder / HUGO_SECTION, HUGO_SECTION_TEXT)
    write_atomic(folder / INDEX, render_index(reviews, now, env))
    for review in reviews:
        name = f"{review.slug}.html"
        write_atomic(folder / name, render_draft_page(review, now, env))
        written.add(name)
    for stale in folder.glob("*.html"):
        if stale.name not in written:
            stale.unlink(missing_ok=True)
    return folder / INDEX


def approval_diff(settings: Settings, slug: str) -> str:
    """`pipeline review --diff SLUG`: the draft against its approved text, as a unified diff."""
    path = settings.output_dir / f"{slug}.md"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DraftError(path, "no such draft; give the slug of an output/*.md file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DraftError(path, f"cannot be read ({exc})") from exc
    state = _load_state(settings.output_dir, slug)
    approval = getattr(state, "approved", None) if state is not None else None
    if approval is None:
        raise DraftError(path, f"no approval recorded; approve it with `pipeline status {path} approved` "
                               "once reviewed")
    return unified_diff(approval.text, text, f"output/{slug}.md", approval.at)

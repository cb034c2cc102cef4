"""Guides due for a second look: review intervals, watch words in new stories, time-relative phrases.

A guide's facts age. An editor sets `review_every: 180d` and `reviewed: 2026-03-01` in its front
matter, and may list `watch` words (`visa-free`, `new rules`) whose appearance in a new story means
the guide may be out of date. `due_problems` turns those into warnings for `pipeline check` and the
review pages, naming the stories; `time_relative_problems` lists phrases ("currently", "this year")
that go stale silently, so editors date them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .errors import DraftError, GuideError
from .models import Guide, Item, Problem

REVIEW_KEYS = ("review_every", "reviewed", "watch")
RULE_DUE = "due-for-review"
RULE_TIME_RELATIVE = "time-relative"
# Phrases that are true the day they are written and quietly wrong a year later.
TIME_RELATIVE = ("as of this writing", "at the time of writing", "currently", "this year", "this month",
                 "last year", "next year", "recently", "nowadays", "these days", "right now", "at the moment")
_TIME_RELATIVE = re.compile(r"(?<![\w-])(" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in TIME_RELATIVE)
                            + r")(?![\w-])", re.IGNORECASE)
_INTERVAL = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$", re.IGNORECASE)
_UNIT_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
STORIES_NAMED = 3  # a warning names this many matching stories, then counts the rest


def parse_interval(value: object) -> int | None:
    """Days in `180d`, `26w`, `6m`, `1y` or a bare number of days; None when it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = _INTERVAL.match(str(value))
    if not match or int(match.group(1)) < 1:
        return None
    return int(match.group(1)) * _UNIT_DAYS[match.group(2).lower()]


def validate_review_keys(path: Path, data: Mapping[str, object], key_lines: Mapping[str, int]) -> dict[str, object]:
    """The review keys of a guide's front matter, checked; GuideError names the line of a bad one."""
    def fail(key: str, message: str) -> GuideError:
        return GuideError(path, message, key_lines.get(key, 2))

    checked: dict[str, object] = {}
    if "review_every" in data:
        days = parse_interval(data["review_every"])
        if days is None:
            raise fail("review_every", f"review_every {data['review_every']!r} is not an interval; write e.g. 180d, "
                                       "26w, 6m or 1y")
        checked["review_every"] = days
    if "reviewed" in data:
        reviewed = data["reviewed"]
        if isinstance(reviewed, dt.datetime):
            reviewed = reviewed.date()
        elif isinstance(reviewed, str):
            try:
                reviewed = dt.date.fromisoformat(reviewed.strip())
            except ValueError:
                reviewed = None
        if not isinstance(reviewed, dt.date):
            raise fail("reviewed", "reviewed must be a date written YYYY-MM-DD")
        checked["reviewed"] = reviewed
    if "watch" in data:
        watch = data["watch"]
        if not isinstance(watch, list) or not all(isinstance(w, str) and w.strip() for w in watch):
            raise fail("watch", "watch must be a list of words, e.g. watch: [visa-free, new rules]")
        checked["watch"] = [" ".join(w.split()) for w in watch]
    return checked


def review_fields(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Guide record fields from front matter that `validate_review_keys` has checked."""
    return {
        "review_every_days": meta.get("review_every"),
        "reviewed": meta.get("reviewed"),
        "watch": tuple(meta.get("watch", ()) or ()),
    }


def watch_pattern(word: str) -> re.Pattern[str]:
    """A watch word as a whole word or phrase, any case; `visa-free` also finds `visa free`."""
    parts = [re.escape(part) for part in re.split(r"[\s-]+", word.strip()) if part]
    return re.compile(r"(?<!\w)" + r"[\s-]+".join(parts) + r"(?!\w)", re.IGNORECASE)


def _arrived(item: Item) -> dt.date | None:
    return item.first_seen.date() if item.first_seen else item.date


def watched_stories(guide: Guide, items: Iterable[Item]) -> list[tuple[Item, str]]:
    """(story, watch word) for stories that arrived after `reviewed` and mention a watch word; newest first."""
    if not guide.watch or guide.reviewed is None:
        return []
    patterns = [(word, watch_pattern(word)) for word in guide.watch]
    found: list[tuple[Item, str]] = []
    for item in items:
        arrived = _arrived(item)
        if arrived is None or arrived <= guide.reviewed:
            continue
        word = next((w for w, pattern in patterns if pattern.search(item.headline)), None)
        if word is not None:
            found.append((item, word))
    found.sort(key=lambda pair: (_arrived(pair[0]) or dt.date.min, pair[0].headline), reverse=True)
    return found


def due_problems(guide: Guide, items: Iterable[Item], today: dt.date) -> list[Problem]:
    """Warnings for a guide past its review date or overtaken by a watched story."""
    lines = _key_lines(guide.path)
    problems: list[Problem] = []
    if guide.review_every_days is not None:
        every = guide.review_every_days
        if guide.reviewed is None:
            problems.append(Problem(guide.path, lines.get("review_every", 1), RULE_DUE,
                                    f"guide {guide.slug!r} sets review_every but was never reviewed; check its "
                                    f"facts, then add reviewed: {today.isoformat()}"))
        elif guide.reviewed + dt.timedelta(days=every) < today:
            due = guide.reviewed + dt.timedelta(days=every)
            problems.append(Problem(guide.path, lines.get("reviewed", 1), RULE_DUE,
                                    f"guide {guide.slug!r} was due for review on {due.isoformat()} (reviewed "
                                    f"{guide.reviewed.isoformat()}, every {every} days); check its facts, then "
                                    f"set reviewed: {today.isoformat()}"))
    stories = watched_stories(guide, items)
    if stories:
        named = "; ".join(f"{item.headline!r} ({item.source}, {item.date.isoformat() if item.date else 'undated'}, "
                          f"watch word {word!r})" for item, word in stories[:STORIES_NAMED])
        more = f"; and {len(stories) - STORIES_NAMED} more" if len(stories) > STORIES_NAMED else ""
        problems.append(Problem(guide.path, lines.get("watch", 1), RULE_DUE,
                                f"guide {guide.slug!r}: since it was reviewed on {guide.reviewed}, new stories "
                                f"mention its watch words: {named}{more}; check the guide against them, then "
                                f"set reviewed: {today.isoformat()}"))
    return problems


def time_relative_problems(path: Path, text: str) -> list[Problem]:
    """One warning per line of guide text holding a phrase like "currently" or "this year" (a phrase
    broken over two lines of one paragraph is reported at the line where it starts)."""
    from markdown_it import MarkdownIt

    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    start = _body_start(lines)
    body_lines = lines[start:]
    body = "\n".join(body_lines)
    problems: list[Problem] = []
    seen: set[int] = set()
    for token in MarkdownIt("commonmark").parse(body):
        if token.type != "inline" or token.map is None:
            continue
        prose = " ".join(child.content for child in token.children or () if child.type == "text")
        if not _TIME_RELATIVE.search(prose):
            continue  # only in code, or in a link target
        block = "\n".join(body_lines[token.map[0]:token.map[1]])
        plain = " ".join(prose.split()).lower()
        for match in _TIME_RELATIVE.finditer(block):
            phrase = " ".join(match.group(1).split())
            number = token.map[0] + block.count("\n", 0, match.start(1)) + start + 1
            if number in seen or phrase.lower() not in plain:
                continue
            seen.add(number)
            problems.append(Problem(path, number, RULE_TIME_RELATIVE,
                                    f"{phrase!r} goes out of date silently; say when (e.g. 'as of "
                                    "March 2026') or drop it", severity="warning"))
    return problems


def _body_start(lines: list[str]) -> int:
    """Index of the first line after the front matter (0 when there is none)."""
    if lines and lines[0].strip() == "---":
        for index in range(1, len(lines)):
            if lines[index].strip() == "---":
                return index + 1
    return 0


def _key_lines(path: Path) -> dict[str, int]:
    """File line of each top-level front matter key of a guide, for pointing at `reviewed:`."""
    try:
        lines = path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
    except (OSError, UnicodeDecodeError):
        return {}
    end = _body_start(lines)
    if end == 0:
        return {}
    try:
        node = yaml.compose("\n".join(lines[1 : end - 1]), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): key.start_mark.line + 2 for key, _ in node.value if isinstance(key, yaml.ScalarNode)}


def guide_warnings(path: Path, items: Iterable[Item], today: dt.date, *,
                   release: bool = False) -> tuple[list[Problem], list[Problem]]:
    """(due-for-review findings, all findings incl. time-relative phrases) for one guide file.

    All are warnings, except that a guide due for review fails a release. A guide that cannot be
    read gives none: `pipeline build` names a broken guide.
    """
    from .guides import load_guide

    if not path.is_file():
        return [], []
    try:
        guide = load_guide(path)
        text = path.read_text(encoding="utf-8")
    except (GuideError, OSError, UnicodeDecodeError):
        return [], []
    due = [replace(p, severity="error" if release else "warning") for p in due_problems(guide, items, today)]
    return due, due + time_relative_problems(path, text)


def guide_of(draft: Path, root: Path, guides_dir: Path) -> Path:
    """The guide a draft was built from: front matter `guide` (relative to the project), else by slug."""
    from .drafts import read_draft

    try:
        found = read_draft(draft)
    except DraftError:
        found = None
    named = found.front_matter.get("guide") if found is not None else None
    return root / named if isinstance(named, str) and named else guides_dir / f"{draft.stem}.md"


def warnings_for_drafts(drafts: Iterable[Path], root: Path, guides_dir: Path, items: Iterable[Item],
                        today: dt.date, *, release: bool = False) -> list[Problem]:
    """Guide findings for the guides behind some drafts, each guide once, in guide order."""
    items = list(items)
    guides = sorted({guide_of(draft, root, guides_dir) for draft in drafts})
    return [problem for guide in guides for problem in guide_warnings(guide, items, today, release=release)[1]]

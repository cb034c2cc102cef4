"""Cron speaks once: what needs a person is said on the run that finds it, and again only when it changes.

A run collects `Findings`: conditions (a draft's hand-edited region, a failing feed...) and which
subjects it looked at. `reconcile` compares them with the ledger the store keeps: a condition not in
the ledger, or whose message changed beyond its counters and times, is news; a condition the run looked
for and did not find is over. The ledger is what `pipeline status` lists as open.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .models import Condition

if TYPE_CHECKING:
    from .models import DraftReport
    from .update import FeedReport

# Said as news only when something other than a count or a time changed ("3 failures" -> "4 failures").
_MASKS = (
    (re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?(?:Z|[+-]\d\d:?\d\d)?(?: UTC)?"), "<time>"),
    (re.compile(r"\b\d+(?:\.\d+)? ?(?:s|ms|seconds?|minutes?|hours?|days?|failures?|times?|attempts?|tries|"
                r"runs?|calls?|items?|cached|input|output|tokens?)\b"), "<n>"),
)

# A draft's note -> the kind of condition it reports; the first match wins. {0} is the matched name.
_DRAFT_KINDS = (
    (re.compile(r"region '([^']+)' was edited by hand"), "region-edited:{0}"),
    (re.compile(r"region '([^']+)' markers are missing"), "region-markers:{0}"),
    (re.compile(r"region '([^']+)' cites region"), "region-follows:{0}"),
    (re.compile(r"region '([^']+)': no record"), "region-no-record:{0}"),
    (re.compile(r"region '([^']+)' appears twice"), "region-repeated:{0}"),
    (re.compile(r"front matter '([^']+)': no record"), "front-matter-no-record:{0}"),
    (re.compile(r"reviewer edits conflict"), "conflict"),
    (re.compile(r"back to in-review"), "approval-revoked"),
    (re.compile(r"unknown status"), "unknown-status"),
    (re.compile(r"no record of the last generation"), "no-record"),
    (re.compile(r"changed on disk while"), "changed-meanwhile"),
)
# Said once and open until the draft is approved again: the run that caused it will not repeat it.
STICKY = frozenset({"approval-revoked"})
# Shown to a person running build, never said by cron: they follow from a condition already said.
CONSEQUENCES = frozenset({"region-follows:context"})
AI_PREFIX = "ai:"
# A dead link a draft still lists: looked for only by a run that checked links (refresh).
DEAD_LINK = "dead-link:"

Scope = Callable[[str], bool]  # kinds a run looked for on one subject


def signature(message: str) -> str:
    for pattern, mask in _MASKS:
        message = pattern.sub(mask, message)
    return message


def draft_kind(note: str) -> str:
    """What a build note reports, as a stable kind; an unknown note is its own kind."""
    if ": AI context" in note:
        return AI_PREFIX + signature(note.split(": AI context", 1)[1])
    for pattern, kind in _DRAFT_KINDS:
        found = pattern.search(note)
        if found:
            return kind.format(*found.groups())
    return "note:" + signature(note.split(": ", 1)[-1])


def every_kind_but_sticky(kind: str) -> bool:
    return kind not in STICKY and not kind.startswith((AI_PREFIX, DEAD_LINK))


def ai_kinds(kind: str) -> bool:
    return kind.startswith(AI_PREFIX)


def dead_link_kinds(kind: str) -> bool:
    return kind.startswith(DEAD_LINK)


@dataclass
class Findings:
    """What one run found, and what it looked at (a condition it looked for and did not find is over)."""

    found: dict[tuple[str, str], str] = field(default_factory=dict)  # (subject, kind) -> message
    lines: dict[tuple[str, str], str] = field(default_factory=dict)  # the line to print, with its level
    looked: dict[str, list[Scope]] = field(default_factory=dict)

    def look(self, subject: str, scope: Scope = every_kind_but_sticky) -> None:
        self.looked.setdefault(subject, []).append(scope)

    def add(self, subject: str, kind: str, message: str, level: str = "warning", *, ledger: bool = True) -> None:
        """A condition found; with `ledger=False` a line for a person only (a consequence of another one)."""
        if ledger:
            self.found[(subject, kind)] = message
        self.lines[(subject, kind)] = f"{level}: {message}"

    def looked_for(self, subject: str, kind: str) -> bool:
        return any(scope(kind) for scope in self.looked.get(subject, ()))

    def within(self, root: Path) -> Findings:
        """The same findings keyed as every checkout of the project keys them: paths inside `root` as
        'output/x.md', in subjects and in the messages the ledger keeps. The lines printed stay whole."""
        def key(subject_kind: tuple[str, str]) -> tuple[str, str]:
            return project_subject(root, subject_kind[0]), subject_kind[1]

        looked: dict[str, list[Scope]] = {}
        for subject, scopes in self.looked.items():  # a draft looked at under both names keeps every scope
            looked.setdefault(project_subject(root, subject), []).extend(scopes)
        return Findings(
            found={key(k): without_root(root, message) for k, message in self.found.items()},
            lines={key(k): line for k, line in self.lines.items()},
            looked=looked,
        )


def project_subject(root: Path, subject: str | Path) -> str:
    """A ledger subject: a path inside the project as the project names it ('output/x.md'), so checkouts
    at different places sharing one store (a cron host, editors' laptops) keep one condition per draft.
    A feed URL, or a path outside the project, stays as it is."""
    text = str(subject)
    if not os.path.isabs(text):
        return text
    try:
        return Path(text).relative_to(root).as_posix()
    except ValueError:
        return text


def without_root(root: Path, message: str) -> str:
    """A message as the ledger keeps it: the project's own folder left out of the paths it names, so the
    same note from two checkouts has one signature."""
    return message.replace(f"{root}{os.sep}", "")


def adopt_ledger(ledger: Iterable[Condition], root: Path) -> tuple[list[Condition], list[Condition],
                                                                   list[tuple[str, str]]]:
    """Conditions kept under a draft's absolute path (before subjects were the project's own names),
    taken over by this checkout: (the ledger as it now reads, renamed conditions, old keys to forget).
    A path under another checkout's folder waits for that checkout's next run."""
    current: list[Condition] = []
    renamed: list[Condition] = []
    old_keys: list[tuple[str, str]] = []
    for condition in ledger:
        subject = project_subject(root, condition.subject)
        if subject != condition.subject:
            old_keys.append(condition.key)
            message = without_root(root, condition.message)
            condition = replace(condition, subject=subject, message=message, signature=signature(message))
            renamed.append(condition)
        current.append(condition)
    return current, renamed, old_keys


@dataclass(frozen=True)
class Reconciled:
    news: tuple[Condition, ...]  # new or changed: what a quiet run says
    opened: tuple[Condition, ...]  # to write to the ledger (news, and known ones with a new message)
    closed: tuple[tuple[str, str], ...]  # keys to forget


def reconcile(ledger: Iterable[Condition], run: Findings, now: str,
              sticky_over: Callable[[Condition], bool] = lambda condition: True) -> Reconciled:
    """Compare a run's findings with the open conditions; `sticky_over` says when a sticky one ends."""
    known = {condition.key: condition for condition in ledger}
    news: list[Condition] = []
    opened: list[Condition] = []
    for key, message in run.found.items():
        subject, kind = key
        if kind == "backoff" and ((subject, "retired") in known or (subject, "retired") in run.found):
            continue  # a retired feed is not fetched for a day: that is part of being retired
        old = known.get(key)
        condition = Condition(subject, kind, message, signature(message), old.since if old else now)
        if old is None or old.signature != condition.signature:
            news.append(condition)
            opened.append(condition)
        elif old.message != message:
            opened.append(condition)  # counters moved on: remembered, not said
    closed = []
    for key, condition in known.items():
        if key in run.found:
            continue
        if condition.kind in STICKY:
            if condition.subject in run.looked and sticky_over(condition):
                closed.append(key)
        elif run.looked_for(*key):
            closed.append(key)
    return Reconciled(tuple(news), tuple(opened), tuple(closed))


def feed_findings(run: Findings, feeds: Iterable[FeedReport]) -> None:
    """A fetch's feed conditions: failing, retired, in backoff, moved, or a warning about its content."""
    for feed in feeds:
        url = feed.url
        if feed.status == "skipped":
            run.look(url, lambda kind: kind == "backoff")  # failing stays open while the feed waits
            run.add(url, "backoff", f"feed {url}: {feed.message or 'backing off after failures'}")
        elif feed.status == "failed":
            run.look(url, lambda kind: kind in ("failing", "retired"))
            message = feed.message or "failed"
            run.add(url, "retired" if "retired" in message else "failing", f"feed {url}: {message}")
        else:
            run.look(url)
            if feed.message:
                run.add(url, "feed-warning", f"feed {url}: {feed.message}")
        if feed.moved_to:
            run.add(url, "moved", f"feed {url} moved permanently to {feed.moved_to}; update sources/feeds.toml "
                                  "to the new url (its stored items follow it)")


def draft_findings(run: Findings, drafts: Iterable[DraftReport]) -> None:
    """A build's draft conditions, one per note; every draft it reported on was looked at."""
    for draft in drafts:
        subject = str(draft.path)
        run.look(subject)
        for note in draft.notes:
            kind = draft_kind(note)
            # A region kept because the region it cites was kept is part of that condition, not news.
            run.add(subject, kind, note, "error" if draft.failed else "warning", ledger=kind not in CONSEQUENCES)


def dead_link_findings(run: Findings, drafts: Iterable[DraftReport], kept: Iterable[tuple[str, str, str]]) -> None:
    """A run that checked links: each dead link a draft still lists, in a list a reviewer keeps (the build
    drops the others), is a condition until the entry goes; every draft built was looked at for them."""
    for draft in drafts:
        run.look(str(draft.path), dead_link_kinds)
    for path, url, detail in kept:
        run.look(path, dead_link_kinds)
        run.add(path, DEAD_LINK + url, f"{path}: Further Reading lists {url}, which is dead ({detail}); the list "
                                        "is kept as a reviewer left it, so refresh cannot drop it: remove the entry")


def note_subject(note: str) -> str:
    """The file a note names first ('templates/guides/x.md: AI context: ...' -> 'templates/guides/x.md')."""
    return note.split(": ", 1)[0] if ": " in note else "pipeline"

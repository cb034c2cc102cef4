"""The records passed between stages: one frozen type per stage, no loose dicts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

# A draft's review status, in the order a draft moves through them.
Status = Literal["draft", "in-review", "approved"]
STATUSES: tuple[Status, ...] = get_args(Status)
# The static site generators a project may name (`site` in [tool.pipeline]): drafts then carry only the
# key that one reads to keep a page out (publish.py).
Site = Literal["hugo", "jekyll"]
SITES: tuple[Site, ...] = get_args(Site)

# The managed regions of a draft, between `<!-- pipeline:begin NAME -->` and `<!-- pipeline:end NAME -->`.
REGION_CONTEXT = "context"
REGION_FURTHER_READING = "further-reading"
REGIONS = (REGION_CONTEXT, REGION_FURTHER_READING)

# What a run did with one draft (`pipeline build`, `refresh`), and with one feed (`fetch`).
Outcome = Literal["created", "updated", "unchanged", "kept", "conflict", "error"]
FeedStatus = Literal["new", "unchanged", "not-modified", "failed", "skipped"]

# How `pipeline check` rates a problem: an error fails the check; a warning is reported and fails it
# only with --release (the rules for unfinished drafts).
Severity = Literal["error", "warning"]

# The start of every text the pipeline writes for a person to replace (`pipeline new`'s skeleton):
# `pipeline check` warns while one is left, and refuses it with --release.
PLACEHOLDER = "TODO(editor):"
# The start of the line a model-drafted text carries until a person has checked it.
AI_BANNER = "*AI-drafted by "

# A guide's (and so its draft's) name: lower-case letters, digits and dashes.
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Feed:
    """One entry of sources/feeds.toml."""

    url: str  # where the feed is fetched from
    publisher: str | None = None  # display name that wins over what the feed says
    tags: tuple[str, ...] = ()  # topics; a guide sharing a tag finds this feed's items more relevant


@dataclass(frozen=True)
class FeedState:
    """What the store remembers about a feed between runs."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: dt.datetime | None = None
    last_success: dt.datetime | None = None
    last_status: str | None = None  # "200", "304", "error", ...
    last_error: str | None = None
    consecutive_failures: int = 0
    retry_after: dt.datetime | None = None  # backoff: not fetched before this time
    items_stored: int = 0
    moved_to: str | None = None  # where a 301/308 last sent us; sources/feeds.toml should say so


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one conditional GET."""

    feed: Feed
    status: int | None  # HTTP status, None when no response arrived
    body: bytes | None = None  # decoded body for a 200, None otherwise
    headers: tuple[tuple[str, str], ...] = ()  # response headers, lower-case names
    final_url: str | None = None  # after redirects
    permanent_redirect: str | None = None  # a 301/308 target that should replace the configured URL
    error: str | None = None  # plain reason when the fetch failed

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None


@dataclass(frozen=True)
class Item:
    """One news entry as extracted from a feed; what Further Reading lists."""

    feed_url: str  # the configured feed it came from
    guid: str  # stable id within the feed (guid/id, else link, else headline hash)
    headline: str  # plain text, one line
    source: str  # publisher shown to readers
    date: dt.date | None  # publication date in the publisher's own UTC offset
    url: str  # canonical absolute http(s) link, tracking parameters removed
    first_seen: dt.datetime | None = None  # when this pipeline first stored it (UTC)
    summary: str = ""  # the feed's description as plain text, bounded; evidence of relevance, never shown
    # The publisher's site as an aggregator names it (Google News' <source url>): its front page, never
    # the story's link; it tells which publisher's own copy of the story to list instead.
    source_url: str = ""

    def as_json(self) -> dict[str, str | None]:
        return {
            "headline": self.headline,
            "source": self.source,
            "date": self.date.isoformat() if self.date else None,
            "url": self.url,
            "feed": self.feed_url,
            "guid": self.guid,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "summary": self.summary,
            "source_url": self.source_url,
        }


@dataclass(frozen=True)
class LinkCheck:
    """The last verdict on one listed link; the store keeps every earlier one as history."""

    url: str
    verdict: str  # "ok", "moved", "unverified" (kept: not judged, or judged once), "dead" (dropped)
    checked_at: dt.datetime  # by the pipeline's clock (SOURCE_DATE_EPOCH honoured)
    status: int | None = None  # HTTP status, None when no answer came
    detail: str = ""  # the reason in words, for `pipeline links`
    moved_to: str | None = None  # a 301/308 target: the entry takes it
    strikes: int = 0  # 404/410/soft-404 answers in a row


@dataclass(frozen=True)
class DeadListing:
    """A link judged dead that drafts listed when it was checked: the build drops it where the list is
    the pipeline's; where a reviewer keeps the list, a person must."""

    url: str
    detail: str  # why it is dead, in words
    slugs: tuple[str, ...]  # the drafts listing it at the check
    newly: bool  # judged dead by this run's check


@dataclass(frozen=True)
class LinkVerdicts:
    """What link health tells selection: links never to list (dead), and links listed under a new URL."""

    dead: frozenset[str] = frozenset()
    moved: tuple[tuple[str, str], ...] = ()  # (old url, new url)
    listed_dead: tuple[DeadListing, ...] = ()  # the dead links drafts listed before this run's build

    def follow(self, items: Sequence[Item]) -> list[Item]:
        moved = dict(self.moved)
        return [replace(item, url=moved[item.url]) if item.url in moved else item for item in items]


@dataclass(frozen=True)
class Extraction:
    """What one feed document yielded. Lives here, not in `extract`, because it crosses from the
    parser processes back to the main one, which should not have to import feedparser to read it."""

    items: tuple[Item, ...]
    skipped: int  # entries dropped (no usable link, no headline)
    title: str | None  # the feed's own title
    warning: str | None = None  # feedparser's complaint about a feed it could still read


@dataclass(frozen=True)
class FaqEntry:
    question: str
    answer: str  # Markdown written by an editor


@dataclass(frozen=True)
class Section:
    heading: str
    body: str  # Markdown written by an editor


@dataclass(frozen=True)
class Guide:
    """One templates/guides/<slug>.md: the long-lived part of an article."""

    slug: str
    path: Path
    title: str
    description: str = ""
    audience: str = ""
    keywords: tuple[str, ...] = ()  # words (or short word runs) news on the topic contains
    tags: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()  # word runs that count only together, and count more than a keyword
    exclude: tuple[str, ...] = ()  # a story holding any of these is never listed
    require: tuple[str, ...] = ()  # a story must hold every one of these to be listed
    further_reading_count: int = 3
    max_age_days: int = 30
    intro: str = ""
    sections: tuple[Section, ...] = ()
    faq: tuple[FaqEntry, ...] = ()
    conclusion: str = ""
    checklist: tuple[str, ...] = ()
    review_every_days: int | None = None  # `review_every: 180d`: an editor looks at it again this often
    reviewed: dt.date | None = None  # when an editor last checked the guide's facts
    watch: tuple[str, ...] = ()  # words that, in a story arriving after `reviewed`, call for a look


@dataclass(frozen=True)
class Draft:
    """A rendered article for output/<slug>.md, before it meets the file on disk."""

    slug: str
    path: Path
    front_matter: dict[str, object]  # emitted as YAML; order is kept
    body: str  # Markdown after the front matter, managed-region markers included
    regions: dict[str, str] = field(default_factory=dict)  # managed region name -> content


@dataclass(frozen=True)
class Problem:
    """One finding of `pipeline check`."""

    path: Path
    line: int
    rule: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        if self.severity == "warning":
            return f"{self.path}:{self.line}: {self.rule}: warning: {self.message}"
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class ListEntry:
    """One Further Reading entry, keyed by its link: a story as the list shows it to readers."""

    link: str  # the link target as written between the parentheses of "[Read Full Article](...)"
    headline: str  # plain text, Markdown escapes taken off
    source: str  # plain text
    date: dt.date
    line: int = field(default=0, compare=False)  # of its 🔸 line within the region text; 0 if not read


@dataclass(frozen=True)
class EntryFix:
    """A reviewer's correction of one listed story; None leaves that field as the feed has it."""

    headline: str | None = None
    source: str | None = None
    date: dt.date | None = None


@dataclass(frozen=True)
class ListChoices:
    """What reviewers decided about a draft's Further Reading, as front matter
    `further_reading_choices` carries it (README: "Editing Further Reading")."""

    exclude: tuple[str, ...] = ()  # links deleted from the list: never listed in this draft again
    pin: tuple[str, ...] = ()  # links added by hand: kept, first, until removed from the list
    pin_any_age: tuple[str, ...] = ()  # pins kept on purpose: the age rule does not apply to them
    fix: tuple[tuple[str, EntryFix], ...] = ()  # (link, correction), kept while that story is listed

    @property
    def pinned(self) -> tuple[str, ...]:
        """Every pinned link, once, in the order the choices name them."""
        return tuple(dict.fromkeys((*self.pin, *self.pin_any_age)))

    def fix_for(self, link: str) -> EntryFix | None:
        return next((fix for key, fix in self.fix if key == link), None)

    @property
    def empty(self) -> bool:
        return not (self.exclude or self.pin or self.pin_any_age or self.fix)


@dataclass(frozen=True)
class ListArrangement:
    """The Further Reading list to write, and the reviewer choices to write beside it."""

    entries: tuple[ListEntry, ...]  # pins first, then stories; reviewer fixes applied
    choices: ListChoices  # fixes of stories no longer listed dropped
    unresolved_pins: tuple[str, ...] = ()  # pinned links found neither in the list nor among the stories


@dataclass(frozen=True)
class ListReading:
    """A draft's Further Reading list as read from disk, with the choices it adds up to."""

    current: tuple[ListEntry, ...]  # the entries on disk, in their order (none when unreadable)
    choices: ListChoices  # remembered choices plus what the reviewer did since the last write
    recorded: bool = True  # False: no record of what the pipeline last wrote, so nothing was derived
    unreadable: tuple[int, str] | None = None  # (line within the list, why) of the first line not an entry


@dataclass(frozen=True)
class Condition:
    """Something that needs a person (a hand-edited region, a failing feed...), as the ledger keeps it.

    Identity is (subject, kind): a draft's path in the project ("output/x.md") or a feed's URL, and what
    is wrong with it. `signature` is the message with its counters and times masked: a condition is
    reported again only when that changes, never because a count moved on.
    """

    subject: str
    kind: str
    message: str
    signature: str
    since: str  # ISO time of the run that first found it

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject, self.kind)


@dataclass(frozen=True)
class DraftReport:
    """What happened to one draft."""

    slug: str
    path: Path
    outcome: Outcome
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

    def count(self, outcome: Outcome) -> int:
        return sum(1 for d in self.drafts if d.outcome == outcome)

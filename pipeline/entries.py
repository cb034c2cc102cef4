"""The Further Reading list, entry by entry: read it, tell what a reviewer changed, lay out the next one.

An entry is keyed by its link. Compared with what the pipeline last wrote in the list, a link that is
gone was deleted (never listed again), a link that is new was added by hand (pinned: kept, first), and a
changed headline, source or date is a fix (kept while the story is listed). Those choices are kept in
front matter `further_reading_choices`, so they travel with the draft; the order of the list itself
carries any reordering. Everything here is pure: text and records in, records out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from .errors import ChoicesError, UnreadableEntry
from .urls import is_web_url, link_target
from .models import EntryFix, Item, ListArrangement, ListChoices, ListEntry, ListReading
from .select import headline_key

CHOICES_KEY = "further_reading_choices"
CHOICE_FIELDS = ("exclude", "pin", "pin_any_age", "fix")
FIX_FIELDS = ("headline", "source", "date")
ENTRY_FORM = "🔸 {headline} / 🗞️ Source: {source} – 📅 {YYYY-MM-DD} / 🔗 [Read Full Article]({url})"
# The three lines of partials/further-reading.md.j2, read with some slack for whitespace and dashes
# (the gate is strict; the pipeline rewrites a readable entry in the exact form anyway).
_HEADLINE = re.compile(r"^\U0001F538[ \t]+(\S(?:.*\S)?)[ \t]*$")
_SOURCE = re.compile(r"^\U0001F5DE\uFE0F?[ \t]+Source:[ \t]+(\S(?:.*?\S)?)[ \t]+[\u2013\u2014-][ \t]+"
                     r"\U0001F4C5\uFE0F?[ \t]+(\d{4}-\d{2}-\d{2})[ \t]*$")
_LINK = re.compile(r"^\U0001F517\uFE0F?[ \t]+\[Read Full Article\]\(((?:[^\s()]|\([^\s()]*\))+)\)[ \t]*$")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark: any ASCII punctuation may be escaped
_ESCAPED_ENTITY = re.compile(r"&amp;(?=#?\w+;)")


def plain_text(markdown: str) -> str:
    """Text as a reader sees it: the escapes render.escape_markdown adds taken off, spaces collapsed."""
    return " ".join(_ESCAPED.sub(r"\1", _ESCAPED_ENTITY.sub("&", markdown)).split())


# -- reading the list ---------------------------------------------------------------------------


def parse_entries(text: str, empty_text: str = "") -> tuple[ListEntry, ...]:
    """The entries of a Further Reading list; UnreadableEntry names the first line that is not one.

    An empty list, or the sentence the template writes when no news matched (`empty_text`), has no
    entries. Line numbers count from 1 at the list's first line.
    """
    if not text.strip() or (empty_text.strip() and text.split() == empty_text.split()):
        return ()
    entries: list[ListEntry] = []
    first_line: dict[str, int] = {}
    for block in entry_blocks(text.split("\n")):
        entry = _read_entry(block)
        if entry.link in first_line:
            raise UnreadableEntry(entry.line + 2, f"links to the same article as the entry at line "
                                                  f"{first_line[entry.link]}; remove one")
        first_line[entry.link] = entry.line
        entries.append(entry)
    return tuple(entries)


def readable_entries(text: str) -> tuple[ListEntry, ...]:
    """The entries of a list as far as they read: a line that is not part of an entry (a reviewer's note,
    which makes the pipeline leave the list alone) is passed over. For what such a list still shows."""
    found: list[ListEntry] = []
    for block in entry_blocks(text.split("\n")):
        for lines in (block, block[:3]):  # an entry with a stray line run into it is still that entry
            try:
                found.append(_read_entry(lines))
                break
            except UnreadableEntry:
                continue
    return tuple(found)


def entry_blocks(lines: Sequence[str], first: int = 1) -> list[list[tuple[int, str]]]:
    """Runs of non-blank lines as (line number, text), numbered from `first`: one entry each."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=first):
        if line.strip():
            current.append((number, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _read_entry(block: list[tuple[int, str]]) -> ListEntry:
    first = block[0][0]
    head = _HEADLINE.match(block[0][1])
    if head is None:
        raise UnreadableEntry(first, f"an entry starts with `🔸 {{headline}}` ({ENTRY_FORM})")
    if len(block) > 3:
        _read_entry(block[:3])  # the first three lines may be a whole entry: then the fourth is the stray one
        raise UnreadableEntry(block[3][0], f"not part of the entry above it: an entry is three lines "
                                           f"({ENTRY_FORM}), and entries are separated by one blank line")
    if len(block) < 3:
        raise UnreadableEntry(first, f"an entry is three lines ({ENTRY_FORM}), this one has {len(block)}")
    (_, _), (second, source_line), (third, link_line) = block
    source = _SOURCE.match(source_line)
    if source is None:
        raise UnreadableEntry(second, "the second line of an entry is `🗞️ Source: {source} – 📅 {YYYY-MM-DD}`")
    try:
        date = dt.date.fromisoformat(source.group(2))
    except ValueError:
        raise UnreadableEntry(second, f"{source.group(2)!r} is not a date written YYYY-MM-DD") from None
    link = _LINK.match(link_line)
    if link is None:
        raise UnreadableEntry(third, "the third line of an entry is `🔗 [Read Full Article]({url})`")
    if not is_web_url(link.group(1)):
        raise UnreadableEntry(third, f"link {link.group(1)!r} is not http(s); use an absolute https:// URL")
    headline, publisher = plain_text(head.group(1)), plain_text(source.group(1))
    return ListEntry(link_target(link.group(1)), headline, publisher, date, line=first)


def read_list(on_disk: str | None, last: str | None, remembered: ListChoices, empty_text: str) -> ListReading:
    """What the list on disk says, against what the pipeline last wrote there (None: no record).

    Choices are derived only when both can be read; otherwise the remembered ones stand as they are.
    """
    try:
        current = parse_entries(on_disk, empty_text) if on_disk is not None else ()
    except UnreadableEntry as exc:
        return ListReading((), remembered, unreadable=(exc.line, exc.reason))
    try:
        written = parse_entries(last, empty_text) if last is not None else None
    except UnreadableEntry:
        written = None  # written by another version of the templates: as good as no record
    if written is None:
        return ListReading(current, remembered, recorded=False)
    return ListReading(current, derive_choices(written, current, remembered))


def story_entries(items: Iterable[Item]) -> list[ListEntry]:
    """Selected items as list entries, in the same order (undated items are never listed)."""
    return [ListEntry(link_target(item.url), item.headline, item.source, item.date)
            for item in items if item.date is not None]


def entry_items(entries: Iterable[ListEntry], stored: Iterable[Item]) -> list[Item]:
    """The entries as the items templates render: a stored story with the reviewer's fixes, or, for an
    entry added by hand, an item made from the entry itself (it belongs to no feed)."""
    by_link = {link_target(item.url): item for item in stored}
    items = []
    for entry in entries:
        item = by_link.get(entry.link)
        if item is None:
            items.append(Item(feed_url="", guid=entry.link, headline=entry.headline, source=entry.source,
                              date=entry.date, url=entry.link))
        elif (item.headline, item.source, item.date) == (entry.headline, entry.source, entry.date):
            items.append(item)  # as stored: most entries, in most drafts
        else:
            items.append(replace(item, headline=entry.headline, source=entry.source, date=entry.date))
    return items


# -- reviewer choices -----------------------------------------------------------------------------


def derive_choices(
    last: Sequence[ListEntry], current: Sequence[ListEntry], remembered: ListChoices
) -> ListChoices:
    """The remembered choices, plus what the reviewer did to the list since the pipeline last wrote it."""
    last_by_link = {entry.link: entry for entry in last}
    listed = {entry.link for entry in current}
    gone = {link for link in last_by_link if link not in listed}
    added = [entry.link for entry in current if entry.link not in last_by_link]
    pinned = set(remembered.pinned)
    return ListChoices(
        exclude=_unique(link for link in (*remembered.exclude, *gone) if link not in added),
        pin=_unique((*(link for link in remembered.pin if link not in gone),
                     *(link for link in added if link not in pinned))),
        pin_any_age=_unique(link for link in remembered.pin_any_age if link not in gone),
        fix=_derive_fixes(last_by_link, current, remembered, gone | pinned),
    )


def _derive_fixes(last_by_link: Mapping[str, ListEntry], current: Sequence[ListEntry], remembered: ListChoices,
                  skip: set[str]) -> tuple[tuple[str, EntryFix], ...]:
    """Remembered fixes, updated with each field a reviewer changed in a listed story (gone stories and
    pins, whose words are read from the list itself every time, in `skip`, get none)."""
    fixes = {link: fix for link, fix in remembered.fix if link not in skip}
    for entry in current:
        before = last_by_link.get(entry.link)
        if before is None or entry.link in skip:
            continue
        changed = {name: getattr(entry, name) for name in FIX_FIELDS if getattr(entry, name) != getattr(before, name)}
        if changed:
            fixes[entry.link] = replace(fixes.get(entry.link, EntryFix()), **changed)
    return tuple(fixes.items())


def arrange(
    choices: ListChoices, current: Sequence[ListEntry], stories: Sequence[ListEntry], count: int
) -> ListArrangement:
    """The next list: pins first (in list order), then up to `count` entries in all from `stories`
    (best first), never an excluded link; stories already listed keep their order in the list, new
    ones go in by rank; fixes applied."""
    excluded = set(choices.exclude)
    offered = {story.link: _fixed(story, choices.fix_for(story.link)) for story in stories}
    pins, unresolved = _pins(choices, current, offered)
    skipped = excluded | {pin.link for pin in pins}
    taken_headlines = {headline_key(pin.headline) for pin in pins}
    pool = [story for story in offered.values()
            if story.link not in skipped and headline_key(story.headline) not in taken_headlines]
    chosen = pool[: max(0, count - len(pins))]
    rank = {story.link: number for number, story in enumerate(chosen)}
    staying = [entry.link for entry in current if entry.link in rank]
    staying_set = set(staying)
    arriving = [story.link for story in chosen if story.link not in staying_set]
    listed = [offered[link] for link in _merge_by_rank(staying, arriving, rank)]
    as_fed = {story.link: story for story in stories if story.link in rank}
    kept_fixes = tuple((link, needed) for link, fix in choices.fix
                       if link in as_fed and (needed := _needed(fix, as_fed[link])) is not None)
    return ListArrangement(
        entries=tuple(replace(entry, line=0) if entry.line else entry for entry in (*pins, *listed)),
        choices=replace(choices, fix=kept_fixes),
        unresolved_pins=unresolved,
    )


def _pins(choices: ListChoices, current: Sequence[ListEntry],
          offered: Mapping[str, ListEntry]) -> tuple[list[ListEntry], tuple[str, ...]]:
    """The pinned entries in the order the list has them (then the choices'), read from the list, else
    from the stories; and the pinned links found in neither."""
    wanted = [link for link in choices.pinned if link not in choices.exclude]
    listed = {entry.link: entry for entry in current}
    wanted_set = set(wanted)
    in_list_order = [entry.link for entry in current if entry.link in wanted_set]
    pins: list[ListEntry] = []
    unresolved: list[str] = []
    for link in (*in_list_order, *(link for link in wanted if link not in listed)):
        pin = listed.get(link) or offered.get(link)
        if pin is None:
            unresolved.append(link)
        else:
            pins.append(pin)
    return pins, tuple(unresolved)


def _fixed(story: ListEntry, fix: EntryFix | None) -> ListEntry:
    if fix is None:
        return story
    return replace(story, **{name: getattr(fix, name) for name in FIX_FIELDS if getattr(fix, name) is not None})


def _needed(fix: EntryFix, story: ListEntry) -> EntryFix | None:
    """The part of a fix that still differs from the story as the feed has it (None: nothing)."""
    differs = {name: value for name in FIX_FIELDS
               if (value := getattr(fix, name)) is not None and value != getattr(story, name)}
    return EntryFix(**differs) if differs else None


def _merge_by_rank(staying: list[str], arriving: list[str], rank: Mapping[str, int]) -> list[str]:
    """One list from the reviewer's order of the stories that stay and the rank order of new ones:
    a new story goes before the first staying story it outranks, so an untouched list stays ranked."""
    merged: list[str] = []
    i = j = 0
    while i < len(staying) and j < len(arriving):
        if rank[arriving[j]] < rank[staying[i]]:
            merged.append(arriving[j])
            j += 1
        else:
            merged.append(staying[i])
            i += 1
    return merged + staying[i:] + arriving[j:]


def _unique(links: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(links))


# -- front matter ---------------------------------------------------------------------------------


def read_choices(value: object) -> ListChoices:
    """Front matter `further_reading_choices` (as YAML loaded it) as a record; ChoicesError says what is wrong."""
    if value is None:
        return ListChoices()
    if not isinstance(value, dict):
        raise ChoicesError(f"must be a mapping of {', '.join(CHOICE_FIELDS)}")
    unknown = [str(key) for key in value if key not in CHOICE_FIELDS]
    if unknown:
        raise ChoicesError(f"unknown key {unknown[0]!r}; use {', '.join(CHOICE_FIELDS)}")
    fixes = value.get("fix") or {}
    if not isinstance(fixes, dict):
        raise ChoicesError("'fix' must map a link to its headline, source or date")
    return ListChoices(
        exclude=_read_links(value.get("exclude"), "exclude"),
        pin=_read_links(value.get("pin"), "pin"),
        pin_any_age=_read_links(value.get("pin_any_age"), "pin_any_age"),
        fix=tuple((_read_link(link, "fix"), _read_fix(link, fix)) for link, fix in fixes.items()),
    )


def _read_links(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ChoicesError(f"{key!r} must be a list of links")
    return _unique(_read_link(link, key) for link in value)


def _read_link(link: object, key: str) -> str:
    if not isinstance(link, str) or not is_web_url(link):
        raise ChoicesError(f"{key!r} holds {link!r}, which is not an http(s) link")
    return link_target(link)


def _read_fix(link: str, fix: object) -> EntryFix:
    if not isinstance(fix, dict) or not fix or any(key not in FIX_FIELDS for key in fix):
        raise ChoicesError(f"'fix' for {link} must set headline, source or date")
    texts = {}
    for key in ("headline", "source"):
        if key in fix:
            if not isinstance(fix[key], str) or not plain_text(fix[key]):
                raise ChoicesError(f"'fix' {key} for {link} must be text")
            texts[key] = " ".join(fix[key].split())
    date = fix.get("date")
    if date is not None and not isinstance(date, dt.date):
        try:
            date = dt.date.fromisoformat(str(date))
        except ValueError:
            raise ChoicesError(f"'fix' date for {link} must be written YYYY-MM-DD") from None
    if isinstance(date, dt.datetime):
        date = date.date()
    return EntryFix(headline=texts.get("headline"), source=texts.get("source"), date=date)


def write_choices(choices: ListChoices) -> dict[str, object]:
    """The record as front matter holds it: only what is set, plain strings, in a fixed key order."""
    data: dict[str, object] = {}
    for key in ("exclude", "pin", "pin_any_age"):
        links = getattr(choices, key)
        if links:
            data[key] = list(links)
    if choices.fix:
        data["fix"] = {link: {name: (value.isoformat() if isinstance(value, dt.date) else value)
                              for name in FIX_FIELDS if (value := getattr(fix, name)) is not None}
                       for link, fix in choices.fix}
    return data

"""Draft text -> Problems: the release gate behind `pipeline check`.

`check_text` is pure: it takes a draft's text, the shared template text it must match (`Reference`)
and the time, and returns one `Problem` per broken rule with the line a person should look at.
`check_files` and `load_reference` are the I/O edge the CLI calls.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import markdown, unfinished
from .drafts import find_regions, marker_problems, split_draft
from .entries import CHOICES_KEY, entry_blocks, read_choices
from .errors import ChoicesError, DraftError
from .frontmatter import split_front_matter
from .models import REGIONS, STATUSES, Problem
from .publish import PUBLISH_KEYS
from .render import make_environment, render_further_reading, render_template
from .select import headline_key
from .urls import is_web_url, link_target

DISCLAIMER_TEMPLATE = "partials/disclaimer.md.j2"
REQUIRED_KEYS = ("title", "slug", "date", "lastmod", "status", "further_reading")  # and a publishing key
DEFAULT_MAX_AGE_DAYS = 30  # a guide's default, for drafts whose front matter lost max_age_days

FAQ = "## 🙋 Frequently Asked Questions (FAQ)"
CONCLUSION = "## 🧩 Conclusion"
JOIN = "## 📣 How to Join the Group"
FURTHER_READING = "## 📚 Further Reading"
DISCLAIMER = "## 📌 Disclaimer"

# Rule names, as printed; README's "Release check" section lists them.
RULE_FRONT_MATTER = "front-matter"
RULE_SECTIONS = "sections"
RULE_DISCLAIMER = "disclaimer"
RULE_MARKERS = "markers"
RULE_CITATION = "citation"
RULE_LINK = "link"
RULE_FORMAT = "further-reading-format"
RULE_AGE = "further-reading-age"
RULE_DUPLICATE = "further-reading-duplicate"
RULE_AGREEMENT = "further-reading-front-matter"
RULE_TEMPLATE = "template-syntax"
RULE_STATUS = "status"

_VS16 = "\ufe0f"  # emoji presentation selector: invisible, so never the reason a line fails
_BEGIN = "<!-- pipeline:begin {name} -->"
_CITATION = re.compile(r"(?<!\\)\[((?:\\.|[^\[\]\\\n])+?),[ \t]*(\d{4}-\d{2}-\d{2})\](?!\()")
_HTML_LINK = re.compile(r"<[A-Za-z][^<>]*?\s(?:href|src)\s*=\s*[\"']?([^\"'\s>]*)", re.IGNORECASE)
_TEMPLATE = re.compile(r"\{[{%#]")
_ENTRY_HEADLINE = re.compile(r"^\U0001F538 (\S(?:.*\S)?)(?:  )?$")
_ENTRY_SOURCE = re.compile(r"^\U0001F5DE Source: (\S(?:.*\S)?) \u2013 \U0001F4C5 (\S+)(?:  )?$")
_ENTRY_LINK = re.compile(r"^\U0001F517 \[Read Full Article\]\(((?:[^\s()]|\([^\s()]*\))+)\)$")
# Loose reading of a source line, so a citation is not blamed for a format slip in its entry.
_LOOSE_SOURCE = re.compile(r"Source:\s*(.+?)\s*[\u2013\u2014-]+\s*(?:\U0001F4C5\s*)?(\d{4}-\d{2}-\d{2})")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark: any ASCII punctuation may be escaped
_ESCAPED_ENTITY = re.compile(r"&amp;(?=#?\w+;)")

ENTRY_FORM = "🔸 {headline} / 🗞️ Source: {source} – 📅 {YYYY-MM-DD} / 🔗 [Read Full Article]({url})"


@dataclass(frozen=True)
class Reference:
    """What the shared templates say a draft must contain, rendered once per run."""

    disclaimer: str  # templates/partials/disclaimer.md.j2, heading included
    no_news: str  # the Further Reading text the templates write when no item matched
    disclaimer_path: str = "templates/" + DISCLAIMER_TEMPLATE  # named in messages


@dataclass(frozen=True)
class Entry:
    """One Further Reading entry as a reviewer sees it in the draft."""

    line: int  # of its 🔸 line, in the file
    headline: str  # as plain text (Markdown escapes removed)
    source: str
    date: dt.date | None
    url: str | None  # None when the link line is broken


def load_reference(templates_dir: Path) -> Reference:
    """Render the shared parts a draft is compared with, through the project's own Jinja environment."""
    env = make_environment(templates_dir)
    return Reference(
        disclaimer=render_template(env, DISCLAIMER_TEMPLATE),
        no_news=render_further_reading(env, []),
        disclaimer_path=str(templates_dir / DISCLAIMER_TEMPLATE),
    )


def draft_paths(paths: Sequence[Path], output_dir: Path) -> list[Path]:
    """The files to check: the given paths (folders give their *.md), or every output/*.md."""
    if not paths:
        return sorted(output_dir.glob("*.md"))
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.glob("*.md")) if path.is_dir() else [path])
    return found


def check_files(
    paths: Iterable[Path], reference: Reference, now: dt.datetime, *, release: bool = False
) -> tuple[list[Problem], list[DraftError]]:
    """Check each file; files that cannot be read come back as errors, the rest as problems."""
    problems: list[Problem] = []
    errors: list[DraftError] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            errors.append(DraftError(path, "no such file; check the path or run `pipeline build`"))
            continue
        except IsADirectoryError:
            errors.append(DraftError(path, "is a folder; give a draft file"))
            continue
        except UnicodeDecodeError as exc:
            errors.append(DraftError(path, f"is not UTF-8 text ({exc.reason}); save it as UTF-8"))
            continue
        except OSError as exc:
            errors.append(DraftError(path, f"cannot be read ({exc.strerror or exc}); check its permissions"))
            continue
        problems.extend(check_text(path, text, reference, now, release=release))
    return problems, errors


def check_text(
    path: Path, text: str, reference: Reference, now: dt.datetime, *, release: bool = False
) -> list[Problem]:
    """Every problem in one draft, in line order."""
    last = text.count("\n") + (0 if text.endswith("\n") else 1) or 1
    # A problem "after" the last line (a missing section at the end) points at the last line.
    problems = [p if 1 <= p.line <= last else replace(p, line=min(max(p.line, 1), last))
                for p in _Checker(path, text, reference, now, release).run()]
    if not release:  # an unfinished draft may be checked while work goes on; only a release must be done
        problems = [replace(p, severity="warning") if p.rule in unfinished.RULES else p for p in problems]
    return sorted(problems, key=lambda p: (p.line, p.rule))


class _Checker:
    """One draft under check: its parts split once, each rule a method yielding Problems."""

    def __init__(self, path: Path, text: str, reference: Reference, now: dt.datetime, release: bool) -> None:
        self.path = path
        self.reference = reference
        self.today = now.date()
        self.release = release
        self.front_matter: dict[str, object] | None = None
        self.fm_lines: list[str] = []  # the YAML lines; file line = index + 2
        self.fm_error: Problem | None = None
        try:
            draft = split_draft(path, text)
        except DraftError as exc:
            self.fm_error = Problem(path, exc.line or 1, RULE_FRONT_MATTER, _strip_where(exc.message, path))
            self.body, self.offset = _body_without_front_matter(text)
        else:
            self.front_matter = draft.front_matter
            self.fm_lines = draft.front_matter_text.splitlines()
            self.body = draft.body
            self.offset = text[: len(text) - len(draft.body)].count("\n")
        self.lines = self.body.splitlines()
        self.tokens = markdown.parse(self.body)
        # (body line, level, "## text") of each heading of the document, code blocks never among them
        self.heading_list = [(h.line + 1, h.level, f"{'#' * h.level} {h.text}") for h in markdown.headings(self.tokens)]
        self.regions = find_regions(self.body)
        self.entries: list[Entry] = []
        self.listed_citations: set[tuple[str, dt.date]] = set()  # (source, date) on any entry's source line
        self.unparsed_entries = 0

    def problem(self, body_line: int, rule: str, message: str) -> Problem:
        return Problem(self.path, body_line + self.offset, rule, message)

    def run(self) -> Iterator[Problem]:
        yield from self.check_front_matter()
        yield from self.check_sections()
        yield from self.check_disclaimer()
        yield from self.check_markers()
        yield from self.check_further_reading()  # before citations: it parses the entries
        yield from self.check_citations()
        yield from self.check_links()
        yield from self.check_template_syntax()
        yield from self.check_unfinished()

    # -- front matter ------------------------------------------------------------------------

    def fm_line(self, key: str, within: str | None = None) -> int:
        """The file line of a top-level key (or of `within` text after it); the opening '---' if absent."""
        for index, line in enumerate(self.fm_lines):
            if re.match(rf"{re.escape(key)}\s*:", line):
                if within is None:
                    return index + 2
                for later in range(index, len(self.fm_lines)):
                    if within in self.fm_lines[later]:
                        return later + 2
                return index + 2
        return 1

    def check_front_matter(self) -> Iterator[Problem]:
        if self.fm_error is not None:
            yield self.fm_error
            return
        fm = self.front_matter or {}
        for key in REQUIRED_KEYS:
            if key not in fm:
                yield Problem(self.path, 1, RULE_FRONT_MATTER, f"front matter lacks {key!r}; add it (see README)")
        if not any(key in fm for key in PUBLISH_KEYS):  # else a site would publish it unreviewed
            yield Problem(self.path, 1, RULE_FRONT_MATTER, "front matter lacks 'draft' (Hugo) or 'published' "
                                                           "(Jekyll); add it (see README)")
        yield from self.check_front_matter_values(fm)
        yield from self.check_status(fm)
        yield from self.check_front_matter_list(fm)

    def check_front_matter_values(self, fm: dict[str, object]) -> Iterator[Problem]:
        for key in ("title", "slug"):
            if key in fm and (not isinstance(fm[key], str) or not str(fm[key]).strip()):
                yield Problem(self.path, self.fm_line(key), RULE_FRONT_MATTER, f"{key!r} must be non-empty text")
        for key in ("date", "lastmod"):
            if key in fm and _timestamp(fm[key]) is None:
                yield Problem(self.path, self.fm_line(key), RULE_FRONT_MATTER,
                              f"{key!r} is not a date; write it like '2026-03-06T08:00:00Z'")
        for key in PUBLISH_KEYS:
            if key in fm and not isinstance(fm[key], bool):
                yield Problem(self.path, self.fm_line(key), RULE_FRONT_MATTER, f"{key!r} must be true or false")
        value = fm.get("max_age_days")
        if "max_age_days" in fm and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            yield Problem(self.path, self.fm_line("max_age_days"), RULE_FRONT_MATTER,
                          "'max_age_days' must be a whole number of days")

    def check_status(self, fm: dict[str, object]) -> Iterator[Problem]:
        status = fm.get("status")
        if "status" in fm and status not in STATUSES:
            yield Problem(self.path, self.fm_line("status"), RULE_FRONT_MATTER,
                          f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        if self.release and status != "approved":
            yield Problem(self.path, self.fm_line("status"), RULE_STATUS,
                          f"status is {status!r}, a release needs 'approved' "
                          f"(pipeline status {self.path} approved, after review)")

    def check_front_matter_list(self, fm: dict[str, object]) -> Iterator[Problem]:
        listed = fm.get("further_reading")
        if "further_reading" in fm and not isinstance(listed, list):
            yield Problem(self.path, self.fm_line("further_reading"), RULE_FRONT_MATTER,
                          "'further_reading' must be a list of {headline, source, date, url}")
        for number, entry in enumerate(listed if isinstance(listed, list) else [], start=1):
            if not _complete_entry(entry):
                yield Problem(self.path, self.fm_line("further_reading"), RULE_FRONT_MATTER,
                              f"further_reading entry {number} needs headline, source, date (YYYY-MM-DD) and url")

    def max_age_days(self) -> int:
        value = (self.front_matter or {}).get("max_age_days", DEFAULT_MAX_AGE_DAYS)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else DEFAULT_MAX_AGE_DAYS

    def fm_further_reading(self) -> list[dict[str, object]]:
        listed = (self.front_matter or {}).get("further_reading")
        return [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []

    # -- structure ---------------------------------------------------------------------------

    def headings(self) -> list[tuple[int, int, str]]:
        """(body line, level, "## text") of every heading of the document."""
        return self.heading_list

    def marker_line(self, name: str, kind: str = "begin") -> int | None:
        marker = f"<!-- pipeline:{kind} {name} -->"
        for number, line in enumerate(self.lines, start=1):
            if line.strip() == marker:
                return number
        return None

    def check_sections(self) -> Iterator[Problem]:
        yield from self.check_repeated_headings()
        yield from self.check_title()
        yield from self.check_section_order()

    def check_repeated_headings(self) -> Iterator[Problem]:
        headings = self.headings()
        for heading in (FAQ, CONCLUSION, JOIN, FURTHER_READING, DISCLAIMER):
            lines = [n for n, _, text in headings if _same(text, heading)]
            for extra in lines[1:]:
                yield self.problem(extra, RULE_SECTIONS, f"`{heading}` appears again (first at line "
                                   f"{lines[0] + self.offset}); keep one")
        ones = [n for n, level, _ in headings if level == 1]
        for extra in ones[1:]:
            yield self.problem(extra, RULE_SECTIONS, "a second `# ` heading; the title is the only one, "
                               "use `## ` for sections")

    def check_title(self) -> Iterator[Problem]:
        headings = self.headings()
        title_line, shown = next(((n, text[2:]) for n, level, text in headings if level == 1), (None, ""))
        if title_line is None:
            return  # the order check says it is missing
        if title_line != headings[0][0]:
            yield self.problem(title_line, RULE_SECTIONS, "the `# title` heading must come before every other heading")
        title = (self.front_matter or {}).get("title")
        shown = _plain(shown)
        if isinstance(title, str) and " ".join(shown.split()) != " ".join(title.split()):
            yield self.problem(title_line, RULE_SECTIONS,
                               f"the `# ` heading says {shown!r} but front matter title is {title!r}; make them agree")

    def check_section_order(self) -> Iterator[Problem]:
        headings = self.headings()
        required: list[tuple[str, int | None]] = [("`# title`", next((n for n, lv, _ in headings if lv == 1), None))]
        required.append(("the context region", self.marker_line("context")))
        for heading in (FAQ, CONCLUSION, JOIN, FURTHER_READING):
            required.append((f"`{heading}`", self.heading_line(headings, heading)))
        required.append(("the further-reading region", self.marker_line("further-reading")))
        required.append((f"`{DISCLAIMER}`", self.heading_line(headings, DISCLAIMER)))
        last_name, last_line = None, 0
        for index, (name, line) in enumerate(required):
            if line is None and name.endswith("region"):
                continue  # `markers` says a region's markers are missing; here only its place matters
            if line is None:
                following = next((ln for _, ln in required[index + 1 :] if ln is not None), len(self.lines) or 1)
                following = max(following, last_line or 1)
                where = f"after {last_name}" if last_name else "at the top of the body"
                yield self.problem(following, RULE_SECTIONS, f"missing {name}; it belongs {where}")
                continue
            if line < last_line:
                yield self.problem(line, RULE_SECTIONS,
                                   f"{name} comes before {last_name} (line {last_line + self.offset}); "
                                   "expected order: # title, context, FAQ, Conclusion, How to Join, "
                                   "Further Reading, Disclaimer")
                continue
            last_name, last_line = name, line

    @staticmethod
    def heading_line(headings: list[tuple[int, int, str]], wanted: str) -> int | None:
        return next((n for n, _, text in headings if _same(text, wanted)), None)

    def check_disclaimer(self) -> Iterator[Problem]:
        headings = self.headings()
        start = self.heading_line(headings, DISCLAIMER)
        if start is None:
            return  # `sections` already says it is missing
        end = next((n for n, level, _ in headings if n > start and level <= 2), len(self.lines) + 1)
        have = [(word, number) for number in range(start, end) for word in self.lines[number - 1].split()]
        want = self.reference.disclaimer.split()
        # Compare word by word: whitespace and line wrapping are the reviewer's business, words are not.
        for index, expected in enumerate(want):
            if index >= len(have):
                yield self.problem(end - 1, RULE_DISCLAIMER,
                                   f"the disclaimer stops short of the shared text at {expected!r}; "
                                   f"copy it from {self.reference.disclaimer_path}")
                return
            word, number = have[index]
            if _same(word, expected):
                continue
            yield self.problem(number, RULE_DISCLAIMER,
                               f"the disclaimer differs from {self.reference.disclaimer_path} at {word!r} "
                               f"(expected {expected!r}); copy the shared text, edit the template to change it")
            return
        if len(have) > len(want):
            yield self.problem(have[len(want)][1], RULE_DISCLAIMER,
                               f"text after the shared disclaimer ({have[len(want)][0]!r}...); "
                               f"the disclaimer must be exactly {self.reference.disclaimer_path}")

    def check_markers(self) -> Iterator[Problem]:
        broken = marker_problems(self.body)
        for line, message in broken:
            yield self.problem(line, RULE_MARKERS, message)
        for name in REGIONS:
            if name in self.regions:
                continue
            begin, end = self.marker_line(name), self.marker_line(name, "end")
            if begin is None and end is None and not any(f"pipeline:begin {name} " in line for line in self.lines):
                yield self.problem(1, RULE_MARKERS,
                                   f"region {name!r} has no markers; restore `<!-- pipeline:begin {name} -->` "
                                   f"and `<!-- pipeline:end {name} -->` around it")
            elif not broken:
                yield self.problem(begin or end or 1, RULE_MARKERS,
                                   f"region {name!r} markers must each stand alone on their own line")

    # -- Further Reading ---------------------------------------------------------------------

    def further_reading_lines(self) -> tuple[int, list[str]] | None:
        """(body line of the first content line, content lines) of the list, region or section."""
        content = self.regions.get("further-reading")
        if content is not None:
            begin = _BEGIN.format(name="further-reading") + "\n"
            at = self.body.find(begin + content)
            if at >= 0:
                return self.body.count("\n", 0, at) + 2, content.split("\n") if content else []
        headings = self.headings()
        start = self.heading_line(headings, FURTHER_READING)
        if start is None:
            return None
        end = next((n for n, level, _ in headings if n > start and level <= 2), len(self.lines) + 1)
        lines = [ln for ln in self.lines[start : end - 1] if "<!-- pipeline:" not in ln]
        return start + 1, lines

    def check_further_reading(self) -> Iterator[Problem]:
        found = self.further_reading_lines()
        if found is None:
            return
        first, lines = found
        blocks = entry_blocks(lines, first)
        if not blocks:
            yield self.problem(first, RULE_FORMAT, "Further Reading is empty; run `pipeline refresh`")
            return
        no_news = " ".join(self.reference.no_news.split())
        if len(blocks) == 1 and " ".join(" ".join(t for _, t in blocks[0]).split()) == no_news:
            yield self.problem(first, unfinished.RULE_EMPTY_FURTHER_READING,
                               "Further Reading says no news matched; a release needs stories: run `pipeline "
                               "refresh`, or give the guide keywords or tags its news would match")
            yield from self.check_agreement([], first)
            return
        previous_end = None
        for block in blocks:
            if previous_end is not None and block[0][0] - previous_end > 2:
                yield self.problem(previous_end + 1, RULE_FORMAT,
                                   "entries are separated by exactly one blank line")
            previous_end = block[-1][0]
            entry, problems = _parse_entry(block)
            for _, text in block:
                stated = _LOOSE_SOURCE.search(text)
                if stated and _date(stated.group(2)):
                    self.listed_citations.add((_fold(_plain(stated.group(1))), _date(stated.group(2))))  # type: ignore[arg-type]
            self.unparsed_entries += entry is None
            for line, message in problems:
                yield self.problem(line, RULE_FORMAT, message)
            if entry is not None:
                self.entries.append(Entry(entry.line + self.offset, entry.headline, entry.source, entry.date, entry.url))
        yield from self.check_age()
        yield from self.check_duplicates()
        yield from self.check_agreement(self.entries, first)

    def pinned_any_age(self) -> frozenset[str]:
        """Links a reviewer pinned on purpose (further_reading_choices.pin_any_age): no age limit."""
        try:
            choices = read_choices((self.front_matter or {}).get(CHOICES_KEY))
        except ChoicesError:
            return frozenset()  # the pipeline reports an unreadable key; here it exempts nothing
        return frozenset(choices.pin_any_age)

    def check_age(self) -> Iterator[Problem]:
        days = self.max_age_days()
        oldest = self.today - dt.timedelta(days=days)
        exempt = self.pinned_any_age()
        for entry in self.entries:
            if entry.date is None or (entry.url and link_target(entry.url) in exempt):
                continue
            if entry.date < oldest:
                yield Problem(self.path, entry.line + 1, RULE_AGE,
                              f"{entry.headline!r} is dated {entry.date}, older than max_age_days ({days}, "
                              f"so not before {oldest}); run `pipeline refresh` or remove it")
            elif entry.date > self.today:
                yield Problem(self.path, entry.line + 1, RULE_AGE,
                              f"{entry.headline!r} is dated {entry.date}, in the future (today is {self.today})")

    def check_duplicates(self) -> Iterator[Problem]:
        by_url: dict[str, Entry] = {}
        by_headline: dict[str, Entry] = {}
        for entry in self.entries:
            url, key = _url_key(entry.url or ""), headline_key(entry.headline)
            if entry.url and url in by_url:
                yield Problem(self.path, entry.line + 2, RULE_DUPLICATE,
                              f"links to the same article as the entry at line {by_url[url].line}; remove one")
            elif key in by_headline:
                yield Problem(self.path, entry.line, RULE_DUPLICATE,
                              f"same headline as the entry at line {by_headline[key].line}; remove one")
            if entry.url:
                by_url.setdefault(url, entry)
            by_headline.setdefault(key, entry)

    def check_agreement(self, entries: Sequence[Entry], first: int) -> Iterator[Problem]:
        if self.front_matter is None or not isinstance(self.front_matter.get("further_reading"), list):
            return  # `front-matter` reports a missing or broken list
        listed = self.fm_further_reading()
        fix = "run `pipeline refresh`: it writes front matter further_reading from the list"
        unmatched = list(range(len(listed)))
        for entry in entries:
            twin = next((i for i in unmatched if entry.url
                         and _url_key(str(listed[i].get("url", ""))) == _url_key(entry.url)), None)
            if twin is None:  # a reviewer may have fixed the link: the same story by its headline
                twin = next((i for i in unmatched
                             if headline_key(str(listed[i].get("headline", ""))) == headline_key(entry.headline)), None)
            if twin is None:
                yield Problem(self.path, entry.line, RULE_AGREEMENT,
                              f"{entry.headline!r} is not in front matter further_reading; {fix}")
                continue
            unmatched.remove(twin)
            fm = listed[twin]
            if entry.url and _url_key(str(fm.get("url", ""))) != _url_key(entry.url):
                yield Problem(self.path, entry.line + 2, RULE_AGREEMENT,
                              f"link {entry.url!r} differs from front matter further_reading ({fm.get('url')!r}); {fix}")
            for key, shown in (("headline", entry.headline), ("source", entry.source)):
                theirs = " ".join(str(fm.get(key, "")).split())
                if " ".join(shown.split()) != theirs:
                    yield Problem(self.path, entry.line + (key == "source"), RULE_AGREEMENT,
                                  f"{key} {shown!r} differs from front matter further_reading ({theirs!r}); {fix}")
            if entry.date is not None and _date(fm.get("date")) != entry.date:
                yield Problem(self.path, entry.line + 1, RULE_AGREEMENT,
                              f"date {entry.date} differs from front matter further_reading "
                              f"({fm.get('date')}); {fix}")
        if self.unparsed_entries:
            return  # entries the format rule rejected cannot be matched; that rule has said so
        for index in unmatched:
            headline = listed[index].get("headline")
            yield Problem(self.path, self.fm_line("further_reading", str(listed[index].get("url", "")) or None),
                          RULE_AGREEMENT,
                          f"front matter further_reading lists {headline!r}, which Further Reading does not "
                          f"show (near line {first + self.offset}); {fix}")

    # -- text-wide rules ---------------------------------------------------------------------

    def check_citations(self) -> Iterator[Problem]:
        # Any source line counts, even in an entry with other format problems: one fault, one report.
        entries = self.listed_citations
        for first, text in markdown.prose(self.tokens):
            for match in _CITATION.finditer(text):
                source, stamp = _plain(match.group(1)), match.group(2)
                if (_fold(source), _date(stamp)) not in entries:
                    yield self.problem(first + 1 + text.count("\n", 0, match.start()), RULE_CITATION,
                                       f"[{source}, {stamp}] matches no Further Reading entry; "
                                       "cite a listed source and date, or remove the citation")

    def link_targets(self) -> Iterator[tuple[int, str]]:
        """(body line, destination) of every link a reader's Markdown renderer makes."""
        for line, token in markdown.positioned(self.tokens):
            if token.type in ("link_open", "image"):
                yield line + 1, str(token.attrs.get("href" if token.type == "link_open" else "src", ""))
            elif token.type == "definition":
                yield line + 1, str(token.meta.get("url", ""))
            elif token.type in ("html_inline", "html_block"):
                for match in _HTML_LINK.finditer(token.content):
                    yield line + 1 + token.content.count("\n", 0, match.start()), match.group(1)

    def check_links(self) -> Iterator[Problem]:
        for number, target in self.link_targets():
            if not is_web_url(target):
                yield self.problem(number, RULE_LINK, f"link {target!r} is not http(s); use an absolute https:// URL")
        for index, entry in enumerate(self.fm_further_reading(), start=1):
            url = entry.get("url")
            if isinstance(url, str) and not is_web_url(url):
                yield Problem(self.path, self.fm_line("further_reading", url), RULE_LINK,
                              f"further_reading entry {index} url {url!r} is not http(s)")

    def check_template_syntax(self) -> Iterator[Problem]:
        reported: set[int] = set()
        for first, text in markdown.prose(self.tokens):
            for match in _TEMPLATE.finditer(text):
                number = first + 1 + text.count("\n", 0, match.start())
                if number not in reported:  # one report per line
                    reported.add(number)
                    yield self.problem(number, RULE_TEMPLATE,
                                       f"template syntax {match.group(0)!r} left in the text; finish or remove it "
                                       "(write it inside `code` if it is meant literally)")


    # -- unfinished work (warnings; failures with --release) -----------------------------------

    def check_unfinished(self) -> Iterator[Problem]:
        regions = [(begin, end) for name in REGIONS
                   if (begin := self.marker_line(name)) is not None and (end := self.marker_line(name, "end")) is not None]
        for line, rule, message in (*unfinished.ai_banners(self.lines), *unfinished.placeholders(self.tokens),
                                    *unfinished.empty_sections(self.tokens), *unfinished.notes(self.tokens, regions)):
            yield self.problem(line, rule, message)
        for file_line, rule, message in unfinished.placeholder_in_front_matter(self.fm_lines):
            yield Problem(self.path, file_line, rule, message)
        weak = unfinished.stopword_keywords((self.front_matter or {}).get("keywords"))
        if weak:
            yield Problem(self.path, self.fm_line("keywords"), unfinished.RULE_KEYWORDS, weak)


def _complete_entry(entry: object) -> bool:
    """A front matter further_reading entry with every field a reader needs."""
    return isinstance(entry, dict) and _date(entry.get("date")) is not None \
        and all(isinstance(entry.get(k), str) and entry.get(k) for k in ("headline", "source", "url"))


def _strip_where(message: str, path: Path) -> str:
    """A DraftError's message without its 'path:line: ' prefix (Problem prints its own)."""
    return re.sub(rf"^{re.escape(str(path))}(:\d+)?: ", "", message)


def _body_without_front_matter(text: str) -> tuple[str, int]:
    """Best-effort body when the front matter is broken, so the other rules still run."""
    try:
        parts = split_front_matter(text)
    except ValueError:
        return text, 0
    return parts.body, parts.body_line


def _parse_entry(block: list[tuple[int, str]]) -> tuple[Entry | None, list[tuple[int, str]]]:
    """One Further Reading entry (lines relative to the body) and what is wrong with its format."""
    problems: list[tuple[int, str]] = []
    if len(block) != 3:
        return None, [(block[0][0], f"an entry is three lines ({ENTRY_FORM}), this one has {len(block)}; "
                                    "separate entries by one blank line")]
    (n1, headline_line), (n2, source_line), (n3, link_line) = block
    head = _ENTRY_HEADLINE.match(headline_line)
    source = _ENTRY_SOURCE.match(source_line.replace(_VS16, ""))
    link = _ENTRY_LINK.match(link_line)
    if head is None:
        problems.append((n1, "first line of an entry must be `🔸 {headline}`"))
    date = None
    if source is None:
        problems.append((n2, "second line of an entry must be `🗞️ Source: {source} – 📅 {YYYY-MM-DD}`"))
    else:
        date = _date(source.group(2))
        if date is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", source.group(2)):
            problems.append((n2, f"{source.group(2)!r} is not a date written YYYY-MM-DD"))
    if link is None:
        problems.append((n3, "third line of an entry must be `🔗 [Read Full Article]({url})`"))
    if head is None or source is None:
        return None, problems
    # A broken link line still leaves a headline, source and date that citations can match.
    url = unquote(link.group(1)) if link else None
    return Entry(n1, _plain(head.group(1)), _plain(source.group(1)), date, url), problems


def _plain(markdown: str) -> str:
    """Text as a reader sees it: the escapes render.escape_markdown adds taken off again."""
    return _ESCAPED.sub(r"\1", _ESCAPED_ENTITY.sub("&", markdown))


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _same(found: str, wanted: str) -> bool:
    return found.replace(_VS16, "").strip() == wanted.replace(_VS16, "").strip()


def _url_key(url: str) -> str:
    return unquote(url.strip())


def _date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _timestamp(value: object) -> dt.datetime | dt.date | None:
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None

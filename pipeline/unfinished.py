"""What a person has not finished yet: the release gate's rules for drafts that are not done.

Each function reads one part of a parsed draft and returns (body line, rule, message); `check` turns
them into Problems, warnings without `--release` and failures with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from markdown_it.token import Token

from . import markdown
from .models import AI_BANNER, PLACEHOLDER

RULE_AI_BANNER = "ai-banner"
RULE_PLACEHOLDER = "placeholder"
RULE_EMPTY_FURTHER_READING = "further-reading-empty"
RULE_EMPTY_SECTION = "empty-section"
RULE_KEYWORDS = "keywords"
RULE_NOTE = "note"
RULES = (RULE_AI_BANNER, RULE_PLACEHOLDER, RULE_EMPTY_FURTHER_READING, RULE_EMPTY_SECTION, RULE_KEYWORDS,
         RULE_NOTE)

Finding = tuple[int, str, str]  # (1-based body line, rule, message)

# Words that pick no news on their own: a guide whose keywords are all among them matches nothing useful.
STOPWORDS = frozenset("""
a about after all also an and any are as at be because been before but by can could do does for from get
had has have how i if in into is it its just may more most my new no not of on one or our out over should
so some such than that the their them then there these they this to up us was we what when where which who
why will with would you your guide guides china
""".split())

_CRITIC_COMMENT = re.compile(r"\{>>(.*?)<<\}", re.DOTALL)
_LABEL = re.compile(r"^\*\*[^*\n]+:\*\*$")  # a bold label that introduces what follows, e.g. **Quick checklist:**


def _line(first: int, text: str, at: int) -> int:
    """1-based body line of position `at` in a chunk of text that starts on 0-based line `first`."""
    return first + 1 + text.count("\n", 0, at)


def ai_banners(lines: Sequence[str]) -> Iterator[Finding]:
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith(AI_BANNER):
            yield number, RULE_AI_BANNER, ("the AI-drafted line is still here; check every sentence against its "
                                           "source, then delete the line")


def placeholders(tokens: list[Token]) -> Iterator[Finding]:
    for first, text in markdown.prose(tokens):
        for offset, line in enumerate(text.split("\n")):
            if PLACEHOLDER in line:
                yield first + 1 + offset, RULE_PLACEHOLDER, (f"placeholder text ({PLACEHOLDER} ...) left from the "
                                                             "skeleton; write the real text")


def placeholder_in_front_matter(fm_lines: Sequence[str]) -> Iterator[tuple[int, str, str]]:
    """(file line, rule, message) for a placeholder in a front matter value (say `description`)."""
    for index, line in enumerate(fm_lines):
        if PLACEHOLDER in line:
            key = line.split(":", 1)[0].strip() or "a value"
            yield index + 2, RULE_PLACEHOLDER, f"front matter {key} is still placeholder text; write the real text"


def empty_sections(tokens: list[Token]) -> Iterator[Finding]:
    """A heading with nothing under it before the next heading of its level or above, and a label
    like `**Quick checklist:**` with nothing after it."""
    starts = [(i, t) for i, t in enumerate(tokens) if t.level == 0 and t.nesting != -1 and t.map is not None]
    for index, (at, token) in enumerate(starts):
        following = starts[index + 1][1] if index + 1 < len(starts) else None
        line = token.map[0] + 1 if token.map else 1
        text = tokens[at + 1].content.strip() if at + 1 < len(tokens) else ""
        if token.type == "heading_open" and token.tag != "h1":
            if following is None or (following.type == "heading_open" and following.tag <= token.tag):
                yield line, RULE_EMPTY_SECTION, (f"{token.markup} {text}: nothing under this heading; write it, "
                                                 "or remove the heading")
        elif token.type == "paragraph_open" and _LABEL.match(text):
            if following is None or following.type == "heading_open":
                yield line, RULE_EMPTY_SECTION, f"{text} has nothing after it; add its items, or remove it"


def stopword_keywords(keywords: object) -> str | None:
    """The message when a keywords list is there but every word of it is a stopword."""
    if not isinstance(keywords, list) or not keywords:
        return None
    words = [w for k in keywords for w in re.findall(r"\w+", str(k).casefold())]
    if all(w in STOPWORDS for w in words):
        shown = ", ".join(str(k) for k in keywords)
        return (f"keywords ({shown}) are only common words, which match no news worth listing; give the guide "
                "words its readers' news would use")
    return None


def notes(tokens: list[Token], regions: Sequence[tuple[int, int]]) -> Iterator[Finding]:
    """Reviewer notes (`{>>like this<<}`, CriticMarkup) outside the managed regions' lines."""
    for first, text in markdown.prose(tokens):
        for match in _CRITIC_COMMENT.finditer(text):
            line = _line(first, text, match.start())
            if any(begin <= line <= end for begin, end in regions):
                continue
            note = " ".join(match.group(1).split())
            yield line, RULE_NOTE, (f"reviewer note {{>>{note[:60]}<<}} is still open; resolve it and "
                                    "delete the note before release")

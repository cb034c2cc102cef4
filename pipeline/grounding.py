"""Checks on model-written text before it may reach a draft: pure functions, no model, no I/O.

The model's answer is treated like feed text: untrusted. Links, URLs, HTML and template syntax are
removed; every `[Publisher, YYYY-MM-DD]` citation must name an item the model was given, and a
sentence that cites anything else is dropped; the rest is Markdown-escaped and bounded in length.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .models import Item
from .render import escape_markdown

MAX_CONTEXT_CHARS = 1200  # the context paragraph's sentences, as written into the draft

_TEMPLATE = re.compile(r"\{[{%#].*?[}%#]\}|\{\{|\}\}|\{%|%\}|\{#|#\}", re.DOTALL)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_REFERENCE_LINK = re.compile(r"\[([^\]]*)\]\[[^\]]*\]")
_REFERENCE_DEFINITION = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
_HTML = re.compile(r"<!--.*?-->|<[A-Za-z/!][^>]*>", re.DOTALL)
# A script scheme goes even inside a word ("ajavascript:"); the harmless-looking ones only at a
# word's start, so prose like "metadata: ..." keeps its words.
_URL = re.compile(r"(?:https?|ftp)://[^\s<>\]\)]*|(?:javascript|vbscript):[^\s<>\]\)]*"
                  r"|\b(?:data|mailto|file):[^\s<>\]\)]*|www\.[^\s<>\]\)]+", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}(?:#{1,6}\s+|>\s*|[-*+]\s+|\d+[.)]\s+)", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_LABEL = re.compile(r"^\s*(?:real[- ]world context|context)\s*:\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[A-Z0-9\"“‘(\[])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CITATION = re.compile(r"\[([^\[\]]+?),\s*(\d{4}-\d{2}-\d{2})\]")
_STRAY_BRACKET = re.compile(r"\[[^\[\]]*\]|[\[\]]")


@dataclass(frozen=True)
class Cleaned:
    """Model text with everything that could act as markup taken out, and what was taken."""

    text: str
    removed: tuple[str, ...]  # one plain note per kind of thing removed, e.g. "2 links or URLs"


@dataclass(frozen=True)
class Grounded:
    """The sentences that survived the citation check, ready for a draft."""

    markdown: str  # escaped sentences joined by spaces; "" when nothing grounded remains
    cited: int  # how many distinct items the kept sentences cite
    dropped: tuple[str, ...]  # one line per dropped sentence, saying why


def cite(item: Item) -> str:
    """How the model must cite an item: [Publisher, YYYY-MM-DD]."""
    return f"[{item.source}, {item.date.isoformat() if item.date else 'undated'}]"


def _key(source: str, date: str) -> tuple[str, str]:
    # Emphasis marks and escapes are stripped from model text, so they must not decide a match.
    return (" ".join(re.sub(r"[*_`\\]", "", source).split()).casefold(), date)


def clean_model_text(text: str) -> Cleaned:
    """Strip links, images, URLs, HTML and template syntax; keep a link's words, lose its target."""
    counts: dict[str, int] = {}

    def count(kind: str, pattern: re.Pattern[str], replacement: str, value: str) -> str:
        value, n = pattern.subn(replacement, value)
        if n:
            counts[kind] = counts.get(kind, 0) + n
        return value

    text = _CONTROL.sub(" ", text)
    text = count("template syntax", _TEMPLATE, " ", text)
    text = count("HTML", _HTML, " ", text)
    text = count("images", _IMAGE, " ", text)
    text = count("links or URLs", _LINK, r"\1", text)
    text = count("links or URLs", _REFERENCE_LINK, r"\1", text)
    text = count("links or URLs", _REFERENCE_DEFINITION, " ", text)
    text = count("links or URLs", _URL, " ", text)
    text = _HEADING.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = " ".join(text.split())
    text = _LABEL.sub("", text)
    # An emptied "(see )" or "()" left behind by a removed URL reads badly.
    text = re.sub(r"\(\s*(?:see|via|at|source:?)?\s*\)", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    text = " ".join(text.split())
    removed = tuple(f"{n} {kind}" for kind, n in counts.items())
    return Cleaned(text=text, removed=removed)


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph; a citation after the full stop stays with its sentence."""
    text = re.sub(r"([.!?])\s+(\[[^\[\]]+?,\s*\d{4}-\d{2}-\d{2}\])", r" \2\1", text)
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def ground(text: str, items: Sequence[Item], max_chars: int = MAX_CONTEXT_CHARS) -> Grounded:
    """Keep whole sentences whose every citation names an item given; escape them for Markdown.

    Citations are rewritten from the item itself, so the draft shows the publisher exactly as
    Further Reading does. Any other bracketed text counts as a citation we cannot check.
    """
    known = {_key(item.source, item.date.isoformat()): item for item in items if item.date}
    kept: list[str] = []
    cited: set[tuple[str, str]] = set()
    dropped: list[str] = []
    length = 0
    for sentence in split_sentences(text):
        citations: list[str] = []
        sentence_cites: set[tuple[str, str]] = set()
        problem = None

        def placeholder(match: re.Match[str]) -> str:
            nonlocal problem
            key = _key(match.group(1), match.group(2))
            item = known.get(key)
            if item is None:
                problem = problem or (f"cites [{match.group(1).strip()}, {match.group(2)}], "
                                      "which is not among the items given")
                return ""
            sentence_cites.add(key)
            citations.append(f"[{escape_markdown(item.source)}, {match.group(2)}]")
            return f"\x00{len(citations) - 1}\x00"

        # Citations are swapped for placeholders so the rest can be escaped in one piece.
        marked = CITATION.sub(placeholder, sentence)
        stray = _STRAY_BRACKET.search(marked)
        if problem is None and stray:
            problem = f"has a bracketed reference we cannot check ({stray.group(0)!r})"
        if problem is not None:
            dropped.append(f"dropped sentence that {problem}: {_quote(sentence)}")
            continue
        rendered = re.sub(r"\x00(\d+)\x00", lambda m: citations[int(m.group(1))], escape_markdown(marked))
        if length + len(rendered) + (1 if kept else 0) > max_chars:
            dropped.append(f"dropped sentence over the {max_chars}-character limit: {_quote(sentence)}")
            continue
        kept.append(rendered)
        cited |= sentence_cites
        length += len(rendered) + (1 if len(kept) > 1 else 0)
    if not cited:
        return Grounded(markdown="", cited=0, dropped=tuple(dropped))
    return Grounded(markdown=" ".join(kept), cited=len(cited), dropped=tuple(dropped))


def _quote(sentence: str, limit: int = 100) -> str:
    short = sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"
    return f'"{short}"'

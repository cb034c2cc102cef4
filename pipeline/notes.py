"""Reviewer notes: CriticMarkup comments `{>>like this<<}` written anywhere in a draft.

Notes are a markdown-it inline rule, so a note inside a code span or a fenced block is code, not a
note. Outside the managed regions they are the reviewer's own text, which refresh and the three-way
merge keep; `pipeline check --release` fails while any remain (rule `note`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_inline import StateInline

OPEN = "{>>"
CLOSE = "<<}"
TOKEN = "critic_note"


@dataclass(frozen=True)
class Note:
    """One reviewer note."""

    line: int  # 1-based line of the text it was parsed from where the note's block starts
    text: str  # what the reviewer wrote between the markers, trimmed


def _note_rule(state: StateInline, silent: bool) -> bool:
    if not state.src.startswith(OPEN, state.pos):
        return False
    end = state.src.find(CLOSE, state.pos + len(OPEN))
    if end < 0 or end > state.posMax:
        return False
    if not silent:
        token = state.push(TOKEN, "", 0)
        token.content = state.src[state.pos + len(OPEN) : end].strip()
    state.pos = end + len(CLOSE)
    return True


def notes_plugin(md: MarkdownIt) -> None:
    """Teach a MarkdownIt parser `{>>note<<}`; rendered as an escaped, highlighted <mark>."""
    md.inline.ruler.before("emphasis", TOKEN, _note_rule)

    def render(self: object, tokens: list, idx: int, options: object, env: dict) -> str:
        from markdown_it.common.utils import escapeHtml

        number = env.setdefault("note_count", 0) + 1
        env["note_count"] = number
        return (f'<mark class="note" id="note-{number}" role="note" aria-label="Reviewer note {number}">'
                f'<span class="note-label">note</span> {escapeHtml(tokens[idx].content)}</mark>')

    md.add_render_rule(TOKEN, render)


def markdown_parser() -> MarkdownIt:
    """CommonMark with raw HTML off (feed and model text stays text) and reviewer notes on."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).use(notes_plugin)


def find_notes(markdown: str, first_line: int = 1) -> list[Note]:
    """Every note in a piece of Markdown, in order; lines count from `first_line`."""
    if OPEN not in markdown:
        return []
    notes: list[Note] = []
    for token in markdown_parser().parse(markdown):
        if token.type != "inline" or not token.children:
            continue
        line = (token.map[0] if token.map else 0) + first_line
        for child in token.children:
            if child.type in ("softbreak", "hardbreak"):
                line += 1  # a note mid-paragraph points at its own line
            elif child.type == TOKEN:
                notes.append(Note(line, child.content))
    return notes

"""Markdown as a CommonMark reader (Hugo, Jekyll, a reviewer's editor) sees it: markdown-it-py tokens,
each with the 0-based line of the text it came from.

Block tokens carry their lines (`Token.map`); inline tokens do not, so the inline rules whose place
we report (links, images, autolinks, inline HTML, code spans) are wrapped to note where they began.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # markdown-it loads when a text needs the parser: most guides are read without it
    from markdown_it import MarkdownIt
    from markdown_it.rules_inline import StateInline
    from markdown_it.token import Token


def _noting_start(rule: Callable[[StateInline, bool], bool]) -> Callable[[StateInline, bool], bool]:
    def noted(state: StateInline, silent: bool) -> bool:
        start, count = state.pos, len(state.tokens)
        if not rule(state, silent):
            return False
        for token in state.tokens[count:]:
            if "start" not in token.meta:  # tokens of an inner rule (a code span in a link) keep theirs
                token.meta["start"], token.meta["end"] = start, state.pos
        return True
    return noted


@functools.cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt
    from markdown_it.rules_inline import autolink, backtick, html_inline, image, link

    class _Parser(MarkdownIt):
        """CommonMark (plus tables) that keeps every link: `check` judges destinations itself, so a
        `javascript:` link must stay a link (markdown-it would turn it into text) and keep its spelling."""

        def validateLink(self, url: str) -> bool:  # noqa: N802 - markdown-it's name
            return True

        def normalizeLink(self, url: str) -> str:  # noqa: N802
            return url

        def normalizeLinkText(self, link: str) -> str:  # noqa: N802
            return link

    parser = _Parser("commonmark", {"inline_definitions": True}).enable("table")
    positioned_rules = (("link", link), ("image", image), ("autolink", autolink), ("html_inline", html_inline),
                        ("backticks", backtick))
    for name, rule in positioned_rules:
        parser.inline.ruler.at(name, _noting_start(rule))
    return parser


@functools.cache
def _block_parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").disable("inline")


def parse(text: str) -> list[Token]:
    """Block tokens, inline ones as their children."""
    return _parser().parse(text)


def parse_blocks(text: str) -> list[Token]:
    """Block tokens only (inline tokens keep their source in `content`, without children): enough for
    headings and sections, and several times faster."""
    return _block_parser().parse(text)


@dataclass(frozen=True)
class Heading:
    line: int  # 0-based line of the heading (its first line, for a setext heading)
    level: int
    text: str  # the heading's Markdown source, closing '#'s and outer blanks removed
    end: int  # 0-based line after the heading


# A line that can make CommonMark read a `#` line other than as a heading at column 0 would suggest:
# indented (code, a list item's own heading), a code fence, HTML, or a setext underline.
_NEEDS_PARSER = re.compile(r"[ \t]|`{3}|~{3}|<|=+[ \t]*$|-+[ \t]*$")
_ATX = re.compile(r"(#{1,6})(?:[ \t]+(.*?))??(?:[ \t]+#+)?[ \t]*$")


def document_headings(text: str) -> list[Heading]:
    """The headings of a document. Text with none of the lines above (most guides) has its headings
    at column 0, where a line scan finds the same ones as the parser, at a fraction of its cost (the
    parser would dominate building a thousand guides)."""
    found = []
    for number, line in enumerate(text.split("\n")):
        first = line[:1]
        if first == "#":
            match = _ATX.match(line)
            if match:
                found.append(Heading(number, len(match.group(1)), (match.group(2) or "").strip(), number + 1))
        elif first and first in " \t`~<=-" and _NEEDS_PARSER.match(line):
            return headings(parse_blocks(text))
    return found


def headings(tokens: list[Token]) -> list[Heading]:
    """Every heading of the document itself (not those inside a list item or a quote)."""
    found = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.level == 0 and token.map:
            found.append(Heading(token.map[0], int(token.tag[1:]), tokens[index + 1].content, token.map[1]))
    return found


def positioned(tokens: list[Token]) -> Iterator[tuple[int, Token]]:
    """(0-based line, token) for every block token with lines, and every inline child noted above."""
    for token in tokens:
        if token.map is None:
            continue
        yield token.map[0], token
        if token.type == "inline":
            for child in token.children or ():
                if "start" in child.meta:
                    yield token.map[0] + token.content.count("\n", 0, child.meta["start"]), child


def prose(tokens: list[Token]) -> Iterator[tuple[int, str]]:
    """(0-based first line, text) of everything outside code, as written: inline text with its code
    spans blanked (so lines and columns stay), and HTML blocks. Code blocks give nothing."""
    for token in tokens:
        if token.map is None:
            continue
        if token.type == "html_block":
            yield token.map[0], token.content
        elif token.type == "inline":
            text = token.content
            for child in token.children or ():
                if child.type == "code_inline" and "start" in child.meta:
                    start, end = child.meta["start"], child.meta["end"]
                    text = text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]
            yield token.map[0], text

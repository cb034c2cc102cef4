"""A draft's body -> the HTML a reviewer reads: provenance marked, problems at their lines, notes lit.

markdown-it-py parses the body with raw HTML off, so feed and model text can only ever be text; its
line maps tell which block holds a `pipeline check` problem and which managed region a block is in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token

from .models import Problem
from .notes import markdown_parser

GUIDE, FEED, MODEL = "guide", "feed", "model"
_MARKER = re.compile(r"^<!-- pipeline:(begin|end) ([a-z][a-z0-9-]*) -->\s*$")
_CITATION = re.compile(r"\[([^\[\]\n]+?),[ \t]*(\d{4}-\d{2}-\d{2})\]")
_SOURCE_LINE = re.compile(r"Source:\s*(.+?)\s*[\u2013\u2014-]+\s*(?:\U0001F4C5\s*)?(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class PlacedProblem:
    """A check problem with its anchor on the page and the body line (0-based) it points at."""

    anchor: str
    body_index: int
    problem: Problem


@dataclass(frozen=True)
class Article:
    html: str
    entries: int  # Further Reading entries found (each has an anchor citations link to)
    citations_linked: int


def region_lines(lines: Sequence[str]) -> dict[int, str]:
    """Body line index -> managed region name, for lines between a region's markers."""
    inside: dict[int, str] = {}
    current: str | None = None
    for index, line in enumerate(lines):
        match = _MARKER.match(line)
        if match:
            current = match.group(2) if match.group(1) == "begin" else None
        elif current is not None:
            inside[index] = current
    return inside


def _fold(text: str) -> str:
    return " ".join(re.sub(r"\\(.)", r"\1", text).casefold().split())


def render_article(body: str, problems: Sequence[PlacedProblem], *, context_by_model: bool) -> Article:
    """The body as HTML with provenance classes, Further Reading anchors, linked citations and problems."""
    lines = body.split("\n")
    regions = region_lines(lines)
    # Markers are HTML comments; with raw HTML off they would show as text, so they become blank
    # lines (line numbers stay put for the maps).
    masked = "\n".join("" if _MARKER.match(line) else line for line in lines)
    md = markdown_parser()
    md.add_render_rule("image", _render_image)
    md.add_render_rule("link_open", _render_link_open)
    env: dict = {}
    tokens = md.parse(masked, env)

    def provenance(index: int) -> str:
        region = regions.get(index)
        if region == "context":
            return MODEL if context_by_model else FEED
        if region == "further-reading":
            return FEED
        return GUIDE

    anchors: dict[tuple[str, str], str] = {}
    entries = 0
    for position, token in enumerate(tokens):
        if token.nesting == -1 or token.map is None or token.level != 0:
            continue
        kind = provenance(token.map[0])
        if regions.get(token.map[0]) == "further-reading":
            found = _SOURCE_LINE.search(tokens[position + 1].content) if token.type == "paragraph_open" else None
            if found is None:
                kind = GUIDE  # the templates' own words, e.g. "no recent news matched"
            else:
                entries += 1
                token.attrSet("id", f"fr-{entries}")
                anchors.setdefault((_fold(found.group(1)), found.group(2)), f"fr-{entries}")
        token.attrJoin("class", f"prov prov-{kind}")
        token.attrSet("data-prov", kind)
        if kind != GUIDE:  # guide text is the default; the others say where they came from
            token.attrSet("aria-describedby", f"legend-{kind}")
    linked = sum(_link_citations(token, anchors) for token in tokens if token.type == "inline")
    _place_problems(tokens, problems)
    return Article(md.renderer.render(tokens, md.options, env), entries, linked)


def _link_citations(inline: Token, anchors: dict[tuple[str, str], str]) -> int:
    """Turn `[Publisher, YYYY-MM-DD]` in text into a link to its Further Reading entry."""
    if not inline.children or not anchors:
        return 0
    linked = 0
    children: list[Token] = []
    for child in inline.children:
        if child.type != "text" or "[" not in child.content:
            children.append(child)
            continue
        at = 0
        for match in _CITATION.finditer(child.content):
            anchor = anchors.get((_fold(match.group(1)), match.group(2)))
            if anchor is None:
                continue
            children.append(_text(child.content[at : match.start()]))
            children.append(_html(f'<a class="cite" href="#{anchor}">'))
            children.append(_text(match.group(0)))
            children.append(_html("</a>"))
            at = match.end()
            linked += 1
        children.append(_text(child.content[at:]))
    inline.children = [c for c in children if c.type != "text" or c.content]
    return linked


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


def _html(markup: str) -> Token:
    # Our own markup only: every piece of draft text around it stays a text token, escaped on render.
    token = Token("html_inline", "", 0)
    token.content = markup
    return token


def _place_problems(tokens: list[Token], problems: Sequence[PlacedProblem]) -> None:
    """Insert each problem after the innermost block holding its line (or the next block after it)."""
    inserts: dict[int, list[PlacedProblem]] = {}
    for placed in problems:
        opener = _block_at(tokens, placed.body_index)
        if opener is None:
            continue
        if "has-problem" not in str(tokens[opener].attrGet("class") or ""):
            tokens[opener].attrJoin("class", "has-problem")
        inserts.setdefault(_closing(tokens, opener), []).append(placed)
    for position in sorted(inserts, reverse=True):
        block = Token("html_block", "", 0)
        block.content = "".join(_problem_html(p) for p in inserts[position])
        tokens.insert(position + 1, block)


def _block_at(tokens: Sequence[Token], index: int) -> int | None:
    best: int | None = None
    following: int | None = None
    last: int | None = None
    for position, token in enumerate(tokens):
        if token.nesting == -1 or token.map is None or token.type == "inline":
            continue
        start, end = token.map
        if start <= index < end and (best is None or token.level >= tokens[best].level):
            best = position
        if start > index and following is None and token.level == 0:
            following = position
        if token.level == 0:
            last = position
    return best if best is not None else following if following is not None else last


def _closing(tokens: Sequence[Token], opener: int) -> int:
    if tokens[opener].nesting == 0:
        return opener
    depth = 0
    for position in range(opener, len(tokens)):
        depth += tokens[position].nesting
        if depth == 0:
            return position
    return len(tokens) - 1


def _problem_html(placed: PlacedProblem) -> str:
    problem = placed.problem
    return (f'<div class="problem" id="{placed.anchor}" role="note" aria-label="check problem">'
            f'<span class="problem-rule">{escapeHtml(problem.rule)}</span> '
            f'<span class="problem-line">line {problem.line}</span> {escapeHtml(problem.message)}</div>\n')


def _render_image(self: object, tokens: list[Token], idx: int, options: object, env: dict) -> str:
    # A review page loads nothing from elsewhere: an image shows as its description and address.
    token = tokens[idx]
    alt = "".join(child.content for child in token.children or ())
    return (f'<span class="image">[image: {escapeHtml(alt)} &lt;{escapeHtml(str(token.attrGet("src") or ""))}&gt;]'
            "</span>")


def _render_link_open(self: object, tokens: list[Token], idx: int, options: object, env: dict) -> str:
    token = tokens[idx]
    token.attrSet("rel", "noopener noreferrer nofollow")
    return self.renderToken(tokens, idx, options, env)  # type: ignore[attr-defined]

"""Front matter: the YAML between two `---` lines at the top of a draft or a guide.

Split from the body here and nowhere else (drafts, guides and `check` all call `split_front_matter`),
and edited one key at a time by `replace_key`, which keeps every other byte a reviewer wrote.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

DELIMITER = "---"


class FrontMatterMissing(ValueError):
    """The text does not open with a `---` line."""


class FrontMatterUnclosed(ValueError):
    """The opening `---` has no closing `---` line."""


@dataclass(frozen=True)
class FrontMatterSplit:
    yaml: str  # the lines between the delimiters, each with its "\n"
    body: str  # everything after the closing delimiter's line
    body_line: int  # how many lines come before the body: body line n is file line n + body_line


def split_front_matter(text: str) -> FrontMatterSplit:
    """Front matter and body of a text that uses "\\n" line ends; a delimiter may carry trailing blanks."""
    first = text.find("\n")
    if first < 0 or text[:first].rstrip(" \t") != DELIMITER:
        raise FrontMatterMissing("does not start with a '---' line")
    start = position = first + 1
    lines_before = 1
    while position <= len(text):
        newline = text.find("\n", position)
        end = len(text) if newline < 0 else newline
        lines_before += 1
        if text[position:end].rstrip(" \t") == DELIMITER:
            return FrontMatterSplit(text[start:position], text[end + 1 :], lines_before)
        if newline < 0:
            break
        position = newline + 1
    raise FrontMatterUnclosed("front matter is not closed by a '---' line")


# -- editing one key -------------------------------------------------------------------------------


def replace_key(fm_text: str, key: str, block: str) -> str:
    """`fm_text` with the top-level `key` (its line and value lines) replaced by `block`, or `block`
    appended when the key is absent. Every other line stays byte for byte; comments a reviewer wrote
    inside the old block are their words, so each is kept on its own line after the new block.

    `block` is the YAML for the key alone, ending in "\\n". `fm_text` must be valid YAML.
    """
    lines = fm_text.splitlines(keepends=True)
    # Without a comment, every top-level key starts at column 0 and its value lines do not, which a
    # scan can tell apart (the pipeline writes no comments, so its own files take this path); with
    # comments (a reviewer's '# note' at column 0 inside a list) only a YAML parser knows the extent.
    found = _scan_extent(lines, key) if "#" not in fm_text else _parsed_extent(fm_text, key)
    if found is None:
        return fm_text + block
    start, end = found
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # blank lines after the block separate it from the next key: the reviewer's layout
    comments = [comment for line in lines[start:end] if (comment := _yaml_comment(line))]
    kept = "".join(f"{comment}\n" for comment in comments)
    return "".join(lines[:start]) + block + kept + "".join(lines[end:])


def _key_pattern(key: str) -> re.Pattern[str]:
    # The key as a reviewer may write it: bare, 'single-' or "double-quoted".
    return re.compile(rf"""(?:{re.escape(key)}|'{re.escape(key)}'|"{re.escape(key)}")[ \t]*:(?:\s|$)""")


def _scan_extent(lines: list[str], key: str) -> tuple[int, int] | None:
    """[start, end) lines of a key's block in comment-free YAML."""
    pattern = _key_pattern(key)
    start = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and _continues(lines[end]):
        end += 1
    return start, end


def _continues(line: str) -> bool:
    """A line that is part of the value above it: indented, a `- ` item at column 0, or blank."""
    return line.startswith((" ", "\t", "- ")) or line.rstrip("\r\n") == "-" or not line.strip()


def _parsed_extent(fm_text: str, key: str) -> tuple[int, int] | None:
    """[start, end) lines of a key's block, from ruamel.yaml's round-trip parser."""
    from ruamel.yaml import YAMLError

    try:
        root = _round_trip().compose(fm_text)
    except YAMLError:  # YAML 1.2 refusing what PyYAML (1.1) read: the scan is the best there is
        return _scan_extent(fm_text.splitlines(keepends=True), key)
    for key_node, value_node in getattr(root, "value", None) or ():
        if getattr(key_node, "value", None) == key and isinstance(key_node.value, str):
            return key_node.start_mark.line, max(_last_line(value_node), key_node.end_mark.line) + 1
    return None


@functools.cache
def _round_trip() -> Any:
    from ruamel.yaml import YAML  # only edits of commented front matter pay for importing it

    return YAML(typ="rt")


def _last_line(node: object) -> int:
    """0-based line of the last character that belongs to a node's text."""
    children = getattr(node, "value", None)
    flow = getattr(node, "flow_style", None)
    if isinstance(children, list) and children and not flow:
        last = children[-1]
        return _last_line(last[1] if isinstance(last, tuple) else last)
    end = node.end_mark  # type: ignore[attr-defined]
    # A block scalar ends after its line break: at column 0 of the line that follows it.
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line  # type: ignore[attr-defined]


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"")
_COMMENT = re.compile(r"(?:^|\s)(#.*)$")


def _yaml_comment(line: str) -> str | None:
    """The '# ...' comment on one YAML line, or None; a '#' inside quotes is text, not a comment."""
    line = line.rstrip("\r\n")
    masked = _QUOTED.sub(lambda m: "x" * len(m.group(0)), line)  # same length, so positions still match
    match = _COMMENT.search(masked)
    return line[match.start(1):].rstrip() if match else None

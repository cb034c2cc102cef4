"""Front matter: split once for drafts, guides and check; one key edited, every other byte kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline.drafts import dump_yaml, set_front_matter_key, split_draft
from pipeline.frontmatter import FrontMatterMissing, FrontMatterUnclosed, split_front_matter

KEYS = ["title", "status", "tags", "further_reading", "lastmod", "description", "x-note", "draft"]
SCALARS = ["plain text", "'single quoted'", '"double \\" quoted"', "'it''s'", "true", "2026-03-06",
           "'2026-03-06T00:00:00Z'", '"a # not a comment"', "'#hash'", "https://example.com/a#b"]
COMMENTS = ["# a note", "#x", "# further_reading: [] (not a key)", "#   - not an item", "# status: approved"]
NEW_VALUES = ["New title", ["a", "b"], [{"headline": "H # 1", "source": "S", "date": "2026-03-01",
                                         "url": "https://x.example/1"}], "2026-01-01T00:00:00Z", True, []]


@st.composite
def trailing(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", "", f"  {draw(st.sampled_from(COMMENTS))}"]))


@st.composite
def between_items(draw: st.DrawFn) -> list[str]:
    """What a reviewer may put between two list items: nothing, blank lines, comments at any column."""
    return draw(st.lists(st.sampled_from(["\n", *(f"{c}\n" for c in COMMENTS), *(f"  {c}\n" for c in COMMENTS)]),
                         max_size=2))


@st.composite
def key_block(draw: st.DrawFn, key: str) -> tuple[str, list[str]]:
    """One top-level key as a reviewer may write it: (text, the comments inside it)."""
    spelled = draw(st.sampled_from([key, f"'{key}'", f'"{key}"']))
    kind = draw(st.sampled_from(["scalar", "list", "records", "flow"]))
    head = draw(trailing())
    comments = [head.strip()] if head else []
    if kind == "scalar":
        return f"{spelled}: {draw(st.sampled_from(SCALARS))}{head}\n", comments
    if kind == "flow":
        return f"{spelled}: [a, 'b c', \"d\"]{head}\n", comments
    indent = draw(st.sampled_from(["", "  "]))
    lines = [f"{spelled}:{head}\n"]
    for number in range(draw(st.integers(1, 3))):
        if number:
            gap = draw(between_items())
            lines += gap
            comments += [g.strip() for g in gap if g.strip()]
        tail = draw(trailing())
        comments += [tail.strip()] if tail else []
        if kind == "list":
            lines.append(f"{indent}- {draw(st.sampled_from(SCALARS))}{tail}\n")
        else:
            lines.append(f"{indent}- headline: {draw(st.sampled_from(SCALARS))}{tail}\n")
            lines.append(f"{indent}  url: https://x.example/{number}\n")
    return "".join(lines), comments


@st.composite
def front_matter(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, list[str]]], list[str]]:
    """(keys, their blocks, what separates them): random key order, comments and blank lines."""
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=5, unique=True))
    blocks = [draw(key_block(key)) for key in keys]
    gaps = [draw(st.sampled_from(["", "", "\n", "# between\n", "\n# between\n\n", "#x\n  # y\n"]))
            for _ in keys]
    return keys, blocks, gaps


@given(front_matter(), st.data())
def test_editing_one_key_keeps_every_other_byte(
    parsed: tuple[list[str], list[tuple[str, list[str]]], list[str]], data: st.DataObject
) -> None:
    keys, blocks, gaps = parsed
    text = "".join(block + gap for (block, _), gap in zip(blocks, gaps, strict=True))
    before = yaml.safe_load(text)
    key = data.draw(st.sampled_from([*keys, "lastmod", "status"]))
    value = data.draw(st.sampled_from(NEW_VALUES))

    result = set_front_matter_key(text, key, value)

    after = yaml.safe_load(result)
    assert after[key] == value
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}
    if key not in keys:
        assert result == text + dump_yaml({key: value})
        return
    index = keys.index(key)
    prefix = "".join(block + gap for (block, _), gap in zip(blocks[:index], gaps[:index], strict=True))
    suffix = gaps[index] + "".join(block + gap for (block, _), gap in zip(blocks[index + 1:], gaps[index + 1:],
                                                                           strict=True))
    kept = "".join(f"{comment}\n" for comment in blocks[index][1])
    assert result == prefix + dump_yaml({key: value}) + kept + suffix


def test_a_comment_at_column_0_under_further_reading_does_not_break_the_yaml() -> None:
    text = ("title: T\nfurther_reading:\n  - headline: A\n    url: https://a.example/\n# checked with the editor\n"
            "  - headline: B\n    url: https://b.example/\nstatus: draft\n")
    result = set_front_matter_key(text, "further_reading", [{"headline": "C", "url": "https://c.example/"}])
    assert yaml.safe_load(result) == {"title": "T", "status": "draft",
                                      "further_reading": [{"headline": "C", "url": "https://c.example/"}]}
    assert "# checked with the editor\n" in result


def test_front_matter_is_split_the_same_for_drafts_guides_and_check() -> None:
    parts = split_front_matter("---\ntitle: T\n---  \n\nBody\n")
    assert (parts.yaml, parts.body, parts.body_line) == ("title: T\n", "\nBody\n", 3)
    assert split_front_matter("---\n---\n").yaml == ""
    with pytest.raises(FrontMatterMissing):
        split_front_matter("title: T\n")
    with pytest.raises(FrontMatterUnclosed):
        split_front_matter("---\ntitle: T\n")
    draft = split_draft(Path("x.md"), "---\ntitle: T\n---\n\nBody\n")
    assert (draft.front_matter_text, draft.body, draft.gap) == ("title: T\n", "Body\n", "\n")

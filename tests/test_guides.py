"""Guides: a malformed guide is one line naming file and line; the other guides still build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.errors import GuideError
from pipeline.guides import load_guide, parse_guide

from conftest import DATA, FIXTURE

BAD_GUIDES = DATA / "guides"
SHIPPED = sorted(p.stem for p in (FIXTURE / "templates" / "guides").glob("*.md"))

# file under tests/data/guides/ -> (line the error must name, words the message must contain)
MALFORMED = {
    "bad-yaml.md": (4, "not valid YAML"),
    "unknown-key.md": (4, "unknown front matter key 'author'"),
    "missing-title.md": (2, "missing 'title'"),
    "bad-further-reading.md": (5, "further_reading.count must be a whole number"),
    "unknown-further-reading-key.md": (6, "unknown key 'max_age' under further_reading"),
    "unclosed-front-matter.md": (1, "front matter is not closed"),
}


def build(project: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--root", str(project), "build", "--offline"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_guide_is_one_line_naming_file_and_line_and_others_still_build(project: Path, name: str) -> None:
    line, words = MALFORMED[name]
    target = project / "templates" / "guides" / name
    shutil.copy(BAD_GUIDES / name, target)

    code, output = build(project)

    assert code != 0
    assert "Traceback" not in output
    errors = [text for text in output.splitlines() if str(target) in text]
    assert len(errors) == 1, output
    assert errors[0].startswith(f"error: {target}:{line}: "), errors[0]
    assert words in errors[0]
    built = sorted(p.stem for p in (project / "output").glob("*.md"))
    assert built == SHIPPED, "the well-formed guides must still be built"
    assert not (project / "output" / name).exists()


def test_bad_yaml_error_says_where_the_unclosed_bracket_began() -> None:
    with pytest.raises(GuideError) as caught:
        load_guide(BAD_GUIDES / "bad-yaml.md")
    assert caught.value.line == 4
    assert "begun on line 3" in caught.value.message


@pytest.mark.parametrize(
    ("front", "line", "words"),
    [
        ("title: T\nfurther_reading: 3\n", 3, "'further_reading' must hold count: and max_age_days:"),
        ("title: T\nfurther_reading:\n  max_age_days: 0\n", 4, "further_reading.max_age_days must be a whole number"),
        ("title: T\nfurther_reading:\n  count: true\n", 4, "further_reading.count must be a whole number"),
        ("title: T\nkeywords: visa\n", 3, "'keywords' must be a list"),
        ("title: '   '\n", 2, "missing 'title'"),
        ("title: [a, b]\n", 2, "missing 'title'"),
        ("- just\n- a list\n", 2, "front matter must be 'key: value' lines"),
    ],
)
def test_front_matter_problems_name_their_line(front: str, line: int, words: str) -> None:
    text = f"---\n{front}---\n\nIntro.\n\n## A section\n\nText.\n"
    with pytest.raises(GuideError) as caught:
        parse_guide(Path("templates/guides/example.md"), text)
    assert caught.value.line == line, caught.value.message
    assert words in caught.value.message
    assert str(caught.value).startswith(f"templates/guides/example.md:{line}: ")
    assert "\n" not in str(caught.value)


def test_further_reading_defaults_are_three_items_and_thirty_days() -> None:
    guide = parse_guide(Path("g/x.md"), "---\ntitle: T\n---\n\n## A section\n\nText.\n")
    assert (guide.further_reading_count, guide.max_age_days) == (3, 30)


def test_template_syntax_in_a_guide_body_is_refused_with_its_line() -> None:
    text = "---\ntitle: T\n---\n\nIntro.\n\n## A section\n\nHello {{ name }}.\n"
    with pytest.raises(GuideError) as caught:
        parse_guide(Path("g/x.md"), text)
    assert caught.value.line == 9


CODE_GUIDE = """---
title: T
---

Intro.

## Writing a draft

Front matter, then Markdown:

```markdown
## Not a section
### Not a question?
```

## FAQ

### Can a heading sit in code?

Yes:

    ### still an answer

## Conclusion

Done.

### Quick checklist
- One step
"""


def test_headings_inside_code_blocks_are_code_not_sections() -> None:
    guide = parse_guide(Path("g/x.md"), CODE_GUIDE)
    assert [s.heading for s in guide.sections] == ["Writing a draft"]
    assert "```markdown\n## Not a section\n### Not a question?\n```" in guide.sections[0].body
    assert [(q.question, q.answer) for q in guide.faq] == [("Can a heading sit in code?", "Yes:\n\n    ### still an answer")]
    assert (guide.conclusion, guide.checklist) == ("Done.", ("One step",))


def test_checklist_line_errors_still_name_their_line() -> None:
    text = CODE_GUIDE.replace("- One step", "- One step\nnot an item")
    with pytest.raises(GuideError) as caught:
        parse_guide(Path("g/x.md"), text)
    assert caught.value.line == text.splitlines().index("not an item") + 1


@pytest.mark.parametrize("slug", SHIPPED)
def test_shipped_guides_are_well_formed(slug: str) -> None:
    guide = load_guide(FIXTURE / "templates" / "guides" / f"{slug}.md")
    assert guide.title and guide.keywords and guide.sections and guide.faq and guide.checklist


@pytest.mark.parametrize("text", [
    "Intro\n\n## A\n\ntext\n\n## FAQ ##\n\n### Q?\n\nA.\n", "##\n#hashtag\n## C# x\n####### seven\n",
    "text\n## h\n- item\n## i\n> quote\n## j\n", "## a\\#\n# T #\n## x\t\n",
])
def test_the_line_scan_finds_the_headings_the_parser_finds(text: str) -> None:
    from pipeline import markdown

    assert markdown.document_headings(text) == markdown.headings(markdown.parse_blocks(text))


_MARKDOWN_LINES = st.lists(st.sampled_from([
    "## Heading", "# Title #", "### Q?", "#tag", "####### seven", "", "text", "- item", "  indented", "\tcode",
    "```", "~~~", "<div>", "===", "---", "- ", "> quote", "## x\t", "1. one", "## C# x",
]), max_size=14)


@given(_MARKDOWN_LINES)
def test_the_line_scan_finds_the_headings_the_parser_finds_in_any_mix_of_lines(lines) -> None:
    from pipeline import markdown

    text = "\n".join(lines)
    assert markdown.document_headings(text) == markdown.headings(markdown.parse_blocks(text))

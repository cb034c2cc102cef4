"""templates/guides/<slug>.md -> Guide: front matter plus plain Markdown an editor can edit.

The body is split on its headings: text before the first `## ` is the intro; each `## ` heading
opens a guidance section, except `## FAQ` (each `### ` inside is a question) and `## Conclusion`
(whose `### Quick checklist` list becomes the checklist).
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace
from pathlib import Path

import yaml

from .errors import GuideError
from .guide_due import REVIEW_KEYS, review_fields, validate_review_keys
from .models import FaqEntry, Guide, Section

GUIDE_KEYS = {"title", "description", "audience", "keywords", "tags", "further_reading", *REVIEW_KEYS}
FURTHER_READING_KEYS = {"count", "max_age_days"}
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")


def guide_paths(guides_dir: Path) -> list[Path]:
    return sorted(p for p in guides_dir.glob("*.md") if not p.name.startswith((".", "_")))


def load_guide(path: Path, data: bytes | None = None) -> Guide:
    """Read (unless its bytes are given) and validate one guide; errors name the file and line."""
    try:
        text = data.decode("utf-8") if data is not None else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GuideError(path, f"cannot be read ({exc})") from exc
    if not SLUG.match(path.stem):
        return parse_guide(path, text)  # raises, naming the file
    try:
        parsed = _parse_text(text)
    except GuideError:
        return parse_guide(path, text)  # parse again so the error names this file, not a placeholder
    return replace(parsed, slug=path.stem, path=path)


@functools.lru_cache(maxsize=32)
def _parse_text(text: str) -> Guide:
    """A guide's content, parsed once per distinct text: sites built from one template guide
    (and every rebuild of an unchanged one in a long-lived process) skip the YAML work."""
    return parse_guide(_PLACEHOLDER, text)


_PLACEHOLDER = Path("guide.md")


def parse_guide(path: Path, text: str) -> Guide:
    slug = path.stem
    if not SLUG.match(slug):
        raise GuideError(path, "file name must be a slug: lower-case letters, digits and dashes, e.g. visa-basics.md")
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise GuideError(path, "must start with a '---' line opening the front matter", line=1)
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise GuideError(path, "front matter is not closed; add a '---' line after it", line=1) from None
    meta = _front_matter(path, "\n".join(lines[1:end]))
    body_offset = end + 1  # 0-based index of the first body line
    match = _TEMPLATE_SYNTAX.search("\n".join(lines[body_offset:]))
    if match:
        line = "\n".join(lines[body_offset:])[: match.start()].count("\n") + body_offset + 1
        raise GuideError(path, "template syntax ({{ or {%) is not allowed in a guide; write plain Markdown", line)

    intro, blocks = _split(lines[body_offset:], body_offset, "## ")
    sections: list[Section] = []
    faq: list[FaqEntry] = []
    conclusion = ""
    checklist: tuple[str, ...] = ()
    for heading, line_no, block in blocks:
        name = heading.strip()
        if name.lower() in ("faq", "frequently asked questions"):
            faq = _faq(path, block, line_no)
        elif name.lower() == "conclusion":
            conclusion, checklist = _conclusion(path, block, line_no)
        else:
            if faq or conclusion:
                raise GuideError(path, f"section {name!r} comes after FAQ/Conclusion; move it above them", line_no)
            if "\n### " in "\n" + "\n".join(block):
                pass  # sub-headings inside a guidance section are the editor's business
            sections.append(Section(heading=name, body=_text(block)))
    if not sections:
        raise GuideError(path, "no guidance section; add at least one '## Heading' with text", body_offset + 1)

    further = meta.get("further_reading") or {}
    return Guide(
        slug=slug,
        path=path,
        title=meta["title"],
        description=meta.get("description", ""),
        audience=meta.get("audience", ""),
        keywords=tuple(meta.get("keywords", ())),
        tags=tuple(meta.get("tags", ())),
        further_reading_count=further.get("count", 3),
        max_age_days=further.get("max_age_days", 30),
        intro=_text(intro),
        sections=tuple(sections),
        faq=tuple(faq),
        conclusion=conclusion,
        checklist=checklist,
        **review_fields(meta),
    )


def _compose_and_load(source: str) -> tuple[yaml.Node | None, object]:
    # libyaml (when PyYAML has it) is many times faster, which matters with thousands of guides;
    # the pure-Python parser words errors the way our messages need, so it reports the broken ones.
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        loader = fast(source)
        try:
            node = loader.get_single_node()  # parsed once: the data is built from the same nodes
            return node, (loader.construct_document(node) if node is not None else None)
        except yaml.YAMLError:
            pass
        finally:
            loader.dispose()
    return yaml.compose(source, Loader=yaml.SafeLoader), yaml.safe_load(source)


def _front_matter(path: Path, source: str) -> dict:
    try:
        node, data = _compose_and_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
        # YAML notices an unclosed bracket or quote only lines later; say where it began.
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None and (mark is None or context_mark.line != mark.line):
            problem += f" ({context} begun on line {context_mark.line + 2})"
        raise GuideError(path, f"front matter is not valid YAML: {problem}",
                         mark.line + 2 if mark else 2) from exc
    if not isinstance(data, dict) or node is None:
        raise GuideError(path, "front matter must be 'key: value' lines", 2)
    key_lines: dict[str, int] = {}
    for key_node, _ in node.value:
        name = getattr(key_node, "value", None)
        if isinstance(name, str):
            if name in key_lines:  # YAML would keep the last silently, and an edit to the first would not show
                raise GuideError(path, f"front matter key {name!r} appears twice (first on line "
                                       f"{key_lines[name]}); keep one", key_node.start_mark.line + 2)
            key_lines[name] = key_node.start_mark.line + 2
    # Nested further_reading keys get their own lines, so "count: three" points at that line.
    for key_node, value_node in node.value:
        if getattr(key_node, "value", None) == "further_reading" and isinstance(value_node, yaml.MappingNode):
            key_lines.update({f"further_reading.{k.value}": k.start_mark.line + 2 for k, _ in value_node.value})

    def fail(key: str, message: str) -> GuideError:
        return GuideError(path, message, key_lines.get(key, 2))

    for key in data:
        if key not in GUIDE_KEYS:
            raise fail(key, f"unknown front matter key {key!r}; allowed: {', '.join(sorted(GUIDE_KEYS))}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise GuideError(path, "missing 'title' in front matter; add title: \"...\"", key_lines.get("title", 2))
    data["title"] = " ".join(title.split())
    for key in ("description", "audience"):
        if key in data and not isinstance(data[key], str):
            raise fail(key, f"{key!r} must be text")
        if key in data:
            data[key] = " ".join(data[key].split())
    for key in ("keywords", "tags"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            raise fail(key, f"{key!r} must be a list, e.g. {key}: [visa, study]")
        data[key] = [str(v).strip().lower() for v in value if str(v).strip()]
    data.update(validate_review_keys(path, data, key_lines))
    further = data.get("further_reading", {}) or {}
    if not isinstance(further, dict):
        raise fail("further_reading", "'further_reading' must hold count: and max_age_days:")
    for key, value in further.items():
        line = key_lines.get(f"further_reading.{key}", key_lines.get("further_reading", 2))
        if key not in FURTHER_READING_KEYS:
            raise GuideError(path, f"unknown key {key!r} under further_reading; allowed: count, max_age_days", line)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise GuideError(path, f"further_reading.{key} must be a whole number of at least 1, not {value!r}", line)
    return data


def _split(lines: list[str], offset: int, marker: str) -> tuple[list[str], list[tuple[str, int, list[str]]]]:
    """Split lines on headings that start with `marker`: (text before, [(heading, line, lines)])."""
    before: list[str] = []
    blocks: list[tuple[str, int, list[str]]] = []
    for index, line in enumerate(lines):
        if line.startswith(marker):
            blocks.append((line[len(marker):].strip(), offset + index + 1, []))
        elif blocks:
            blocks[-1][2].append(line)
        else:
            before.append(line)
    return before, blocks


def _text(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n").rstrip()


def _faq(path: Path, block: list[str], line_no: int) -> list[FaqEntry]:
    stray, questions = _split(block, line_no, "### ")
    if _text(stray):
        raise GuideError(path, "text under '## FAQ' must sit below a '### Question?' heading", line_no + 1)
    entries = []
    for question, q_line, answer in questions:
        if not _text(answer):
            raise GuideError(path, f"FAQ question {question!r} has no answer", q_line)
        entries.append(FaqEntry(question=question, answer=_text(answer)))
    if not entries:
        raise GuideError(path, "'## FAQ' has no questions; add '### Question?' headings with answers", line_no)
    return entries


def _conclusion(path: Path, block: list[str], line_no: int) -> tuple[str, tuple[str, ...]]:
    text, subsections = _split(block, line_no, "### ")
    checklist: list[str] = []
    for heading, sub_line, sub_lines in subsections:
        if heading.lower().rstrip(":") != "quick checklist":
            raise GuideError(path, f"unexpected heading {heading!r} in Conclusion; only '### Quick checklist'", sub_line)
        for offset, line in enumerate(sub_lines):
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith(("- ", "* ")):
                raise GuideError(path, "checklist lines must start with '- '", sub_line + offset + 1)
            checklist.append(stripped[2:].strip())
    return _text(text), tuple(checklist)

"""templates/guides/<slug>.md -> Guide: front matter plus plain Markdown an editor can edit.

The body is split on its headings: text before the first `## ` is the intro; each `## ` heading
opens a guidance section, except `## FAQ` (each `### ` inside is a question) and `## Conclusion`
(whose `### Quick checklist` list becomes the checklist).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from . import markdown
from .errors import GuideError
from .frontmatter import FrontMatterMissing, FrontMatterUnclosed, split_front_matter
from .guide_due import REVIEW_KEYS, review_fields, validate_review_keys
from .models import SLUG, FaqEntry, Guide, Section

GUIDE_KEYS = {"title", "description", "audience", "keywords", "tags", "phrases", "exclude", "require",
              "further_reading", *REVIEW_KEYS}
# Lists of words; each may be a short run of words ("wechat pay"), matched whole and case-blind.
WORD_LIST_KEYS = ("keywords", "tags", "phrases", "exclude", "require")
FURTHER_READING_KEYS = {"count", "max_age_days"}
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")


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
    try:
        parts = split_front_matter(text)
    except FrontMatterMissing:
        raise GuideError(path, "must start with a '---' line opening the front matter", line=1) from None
    except FrontMatterUnclosed:
        raise GuideError(path, "front matter is not closed; add a '---' line after it", line=1) from None
    meta = _front_matter(path, parts.yaml)
    match = _TEMPLATE_SYNTAX.search(parts.body)
    if match:
        line = parts.body.count("\n", 0, match.start()) + parts.body_line + 1
        raise GuideError(path, "template syntax ({{ or {%) is not allowed in a guide; write plain Markdown", line)
    body = _Body(path, parts.body, parts.body_line)
    further = meta.get("further_reading") or {}
    return Guide(
        slug=slug,
        path=path,
        title=meta["title"],
        description=meta.get("description", ""),
        audience=meta.get("audience", ""),
        keywords=tuple(meta.get("keywords", ())),
        tags=tuple(meta.get("tags", ())),
        phrases=tuple(meta.get("phrases", ())),
        exclude=tuple(meta.get("exclude", ())),
        require=tuple(meta.get("require", ())),
        further_reading_count=further.get("count", 3),
        max_age_days=further.get("max_age_days", 30),
        intro=body.intro,
        sections=tuple(body.sections),
        faq=tuple(body.faq),
        conclusion=body.conclusion,
        checklist=body.checklist,
        **review_fields(meta),
    )


@dataclass(frozen=True)
class _Part:
    heading: str
    line: int  # the heading's line in the file
    start: int  # body lines [start, stop) under the heading
    stop: int


class _Body:
    """A guide's Markdown split on its `## ` headings as CommonMark sees them (a `## ` line inside a
    code block is code): text before the first is the intro; `## FAQ` holds `### Question?` headings,
    `## Conclusion` a `### Quick checklist` list; every other `## ` heading opens a guidance section."""

    def __init__(self, path: Path, text: str, offset: int) -> None:
        self.path = path
        self.lines = text.split("\n")
        self.offset = offset  # file line of body line i is i + offset + 1
        self.headings = markdown.document_headings(text)
        self.sections: list[Section] = []
        self.faq: list[FaqEntry] = []
        self.conclusion = ""
        self.checklist: tuple[str, ...] = ()
        intro_end, parts = self.split(0, len(self.lines), 2)
        self.intro = self.text(0, intro_end)
        for part in parts:
            self.read_section(part)
        if not self.sections:
            raise GuideError(path, "no guidance section; add at least one '## Heading' with text", offset + 1)

    def split(self, start: int, stop: int, level: int) -> tuple[int, list[_Part]]:
        """Where the text before the first heading of `level` in lines [start, stop) ends, and the parts."""
        cuts = [h for h in self.headings if h.level == level and start <= h.line < stop]
        parts = [_Part(h.text, h.line + self.offset + 1, h.end, cuts[i + 1].line if i + 1 < len(cuts) else stop)
                 for i, h in enumerate(cuts)]
        return (cuts[0].line if cuts else stop), parts

    def text(self, start: int, stop: int) -> str:
        return "\n".join(self.lines[start:stop]).strip("\n").rstrip()

    def read_section(self, part: _Part) -> None:
        name = part.heading.strip()
        if name.lower() in ("faq", "frequently asked questions"):
            self.faq = self.read_faq(part)
        elif name.lower() == "conclusion":
            self.read_conclusion(part)
        else:
            if self.faq or self.conclusion:
                raise GuideError(self.path, f"section {name!r} comes after FAQ/Conclusion; move it above them", part.line)
            self.sections.append(Section(heading=name, body=self.text(part.start, part.stop)))

    def read_faq(self, part: _Part) -> list[FaqEntry]:
        stray_end, questions = self.split(part.start, part.stop, 3)
        if self.text(part.start, stray_end):
            raise GuideError(self.path, "text under '## FAQ' must sit below a '### Question?' heading", part.line + 1)
        entries = []
        for question in questions:
            answer = self.text(question.start, question.stop)
            if not answer:
                raise GuideError(self.path, f"FAQ question {question.heading!r} has no answer", question.line)
            entries.append(FaqEntry(question=question.heading, answer=answer))
        if not entries:
            raise GuideError(self.path, "'## FAQ' has no questions; add '### Question?' headings with answers", part.line)
        return entries

    def read_conclusion(self, part: _Part) -> None:
        text_end, subsections = self.split(part.start, part.stop, 3)
        checklist: list[str] = []
        for sub in subsections:
            if sub.heading.lower().rstrip(":") != "quick checklist":
                raise GuideError(self.path, f"unexpected heading {sub.heading!r} in Conclusion; only '### Quick checklist'",
                                 sub.line)
            for index in range(sub.start, sub.stop):
                stripped = self.lines[index].strip()
                if not stripped:
                    continue
                if not stripped.startswith(("- ", "* ")):
                    raise GuideError(self.path, "checklist lines must start with '- '", index + self.offset + 1)
                checklist.append(stripped[2:].strip())
        self.conclusion, self.checklist = self.text(part.start, text_end), tuple(checklist)


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
    node, data = _load_yaml(path, source)
    key_lines = _key_lines(path, node)

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
    for key in WORD_LIST_KEYS:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            raise fail(key, f"{key!r} must be a list, e.g. {key}: [visa, study]")
        data[key] = [str(v).strip().lower() for v in value if str(v).strip()]
    data.update(validate_review_keys(path, data, key_lines))
    _check_further_reading(path, data.get("further_reading", {}) or {}, key_lines)
    return data


def _load_yaml(path: Path, source: str) -> tuple[yaml.Node, dict]:
    """The front matter's top node and data; a YAML error names the line where the fault began."""
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
    return node, data


def _key_lines(path: Path, node: yaml.Node) -> dict[str, int]:
    """File line of each top-level key, and of each key under further_reading as 'further_reading.KEY'."""
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
    return key_lines


def _check_further_reading(path: Path, further: object, key_lines: dict[str, int]) -> None:
    if not isinstance(further, dict):
        raise GuideError(path, "'further_reading' must hold count: and max_age_days:", key_lines.get("further_reading", 2))
    for key, value in further.items():
        line = key_lines.get(f"further_reading.{key}", key_lines.get("further_reading", 2))
        if key not in FURTHER_READING_KEYS:
            raise GuideError(path, f"unknown key {key!r} under further_reading; allowed: count, max_age_days", line)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise GuideError(path, f"further_reading.{key} must be a whole number of at least 1, not {value!r}", line)

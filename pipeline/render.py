"""Guide + selected Items -> Draft, through the shared Jinja2 templates under templates/.

Feed text is data: every value a template prints is Markdown-escaped unless it is the editor's own
Markdown (wrapped in `Trusted`). Templates are files we wrote; nothing from a feed becomes one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from . import __version__
from .errors import TemplateError
from .models import STATUSES, Draft, Guide, Item
from .publish import publish_keys
from .urls import is_web_url, link_target

ARTICLE_TEMPLATE = "layout/article.md.j2"
CONTEXT_TEMPLATE = "partials/context.md.j2"
FURTHER_READING_TEMPLATE = "partials/further-reading.md.j2"

# Characters that can start Markdown structure inside a line, plus template delimiters
# (Jekyll runs Liquid over page bodies, so a headline's "{{" or "{%" must not survive).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>{}|~#])")
_ENTITY = re.compile(r"&(?=#?\w+;)")
# "%" next to a brace would still read as Liquid's "{%"/"%}" once the brace is escaped.
_LIQUID_PERCENT = re.compile(r"(?<=\\\{)%|%(?=\\\})")
# A value may land at the start of a line (the context paragraph starts lines with a publisher):
# there "- ", "+ ", "1. ", "1) " or "===" would make a list item or a setext heading.
_LINE_START_MARK = re.compile(r"^([-+=])")
_LINE_START_NUMBER = re.compile(r"^(\d+)([.)])")
# Hugo (goldmark) and GitHub turn bare URLs, "www." names and e-mail addresses into links.
_AUTOLINK = re.compile(r"(?<=\w)(:)(?=//)|(?<=\bwww)(\.)|(@)(?=\w)", re.IGNORECASE)


class Trusted(str):
    """Markdown written by our editors or templates: printed as it is."""


def escape_markdown(value: object) -> str:
    """Plain text that renders as itself in Markdown: no link, image, heading, HTML or template."""
    return _escape_text(str(value))


# The same headlines, sources and labels recur in draft after draft (a story is further reading for
# every guide it fits); six regex passes each time were a sixth of a large build.
@lru_cache(maxsize=16384)
def _escape_text(text: str) -> str:
    text = " ".join(text.split())
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = _LIQUID_PERCENT.sub(r"\\%", text)
    text = _AUTOLINK.sub(lambda m: "\\" + m.group(0), text)
    text = _LINE_START_MARK.sub(r"\\\1", text)
    text = _LINE_START_NUMBER.sub(r"\1\\\2", text)
    return _ENTITY.sub("&amp;", text)


def markdown_url(url: str) -> str:
    """An http(s) URL safe inside Markdown's (...) link target: spaces, parentheses, <>, quotes encoded.

    Anything but http(s) is refused: feeds are not allowed to put `javascript:` or `data:` links
    in front of readers, even if an earlier stage let one through.
    """
    if not is_web_url(url):
        raise jinja2.TemplateRuntimeError(f"refusing to link to a non-http(s) URL: {url[:80]!r}")
    return link_target(url)


def _finalize(value: Any) -> str:
    if isinstance(value, Trusted):
        return value
    if value is None:
        raise jinja2.UndefinedError("a template printed a value that is None")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return escape_markdown(value)


def make_environment(templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,  # Markdown, not HTML: escaping is `finalize`'s job
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates do not change during a run: no stat of each file per draft
    )
    env.filters["url"] = lambda url: Trusted(markdown_url(str(url)))
    return env


_TEMPLATE_FAILURES = (jinja2.TemplateSyntaxError, jinja2.TemplateNotFound, jinja2.UndefinedError,
                      jinja2.TemplateRuntimeError)


def render_template(env: jinja2.Environment, name: str, **context: Any) -> str:
    """Render one shared template; a broken template or missing variable names file, line and variable."""
    try:
        return env.get_template(name).render(**context)
    except _TEMPLATE_FAILURES as exc:
        raise _template_error(env, name, exc) from exc


def _template_error(env: jinja2.Environment, name: str, exc: jinja2.TemplateError) -> TemplateError:
    """What went wrong, as file, line and the fix (worked out only when something did)."""
    root = Path(env.loader.searchpath[0])  # type: ignore[union-attr]
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(root / (exc.name or name), f"template syntax error: {exc.message}", exc.lineno)
    if isinstance(exc, jinja2.TemplateNotFound):
        return TemplateError(root / str(exc.name), "template is missing; restore it from git")
    path, line = _failing_template(exc, root / name)
    if isinstance(exc, jinja2.UndefinedError):
        return TemplateError(path, f"undefined variable ({exc.message}); fix the template", line)
    return TemplateError(path, str(exc))


def _failing_template(exc: BaseException, fallback: Path) -> tuple[Path, int | None]:
    """The template file and line where rendering failed, which may be an included partial.

    Jinja2 rewrites tracebacks so that template frames carry the template's file name and line.
    """
    found: tuple[Path, int | None] = (fallback, None)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (Path(filename), tb.tb_lineno)
        tb = tb.tb_next
    return found


def item_view(item: Item) -> dict[str, Any]:
    return {"headline": item.headline, "source": item.source, "date": item.date, "url": item.url}


def render_further_reading(env: jinja2.Environment, items: Sequence[Item]) -> str:
    return render_template(env, FURTHER_READING_TEMPLATE, items=[item_view(i) for i in items]).strip("\n")


def render_offline_context(env: jinja2.Environment, guide: Guide, items: Sequence[Item]) -> str:
    return render_template(
        env, CONTEXT_TEMPLATE, guide=guide_view(guide), items=[item_view(i) for i in items]
    ).strip("\n")


def guide_view(guide: Guide) -> dict[str, Any]:
    return {
        "slug": guide.slug,
        "title": guide.title,
        "description": guide.description,
        "audience": guide.audience,
        "intro": Trusted(guide.intro),
        "sections": [{"heading": Trusted(s.heading), "body": Trusted(s.body)} for s in guide.sections],
        "faq": [{"question": Trusted(f.question), "answer": Trusted(f.answer)} for f in guide.faq],
        "conclusion": Trusted(guide.conclusion),
        "checklist": [Trusted(line) for line in guide.checklist],
    }


def region(name: str, content: str) -> str:
    """A managed region: markers around content the pipeline may rewrite."""
    return f"<!-- pipeline:begin {name} -->\n{content}\n<!-- pipeline:end {name} -->"


def render_body(env: jinja2.Environment, guide: Guide, regions: dict[str, str]) -> str:
    """The Markdown after the front matter, managed regions (already rendered) in place."""
    body = render_template(
        env,
        ARTICLE_TEMPLATE,
        guide=guide_view(guide),
        context=Trusted(region("context", regions["context"])),
        further_reading=Trusted(region("further-reading", regions["further-reading"])),
    )
    while "\n\n\n" in body:  # templates leave blank lines where a part is empty: one is enough
        body = body.replace("\n\n\n", "\n\n")  # (a regex for runs is ten times slower here)
    return body.strip("\n") + "\n"


def front_matter(
    guide: Guide,
    items: Sequence[Item],
    created: dt.datetime,
    modified: dt.datetime,
    site: str | None = None,
) -> dict[str, object]:
    """The draft's front matter, in the order a reviewer reads it."""
    data: dict[str, object] = {
        "title": guide.title,
        "slug": guide.slug,
        "date": _stamp(created),
        "lastmod": _stamp(modified),
        # Hugo's `draft: true` and Jekyll's `published: false` (or the site's one): a new draft is not
        # published; they follow status from here on (see publish.py).
        **publish_keys(STATUSES[0], site),
        "status": STATUSES[0],  # a new draft starts at the beginning
        "description": guide.description,
        "audience": guide.audience,
        "tags": list(guide.tags),
        "keywords": list(guide.keywords),
        "guide": f"templates/guides/{guide.path.name}",
        "max_age_days": guide.max_age_days,
        "further_reading": [
            {"headline": i.headline, "source": i.source, "date": i.date.isoformat() if i.date else None, "url": i.url}
            for i in items
        ],
        "generator": f"pipeline {__version__}",
    }
    return data


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_draft(
    env: jinja2.Environment,
    guide: Guide,
    items: Sequence[Item],
    output_dir: Path,
    now: dt.datetime,
    context_paragraph: str | None = None,
    site: str | None = None,
) -> Draft:
    """The whole draft for a guide as the pipeline would write it afresh (`site`: see publish.py)."""
    regions = {
        "context": context_paragraph if context_paragraph is not None else render_offline_context(env, guide, items),
        "further-reading": render_further_reading(env, items),
    }
    body = render_body(env, guide, regions)
    return Draft(
        slug=guide.slug,
        path=output_dir / f"{guide.slug}.md",
        front_matter=front_matter(guide, items, now, now, site),
        body=body,
        regions=regions,
    )

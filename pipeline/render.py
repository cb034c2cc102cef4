"""Guide + selected Items -> Draft, through the shared Jinja2 templates under templates/.

Feed text is data: every value a template prints is Markdown-escaped unless it is the editor's own
Markdown (wrapped in `Trusted`). Templates are files we wrote; nothing from a feed becomes one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from . import __version__
from .errors import TemplateError
from .models import Draft, Guide, Item

ARTICLE_TEMPLATE = "layout/article.md.j2"
CONTEXT_TEMPLATE = "partials/context.md.j2"
FURTHER_READING_TEMPLATE = "partials/further-reading.md.j2"
REGIONS = ("context", "further-reading")

# Characters that can start Markdown structure inside a line, plus template delimiters
# (Jekyll runs Liquid over page bodies, so a headline's "{{" must not survive).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>{}|~#])")
_ENTITY = re.compile(r"&(?=#?\w+;)")


class Trusted(str):
    """Markdown written by our editors or templates: printed as it is."""


def escape_markdown(value: object) -> str:
    """Plain text that renders as itself in Markdown: no link, image, heading, HTML or template."""
    text = " ".join(str(value).split())
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return _ENTITY.sub("&amp;", text)


def markdown_url(url: str) -> str:
    """A URL safe inside Markdown's (...) link target."""
    return quote(url, safe=":/?#&=%+,;@!$'*~.-_")


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
    )
    env.filters["url"] = lambda url: Trusted(markdown_url(str(url)))
    return env


def render_template(env: jinja2.Environment, name: str, **context: Any) -> str:
    """Render one shared template; a broken template or missing variable names both."""
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        path = Path(env.loader.searchpath[0]) / (exc.name or name)  # type: ignore[union-attr]
        raise TemplateError(path, f"template syntax error: {exc.message}", exc.lineno) from exc
    except jinja2.TemplateNotFound as exc:
        root = Path(env.loader.searchpath[0])  # type: ignore[union-attr]
        raise TemplateError(root / str(exc.name), "template is missing; restore it from git") from exc
    except jinja2.UndefinedError as exc:
        root = Path(env.loader.searchpath[0])  # type: ignore[union-attr]
        raise TemplateError(root / name, f"undefined variable: {exc.message}") from exc


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
    return re.sub(r"\n{3,}", "\n\n", body).strip("\n") + "\n"


def front_matter(
    guide: Guide,
    items: Sequence[Item],
    created: dt.datetime,
    modified: dt.datetime,
    status: str = "draft",
    extra: dict[str, object] | None = None,
) -> dict[str, object]:
    """The draft's front matter, in the order a reviewer reads it."""
    data: dict[str, object] = {
        "title": guide.title,
        "slug": guide.slug,
        "date": _stamp(created),
        "lastmod": _stamp(modified),
        "draft": True,
        "status": status,
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
    if extra:
        data.update(extra)
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
) -> Draft:
    """The whole draft for a guide as the pipeline would write it afresh."""
    regions = {
        "context": context_paragraph if context_paragraph is not None else render_offline_context(env, guide, items),
        "further-reading": render_further_reading(env, items),
    }
    body = render_body(env, guide, regions)
    return Draft(
        slug=guide.slug,
        path=output_dir / f"{guide.slug}.md",
        front_matter=front_matter(guide, items, now, now),
        body=body,
        regions=regions,
    )

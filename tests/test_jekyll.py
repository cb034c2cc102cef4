"""Jekyll builds our drafts too: its YAML reader takes the front matter, and Liquid, which Jekyll runs
over every page body, finds no template syntax from a feed to evaluate.

Skipped when `jekyll` is not installed (Debian: `apt-get install jekyll`).
"""

from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import Route, write_feeds
from test_end_to_end import ENV, serve_golden_feeds

from pipeline.cli import cli

JEKYLL = shutil.which("jekyll")
pytestmark = pytest.mark.skipif(JEKYLL is None, reason="jekyll is not on PATH (apt-get install jekyll)")

CONFIG = """\
title: Guides
markdown: kramdown
kramdown:
  input: GFM
defaults:
  - scope: {path: ""}
    values: {layout: guide}
"""

# The layout reads front matter through Liquid, as a theme would.
LAYOUT = """\
<html><body>
<h1 class="page-title">{{ page.title }}</h1><p class="status">{{ page.status }}</p>
<main>{{ content }}</main>
<ol class="further-reading">{% for entry in page.further_reading %}
<li data-date="{{ entry.date }}">{{ entry.headline | escape }} ({{ entry.source | escape }})</li>{% endfor %}
</ol></body></html>
"""

# Liquid in a headline: if Jekyll evaluated it, 7*7 would not stay as written and `site.title` would leak.
LIQUID_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Liquid Wire</title><link>https://liquid.example/</link>
<description>x</description>
<item><title><![CDATA[WeChat privacy {{ site.title }} {% raw %} {{ 7 | times: 7 }} {% assign x = 1 %}]]></title>
<link>https://liquid.example/a</link><guid>l1</guid><pubDate>Thu, 05 Mar 2026 10:00:00 +0000</pubDate></item>
</channel></rss>
"""


def jekyll_build(tmp_path: Path, drafts: list[Path]) -> Path:
    site = tmp_path / "site"
    shutil.rmtree(site, ignore_errors=True)
    (site / "_layouts").mkdir(parents=True)
    (site / "_config.yml").write_text(CONFIG, encoding="utf-8")
    (site / "_layouts" / "guide.html").write_text(LAYOUT, encoding="utf-8")
    for draft in drafts:
        shutil.copy(draft, site / draft.name)
    done = subprocess.run(
        [JEKYLL, "build", "--safe", "--source", str(site), "--destination", str(site / "_site")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Error" not in done.stderr and "Liquid Warning" not in done.stdout + done.stderr, done.stderr
    return site / "_site"


def published(site: Path) -> list[str]:
    """The guide pages a plain `jekyll build` published (no --drafts, no --unpublished)."""
    return sorted(page.stem for page in site.glob("*.html"))


def pipeline(project: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, ["--root", str(project), *args], env=ENV)
    assert result.exit_code == 0, result.output


def front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text[4:text.index("\n---\n")])


def test_jekyll_builds_our_drafts_with_front_matter_and_further_reading(
    tmp_path: Path, project: Path, feed_server
) -> None:
    serve_golden_feeds(feed_server, project)
    result = CliRunner().invoke(cli, ["--root", str(project), "build"], env=ENV)
    assert result.exit_code == 0, result.output
    drafts = sorted((project / "output").glob("*.md"))
    for draft in drafts:
        pipeline(project, "status", str(draft), "approved")

    site = jekyll_build(tmp_path, drafts)

    for draft in drafts:
        meta = front_matter(draft)
        page = (site / f"{draft.stem}.html").read_text(encoding="utf-8")
        assert f'<h1 class="page-title">{meta["title"]}</h1>' in page
        assert '<p class="status">approved</p>' in page
        assert "Further Reading</h2>" in page and "Disclaimer</h2>" in page
        for entry in meta["further_reading"]:
            headline = html.escape(entry["headline"], quote=False)
            assert f'<li data-date="{entry["date"]}">{html.escape(entry["headline"])}' in page
            assert f"🔸 {headline}" in page
            assert f'<a href="{html.escape(entry["url"])}">Read Full Article</a>' in page


def test_liquid_in_feed_text_is_never_evaluated(tmp_path: Path, project: Path, feed_server) -> None:
    feed_server.routes["/liquid.xml"] = Route(LIQUID_FEED.encode())
    write_feeds(project, {"url": feed_server.url("/liquid.xml"), "tags": ["privacy"]})
    result = CliRunner().invoke(cli, ["--root", str(project), "build"], env=ENV)
    assert result.exit_code == 0, result.output
    draft = project / "output" / "wechat-encryption.md"
    assert front_matter(draft)["further_reading"][0]["source"] == "Liquid Wire"
    pipeline(project, "status", str(draft), "approved")

    page = html.unescape((jekyll_build(tmp_path, [draft]) / "wechat-encryption.html").read_text(encoding="utf-8"))
    main = page[page.index("<main>"):page.index("</main>")]
    # The headline is shown as the feed wrote it: braces and tags as text, nothing evaluated.
    assert "site.title" in main and "times: 7" in main and "assign x = 1" in main
    assert "Guides" not in main.replace("guides/", "")
    assert "49" not in main


@pytest.mark.parametrize("site", [None, "jekyll"])
def test_a_plain_jekyll_build_publishes_exactly_the_approved_drafts(tmp_path: Path, project: Path,
                                                                    feed_server, site: str | None) -> None:
    if site:  # the project names its generator: Jekyll's key alone
        (project / "pyproject.toml").write_text(f'[tool.pipeline]\nsite = "{site}"\n', encoding="utf-8")
    serve_golden_feeds(feed_server, project)
    pipeline(project, "build")
    output = project / "output"
    drafts = sorted(output.glob("*.md"))
    assert published(jekyll_build(tmp_path, drafts)) == []  # nothing approved yet

    pipeline(project, "status", str(output / "wechat-encryption.md"), "approved")  # by command
    assert published(jekyll_build(tmp_path, drafts)) == ["wechat-encryption"]

    other = output / "mobile-payments.md"  # by hand: the next refresh notices
    other.write_text(other.read_text(encoding="utf-8").replace("status: draft", "status: approved"), encoding="utf-8")
    pipeline(project, "refresh")
    assert front_matter(other)["published"] is True and front_matter(other).get("draft") is (None if site else False)
    assert published(jekyll_build(tmp_path, drafts)) == ["mobile-payments", "wechat-encryption"]

    pipeline(project, "status", str(output / "wechat-encryption.md"), "draft")  # approval withdrawn
    assert published(jekyll_build(tmp_path, drafts)) == ["mobile-payments"]
    if site:
        assert all("draft" not in front_matter(draft) for draft in drafts)

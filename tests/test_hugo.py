"""A real static site generator (Hugo) builds our drafts: front matter accepted, Further Reading rendered.

Skipped when `hugo` is not installed (Debian: `apt-get install hugo`).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import Route, write_feeds
from test_end_to_end import ENV, serve_golden_feeds

from pipeline.cli import cli

HUGO = shutil.which("hugo")
pytestmark = pytest.mark.skipif(HUGO is None, reason="hugo is not on PATH (apt-get install hugo)")

CONFIG = """\
baseURL = "https://guides.example/"
title = "Guides"
disableKinds = ["taxonomy", "term", "RSS", "sitemap", "robotsTXT", "404"]
[markup.goldmark.renderer]
  # The worst case for us: raw HTML would pass straight through if our escaping let any in.
  unsafe = true
"""

SINGLE = """\
<!doctype html><html><head><title>{{ .Title }}</title></head><body>
<header><h1 class="page-title">{{ .Title }}</h1><p class="status">{{ .Params.status }}</p></header>
<main>{{ .Content }}</main>
<ol class="further-reading">
{{ range .Params.further_reading }}<li data-date="{{ .date }}" data-source="{{ .source }}">{{ .headline }} {{ .url }}</li>
{{ end }}</ol>
</body></html>
"""

HOSTILE_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Hostile Wire</title><link>https://hostile.example/</link>
<description>x</description>
<item><title><![CDATA[WeChat <script>alert(1)</script> [click](javascript:alert(2)) see https://evil.example/x or www.evil.example {{ .Title }} {{< param "x" >}}]]></title>
<link>https://hostile.example/a?utm_source=x</link><guid>h1</guid><pubDate>Thu, 05 Mar 2026 10:00:00 +0000</pubDate></item>
</channel></rss>
"""


# Hugo 0.111 notes, once per page, that a page carries Jekyll's `published` beside its own `draft`, and
# uses `draft`. The pipeline writes both on purpose (they always agree, see pipeline/publish.py).
BOTH_KEYS = re.compile(r"^WARN .* has both draft and published settings in its frontmatter\. Using draft\.$")


def hugo_build(tmp_path: Path, drafts: list[Path], allowed: re.Pattern[str] | None = BOTH_KEYS) -> Path:
    """A plain `hugo` build of the drafts; any warning but `allowed` fails the test."""
    site = tmp_path / "site"
    shutil.rmtree(site, ignore_errors=True)
    (site / "layouts" / "_default").mkdir(parents=True)
    (site / "content" / "guides").mkdir(parents=True)
    (site / "config.toml").write_text(CONFIG, encoding="utf-8")
    (site / "layouts" / "_default" / "single.html").write_text(SINGLE, encoding="utf-8")
    (site / "layouts" / "_default" / "list.html").write_text("{{ range .Pages }}{{ .Title }}\n{{ end }}",
                                                               encoding="utf-8")
    (site / "layouts" / "index.html").write_text("{{ range .Site.RegularPages }}{{ .Title }}\n{{ end }}",
                                                  encoding="utf-8")
    for draft in drafts:
        shutil.copy(draft, site / "content" / "guides" / draft.name)
    done = subprocess.run(
        # No --buildDrafts: what a plain `hugo` publishes is what the test sees. --buildFuture only keeps the
        # fixed SOURCE_DATE_EPOCH dates from depending on the machine's clock.
        [HUGO, "--source", str(site), "--destination", str(site / "public"), "--buildFuture"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    noise = [line for line in done.stderr.splitlines() if line.strip() and not (allowed and allowed.match(line))]
    assert not any("ERROR" in line or "WARN" in line for line in noise), done.stderr
    return site / "public"


def published(public: Path) -> list[str]:
    """The guide pages a plain Hugo build published."""
    return sorted(page.parent.name for page in (public / "guides").glob("*/index.html"))


def pipeline(project: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, ["--root", str(project), *args], env=ENV)
    assert result.exit_code == 0, result.output


def front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text[4:text.index("\n---\n")])


def test_hugo_builds_our_drafts_with_titles_and_further_reading(tmp_path: Path, project: Path, feed_server) -> None:
    serve_golden_feeds(feed_server, project)
    result = CliRunner().invoke(cli, ["--root", str(project), "build"], env=ENV)
    assert result.exit_code == 0, result.output
    drafts = sorted((project / "output").glob("*.md"))
    assert [d.stem for d in drafts] == ["mobile-payments", "wechat-encryption"]
    for draft in drafts:
        pipeline(project, "status", str(draft), "approved")

    public = hugo_build(tmp_path, drafts)

    for draft in drafts:
        meta = front_matter(draft)
        page = public / "guides" / meta["slug"] / "index.html"
        assert page.is_file(), sorted(str(p.relative_to(public)) for p in public.rglob("*.html"))
        rendered = page.read_text(encoding="utf-8")
        assert f'<h1 class="page-title">{html.escape(meta["title"], quote=False)}</h1>' in rendered
        assert '<p class="status">approved</p>' in rendered
        assert "Further Reading</h2>" in rendered and "Disclaimer</h2>" in rendered
        entries = meta["further_reading"]
        if draft.stem == "wechat-encryption":
            assert len(entries) == 3
        for entry in entries:
            # In the body, through our Markdown ...
            assert f"🔸 {html.escape(entry['headline'], quote=False)}" in rendered
            assert f"🗞️ Source: {html.escape(entry['source'], quote=False)} – 📅 {entry['date']}" in rendered
            assert f'<a href="{html.escape(entry["url"])}">Read Full Article</a>' in rendered
            # ... and in the front matter, as Hugo read it.
            assert f'data-date="{entry["date"]}" data-source="{html.escape(entry["source"])}"' in rendered


def test_hostile_feed_text_stays_text_in_hugo(tmp_path: Path, project: Path, feed_server) -> None:
    feed_server.routes["/hostile.xml"] = Route(HOSTILE_FEED.encode())
    write_feeds(project, {"url": feed_server.url("/hostile.xml"), "tags": ["privacy", "payments"]})
    result = CliRunner().invoke(cli, ["--root", str(project), "build"], env=ENV)
    assert result.exit_code == 0, result.output
    draft = project / "output" / "wechat-encryption.md"
    assert front_matter(draft)["further_reading"][0]["source"] == "Hostile Wire"
    pipeline(project, "status", str(draft), "approved")

    rendered = (hugo_build(tmp_path, [draft]) / "guides" / "wechat-encryption" / "index.html").read_text(
        encoding="utf-8")
    main = rendered[rendered.index("<main>"):rendered.index("</main>")]
    assert "<script" not in main
    assert "javascript:" not in re.sub(r"\[click\]\(javascript:alert\(2\)\)", "", html.unescape(main))
    links = re.findall(r'<a href="([^"]*)"', main)
    assert links and all(link == "https://hostile.example/a" for link in links), links
    assert "{{ .Title }}" in html.unescape(main)  # shown, not evaluated by Hugo


@pytest.mark.parametrize("site", [None, "hugo"])
def test_a_plain_hugo_build_publishes_exactly_the_approved_drafts(tmp_path: Path, project: Path, feed_server,
                                                                  site: str | None) -> None:
    if site:  # the project names its generator: Hugo's key alone, and not one warning from Hugo
        (project / "pyproject.toml").write_text(f'[tool.pipeline]\nsite = "{site}"\n', encoding="utf-8")
    allowed = None if site else BOTH_KEYS
    serve_golden_feeds(feed_server, project)
    pipeline(project, "build")
    output = project / "output"
    drafts = sorted(output.glob("*.md"))
    assert published(hugo_build(tmp_path, drafts, allowed)) == []  # nothing approved yet

    pipeline(project, "status", str(output / "wechat-encryption.md"), "approved")  # by command
    assert published(hugo_build(tmp_path, drafts, allowed)) == ["wechat-encryption"]

    other = output / "mobile-payments.md"  # by hand: the next build notices
    other.write_text(other.read_text(encoding="utf-8").replace("status: draft", "status: approved"), encoding="utf-8")
    pipeline(project, "build", "--offline")
    assert front_matter(other)["draft"] is False and front_matter(other).get("published") is (None if site else True)
    assert published(hugo_build(tmp_path, drafts, allowed)) == ["mobile-payments", "wechat-encryption"]

    pipeline(project, "status", str(output / "wechat-encryption.md"), "in-review")  # approval withdrawn
    assert published(hugo_build(tmp_path, drafts, allowed)) == ["mobile-payments"]
    if site:
        assert all("published" not in front_matter(draft) for draft in drafts)


def test_naming_hugo_later_takes_jekylls_key_out_and_keeps_what_is_approved(tmp_path: Path, project: Path,
                                                                             feed_server) -> None:
    serve_golden_feeds(feed_server, project)
    pipeline(project, "build")
    output = project / "output"
    drafts = sorted(output.glob("*.md"))
    pipeline(project, "status", str(output / "wechat-encryption.md"), "approved")
    (project / "pyproject.toml").write_text('[tool.pipeline]\nsite = "hugo"\n', encoding="utf-8")
    pipeline(project, "refresh")
    assert [("published" in front_matter(d), front_matter(d)["status"]) for d in drafts] == [
        (False, "draft"), (False, "approved")]
    assert published(hugo_build(tmp_path, drafts, allowed=None)) == ["wechat-encryption"]
    checked = CliRunner().invoke(cli, ["--root", str(project), "check", "--release", str(output / "wechat-encryption.md")],
                                 env=ENV)
    assert checked.exit_code == 0, checked.output

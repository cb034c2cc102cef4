"""The review pages in a real browser: Debian's headless Chromium, driven by Playwright.

Pages are opened from files, as a reviewer opens a CI artifact. Every request the browser makes is
recorded: only file:// may appear. Skipped, with the reason, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from review_site import BAD_CITATION, NOTE, SLUG, reviewed  # noqa: F401 - a fixture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


class Browser:
    """One headless Chromium with a fresh profile; remembers console messages, errors and requests."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.console: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))

    def open(self, path: Path) -> Any:
        page = self.context.new_page()
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        return page


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1100, "height": 900})
        try:
            yield Browser(context)
        finally:
            context.close()


def _site(reviewed) -> Path:  # noqa: F811
    result = reviewed.review()
    assert result.exit_code == 0, result.stderr
    return reviewed.root / "output" / "_review"


def test_index_lists_drafts_and_sorts_them(reviewed, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    page = browser.open(_site(reviewed) / "index.html")
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
    slugs = lambda: page.eval_on_selector_all("tbody tr", "rows => rows.map(r => r.dataset.slug)")  # noqa: E731
    assert slugs() == [SLUG, "wechat-encryption"]  # needing a person first
    row = page.locator(f'tr[data-slug="{SLUG}"]')
    assert row.locator("td.notes").inner_text() == "1"
    assert "changed since approval" in row.inner_text()
    page.get_by_role("button", name="Draft").click()
    page.get_by_role("button", name="Draft").click()  # descending: wechat-encryption first
    assert slugs() == ["wechat-encryption", SLUG]
    assert page.locator("th[aria-sort=descending]").count() == 1
    page.get_by_role("link", name="Paying in China").click()
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/_review/{SLUG}.html")
    assert browser.console == [] and browser.errors == []
    assert all(url.startswith("file://") for url in browser.requests), browser.requests


def test_draft_page_shows_provenance_problems_notes_and_changes(reviewed, browser: Browser,  # noqa: F811
                                                                tmp_path: Path) -> None:
    page = browser.open(_site(reviewed) / f"{SLUG}.html")
    page.screenshot(path=str(tmp_path / "draft.png"), full_page=True)
    shots = tmp_path / "screens"
    shots.mkdir()

    # Legend and highlights: three kinds, each present in the article, each looking different.
    styles = {}
    for kind in ("guide", "feed", "model"):
        assert page.locator(f"#legend-{kind}").is_visible()
        block = page.locator(f"article .prov-{kind}").first
        assert block.is_visible(), kind
        styles[kind] = block.evaluate("e => { const s = getComputedStyle(e); "
                                      "return [s.backgroundColor, s.borderLeftStyle, s.borderLeftColor].join() }")
    assert len(set(styles.values())) == 3, styles
    model = page.locator("article .prov-model")
    assert "openai:gpt-4o-mini" in page.locator("#legend-model").inner_text()
    assert model.first.get_attribute("aria-describedby") == "legend-model"

    # A citation in a model sentence leads to its Further Reading entry, which is feed text.
    cite = model.locator("a.cite").first
    target = cite.get_attribute("href")
    cite.click()
    assert page.evaluate("location.hash") == target
    assert "prov-feed" in page.locator(target).get_attribute("class")
    page.locator(target).screenshot(path=str(shots / "entry.png"))

    # The check problem sits right after the paragraph it is about, and the list at the top links to it.
    problem = page.locator("article .problem", has_text="citation")
    paragraph = problem.locator("xpath=preceding-sibling::p[1]")
    assert paragraph.inner_text().startswith(BAD_CITATION)
    link = page.locator("#problems a", has_text="citation")
    link.click()
    assert page.evaluate("location.hash") == "#" + problem.get_attribute("id")
    assert problem.is_visible()
    paragraph.screenshot(path=str(shots / "problem.png"))

    # The note is highlighted where the reviewer wrote it.
    note = page.locator("article mark.note")
    assert note.count() == 1 and NOTE in note.inner_text()
    assert note.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")

    # After the refresh: words inserted and deleted in the Further Reading region since approval.
    changed = page.locator('#changes .diff[data-part="further-reading"]')
    assert "English" in changed.locator("ins").all_inner_texts()[0] + " ".join(changed.locator("ins").all_inner_texts())
    assert changed.locator("del").count() >= 1
    changed.screenshot(path=str(shots / "diff.png"))

    assert browser.console == [] and browser.errors == []
    assert all(url.startswith("file://") for url in browser.requests), browser.requests


def test_hostile_headline_stays_inert_text(reviewed, browser: Browser) -> None:  # noqa: F811
    page = browser.open(_site(reviewed) / f"{SLUG}.html")
    assert page.title().startswith("Review: ")  # the headline's script never ran
    entry = page.locator("article .prov-feed", has_text="Tencent")
    text = entry.inner_text()
    assert "<script>document.title='pwned'</script>" in text and "{{ site.title }}" in text
    assert "[tap](javascript:alert(1))" in text
    assert page.locator("script").count() == 0
    assert page.locator('a[href^="javascript"]').count() == 0
    assert browser.console == [] and browser.errors == []

"""`pipeline review`: the static review site, its diff since approval, and what it must never touch."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from pipeline.changes import DELETE, INSERT, SAME, region_diffs, unified_diff, word_diff
from review_site import BAD_CITATION, HOSTILE, NOTE, SLUG, reviewed  # noqa: F401 - a fixture
from review_support import run


def _page(root: Path, name: str) -> BeautifulSoup:
    return BeautifulSoup((root / "output" / "_review" / name).read_text(encoding="utf-8"), "html.parser")


def test_word_diff_marks_inserted_and_deleted_words() -> None:
    segments = word_diff("Alipay raises the limit today.", "Alipay lowers the limit today.")
    assert (DELETE, "raises") in segments and (INSERT, "lowers") in segments
    assert "".join(t for k, t in segments if k != INSERT) == "Alipay raises the limit today."
    assert "".join(t for k, t in segments if k != DELETE) == "Alipay lowers the limit today."
    assert word_diff("same", "same") == ((SAME, "same"),)


def test_region_diffs_name_the_part_that_changed() -> None:
    base = ("---\ntitle: T\n---\n\n# T\n\nMine.\n\n<!-- pipeline:begin further-reading -->\nold story\n"
            "<!-- pipeline:end further-reading -->\n")
    changed = base.replace("old story", "new story")
    diffs = {d.name: d for d in region_diffs(base, changed)}
    assert diffs["further-reading"].changed
    assert diffs["further-reading"].count(INSERT) == 1 and diffs["further-reading"].count(DELETE) == 1
    assert not diffs["front matter"].changed and not diffs["text outside the managed regions"].changed
    patch = unified_diff(base, changed, "output/t.md", "2025-03-01T12:00:00Z")
    assert "--- output/t.md (approved 2025-03-01T12:00:00Z)" in patch
    assert "-old story\n+new story\n" in patch


def test_review_writes_index_and_a_page_per_draft(reviewed) -> None:  # noqa: F811
    result = reviewed.review()
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("output/_review/index.html")
    index = _page(reviewed.root, "index.html")
    rows = {row["data-slug"]: row for row in index.select("tbody tr")}
    assert set(rows) == {"mobile-payments", "wechat-encryption"}
    row = rows[SLUG]
    assert row.select_one("td.notes").get_text() == "1"
    assert row.select_one("td.problems").get_text() == "1"  # the bad citation; the note is counted apart
    # Approved, then a refresh changed its news: still approved (the feeds vouch), but a person should look.
    assert "changed since approval" in row.get_text() and "further-reading: 1 story added" in row.get_text()
    assert row.select_one(".status").get_text() == "approved"
    assert row.select_one("a")["href"] == "mobile-payments.html"
    # Drafts that need a person come first, so the table is useful without script.
    assert index.select("tbody tr")[0]["data-slug"] == SLUG
    page = _page(reviewed.root, "mobile-payments.html")
    assert page.select_one("mark.note").get_text(" ", strip=True) == f"note {NOTE}"
    problem = next(p for p in page.select("article .problem") if "citation" in p.get_text())
    assert BAD_CITATION in problem.get_text()
    assert problem.find_previous_sibling("p").get_text().startswith(BAD_CITATION)
    assert f"#{problem['id']}" in [a["href"] for a in page.select("#problems a")]
    note_problem = next(p for p in page.select("article .problem") if "reviewer note" in p.get_text())
    assert NOTE in note_problem.find_previous_sibling("p").get_text()
    assert page.select(".prov-model") and page.select(".prov-feed") and page.select(".prov-guide")
    assert "openai:gpt-4o-mini" in page.select_one("#legend-model").get_text()
    cite = page.select_one(".prov-model a.cite")
    assert page.select_one(cite["href"]) is not None and "prov-feed" in page.select_one(cite["href"])["class"]
    assert page.select("#changes ins") and page.select("#changes del")


def test_hostile_headline_stays_text(reviewed) -> None:  # noqa: F811
    assert reviewed.review().exit_code == 0
    raw = (reviewed.root / "output" / "_review" / "mobile-payments.html").read_text(encoding="utf-8")
    page = BeautifulSoup(raw, "html.parser")
    assert len(page.find_all("script")) == 0  # the draft page needs no script at all
    assert not page.select('a[href^="javascript"]')
    assert "<script>document" not in raw and html.escape("<script>document", quote=False) in raw
    assert "{{ site.title }}" in page.get_text()


def test_diff_prints_the_changes_since_approval(reviewed) -> None:  # noqa: F811
    result = reviewed.review("--diff", SLUG)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("--- output/mobile-payments.md (approved 2025-03-01T12:00:00Z)\n"
                                    "+++ output/mobile-payments.md (now)\n")
    added = [line for line in result.stdout.splitlines() if line.startswith("+🔸")]
    assert any("English menus" in line for line in added)
    assert any(line.startswith("-🔸") for line in result.stdout.splitlines())


def test_diff_without_approval_says_what_to_do(reviewed) -> None:  # noqa: F811
    result = reviewed.review("--diff", "wechat-encryption")
    assert result.exit_code == 1
    assert "no approval recorded; approve it with `pipeline status" in result.stderr
    missing = reviewed.review("--diff", "nope")
    assert missing.exit_code == 1 and "nope.md: no such draft" in missing.stderr


def test_review_folder_is_not_a_draft(reviewed) -> None:  # noqa: F811
    before = run(reviewed.root, "check", "--format", "json")
    assert reviewed.review().exit_code == 0
    after = run(reviewed.root, "check", "--format", "json")
    assert after.stdout == before.stdout and after.exit_code == before.exit_code
    built = run(reviewed.root, "build", "--offline", env=reviewed.env)
    assert "built 2 drafts" in built.stdout
    assert not list((reviewed.root / "output").glob("_review*.md"))
    # A draft that is gone loses its page at the next review.
    (reviewed.root / "output" / "wechat-encryption.md").unlink()
    assert reviewed.review().exit_code == 0
    assert not (reviewed.root / "output" / "_review" / "wechat-encryption.html").exists()


def test_review_folder_is_git_ignored() -> None:
    repo = Path(__file__).resolve().parent.parent
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("git or the checkout's .git is missing")
    found = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", "output/_review/index.html"])
    assert found.returncode == 0, "output/_review/ is a build artifact: .gitignore must list it"


@pytest.mark.skipif(shutil.which("jekyll") is None, reason="jekyll is not installed (apt-get install jekyll)")
def test_jekyll_does_not_publish_the_review_folder(reviewed, tmp_path: Path) -> None:  # noqa: F811
    assert reviewed.review().exit_code == 0
    site = tmp_path / "site"
    result = subprocess.run(["jekyll", "build", "--safe", "--source", str(reviewed.root / "output"),
                             "--destination", str(site)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert list(site.rglob("*.html")), "jekyll published nothing: the test would prove nothing"
    assert not [p for p in site.rglob("*") if "_review" in p.parts or "review" in p.name]


@pytest.mark.skipif(shutil.which("hugo") is None, reason="hugo is not installed (apt-get install hugo)")
def test_hugo_does_not_publish_the_review_folder(reviewed, tmp_path: Path) -> None:  # noqa: F811
    assert reviewed.review().exit_code == 0
    site = tmp_path / "site"
    site.mkdir()
    (site / "config.toml").write_text(f'baseURL = "https://example.org/"\ncontentDir = "{reviewed.root / "output"}"\n'
                                      'disableKinds = ["taxonomy", "term", "RSS", "sitemap"]\n', encoding="utf-8")
    (site / "layouts" / "_default").mkdir(parents=True)
    (site / "layouts" / "_default" / "single.html").write_text("{{ .Title }}", encoding="utf-8")
    (site / "layouts" / "_default" / "list.html").write_text("{{ .Title }}", encoding="utf-8")
    result = subprocess.run(["hugo", "--source", str(site), "--destination", str(site / "public"), "--buildDrafts"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    published = [p.relative_to(site / "public") for p in (site / "public").rglob("*") if p.is_file()]
    assert any(SLUG in str(p) for p in published), published
    assert not [p for p in published if "_review" in str(p) or re.search(r"review", p.name)], published


def test_conditions_from_the_ledger_are_listed(reviewed) -> None:  # noqa: F811
    from pipeline.models import Condition
    from pipeline.store import open_store

    path = reviewed.root / "output" / "wechat-encryption.md"
    message = f"{path}: reviewer edits conflict with the changed guide or templates; draft left untouched"
    with open_store(reviewed.root / "pipeline.sqlite3") as store:
        store.save_conditions([Condition(str(path), "conflict", message, message, "2025-03-01T12:00:00+00:00")], [])
    assert reviewed.review().exit_code == 0
    row = _page(reviewed.root, "index.html").select_one('tr[data-slug="wechat-encryption"]')
    assert "conflict" in row.get_text() and "reviewer edits conflict" in row.get_text()
    page = _page(reviewed.root, "wechat-encryption.html")
    assert "reviewer edits conflict" in page.select_one("#conditions").get_text()


def test_a_listed_link_judged_dead_is_listed_as_needing_a_person(reviewed) -> None:  # noqa: F811
    import datetime as dt

    from pipeline.drafts import read_draft
    from pipeline.models import LinkCheck
    from pipeline.store import open_store

    path = reviewed.root / "output" / "wechat-encryption.md"
    draft = read_draft(path)
    assert draft is not None
    listed = [entry["url"] for entry in draft.front_matter["further_reading"]]
    dead, alive = listed[0], listed[1]
    checked = dt.datetime(2025, 3, 1, 12, tzinfo=dt.timezone.utc)
    with open_store(reviewed.root / "pipeline.sqlite3") as store:
        store.save_link_checks([LinkCheck(dead, "dead", checked, 404, "HTTP 404 twice in a row", strikes=2),
                                LinkCheck(alive, "unverified", checked, 503, "HTTP 503")])
    assert reviewed.review().exit_code == 0
    row = _page(reviewed.root, "index.html").select_one('tr[data-slug="wechat-encryption"]').get_text()
    assert "dead link" in row and dead in row and alive not in row
    conditions = _page(reviewed.root, "wechat-encryption.html").select_one("#conditions").get_text()
    assert dead in conditions and "HTTP 404 twice in a row" in conditions

    # A reviewer takes the entry out of the list: the page reads the list, not the front matter's copy
    # (which a list the reviewer keeps no longer updates).
    text = path.read_text(encoding="utf-8")
    start = text.index(f"]({dead})")
    start, end = text.rindex("🔸", 0, start), text.index("🔸", start)
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    assert reviewed.review().exit_code == 0
    row = _page(reviewed.root, "index.html").select_one('tr[data-slug="wechat-encryption"]').get_text()
    assert "dead link" not in row and dead not in row


def test_open_hands_the_index_to_the_web_browser(reviewed, tmp_path: Path) -> None:  # noqa: F811
    import sys
    import webbrowser

    seen = tmp_path / "opened.txt"
    script = tmp_path / "browser.py"
    script.write_text(f"import sys, pathlib\npathlib.Path({str(seen)!r}).write_text(sys.argv[1])\n", encoding="utf-8")
    webbrowser._tryorder = None  # type: ignore[attr-defined]  # read $BROWSER again, as a new process would
    try:
        result = run(reviewed.root, "review", "--open", env={**reviewed.env, "BROWSER": f"{sys.executable} {script} %s"})
    finally:
        webbrowser._tryorder = None  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.stderr
    assert seen.read_text(encoding="utf-8") == (reviewed.root / "output" / "_review" / "index.html").resolve().as_uri()

"""`pipeline check`: each release rule fails a real draft that breaks exactly that rule, and passes it clean.

Drafts come from `pipeline build --offline` in a temp project whose store holds real items (saved
through the Store), so Further Reading and the context citations are what the pipeline writes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FeedServer, Route, project_store, write_feeds
from pipeline.check import check_text, load_reference
from pipeline.cli import cli
from pipeline.drafts import set_front_matter_key, split_draft
from pipeline.models import Item

NOW = dt.datetime(2026, 3, 6, 12, 0, tzinfo=dt.timezone.utc)
FEED = "http://127.0.0.1:9/news.xml"  # never fetched: builds here are offline
ITEMS = [
    Item(FEED, "a", "WeChat adds new encryption option for chats", "Reuters", dt.date(2026, 3, 4),
         "https://www.reuters.com/tech/wechat-encryption?id=7"),
    Item(FEED, "b", "Tencent data privacy rules under scrutiny", "Caixin *Global*", dt.date(2026, 3, 2),
         "https://www.caixinglobal.com/2026-03-02/tencent-privacy.html"),
    Item(FEED, "c", "Surveillance & messaging: what changed", "SCMP", dt.date(2026, 2, 27),
         "https://www.scmp.com/tech/surveillance-messaging"),
]


def epoch(moment: dt.datetime) -> str:
    return str(int(moment.timestamp()))


@pytest.fixture
def draft(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """output/wechat-encryption.md as `pipeline build --offline` writes it, with three news entries."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch(NOW))
    monkeypatch.chdir(project)
    with project_store(project) as store:
        store.save_items(ITEMS, NOW)
    result = CliRunner().invoke(cli, ["--root", str(project), "build", "--offline"])
    assert result.exit_code == 0, result.output
    path = project / "output" / "wechat-encryption.md"
    assert path.read_text(encoding="utf-8").count("🔸 ") == 3  # the premise: real entries
    return path


def run_check(project: Path, *args: str) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(cli, ["--root", str(project), "check", "--format", "json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= count, f"{old!r} not in the draft"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing `needle`."""
    hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in the draft"
    return hits[occurrence - 1]


def rules(problems: list[dict[str, object]]) -> set[object]:
    return {p["rule"] for p in problems}


# -- the clean draft --------------------------------------------------------------------------------


def test_clean_draft_passes(project: Path, draft: Path) -> None:
    code, problems = run_check(project, str(draft))
    assert (code, problems) == (0, [])


def test_clean_draft_passes_in_text_format_quietly_on_stdout(project: Path, draft: Path) -> None:
    result = CliRunner().invoke(cli, ["--root", str(project), "check", str(draft)])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "checked 1 draft(s): no problems" in result.stderr


def test_no_path_checks_every_draft_in_output(project: Path, draft: Path) -> None:
    other = project / "output" / "mobile-payments.md"
    edit(other, "## 🧩 Conclusion", "## Conclusion")
    code, problems = run_check(project)
    assert code == 1
    assert [(p["path"], p["rule"]) for p in problems] == [("output/mobile-payments.md", "sections")]


# -- one test per rule ------------------------------------------------------------------------------

Breaker = Callable[[Path], int]  # breaks the draft, returns the line the problem must be reported at


def drop_lastmod(path: Path) -> int:
    edit(path, f"lastmod: '{NOW:%Y-%m-%dT%H:%M:%SZ}'\n", "")
    return 1


def bad_yaml(path: Path) -> int:
    edit(path, "draft: true\n", "draft: true: yes\n")
    return line_of(path, "draft: true: yes")


def bad_status(path: Path) -> int:
    edit(path, "status: draft", "status: drafted")
    return line_of(path, "status:")


def swap_join_and_conclusion(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    start, middle, end = (text.index(h) for h in ("## 🧩 Conclusion", "## 📣 How to Join", "## 📚 Further"))
    path.write_text(text[:start] + text[middle:end] + text[start:middle] + text[end:], encoding="utf-8")
    return line_of(path, "## 📣 How to Join the Group")


def drop_faq_heading(path: Path) -> int:
    edit(path, "## 🙋 Frequently Asked Questions (FAQ)\n", "")
    return line_of(path, "## 🧩 Conclusion")  # where the missing heading should have come before


def retitle_heading(path: Path) -> int:
    edit(path, "# Is WeChat End-to-End Encrypted?", "# Is WeChat Safe?")
    return line_of(path, "# Is WeChat Safe?")


def reword_disclaimer(path: Path) -> int:
    edit(path, "mistake? Tell us", "mistake? Ignore it")
    return line_of(path, "mistake? Ignore it")


def truncate_disclaimer(path: Path) -> int:
    edit(path, "Spotted a\nmistake? Tell us and we will fix it.\n", "Spotted a\n")
    return line_of(path, "Spotted a")


def unclosed_region(path: Path) -> int:
    edit(path, "<!-- pipeline:end further-reading -->\n", "")
    return len(path.read_text(encoding="utf-8").splitlines())  # "never closed": reported at the last line


def repeated_region(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    region = text[text.index("<!-- pipeline:begin context -->"): text.index("<!-- pipeline:end context -->")]
    region += "<!-- pipeline:end context -->\n\n"
    path.write_text(text.replace("## 🧩 Conclusion", region + "## 🧩 Conclusion"), encoding="utf-8")
    return line_of(path, "<!-- pipeline:begin context -->", occurrence=2)


def nested_region(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    text = text.replace("<!-- pipeline:end context -->\n", "")
    text = text.replace("<!-- pipeline:end further-reading -->\n",
                        "<!-- pipeline:end further-reading -->\n<!-- pipeline:end context -->\n")
    path.write_text(text, encoding="utf-8")
    return line_of(path, "<!-- pipeline:begin further-reading -->")


def unknown_citation(path: Path) -> int:
    edit(path, "[Reuters, 2026-03-04]", "[Reuters, 2026-03-05]")
    return line_of(path, "[Reuters, 2026-03-05]")


def citation_of_unlisted_publisher(path: Path) -> int:
    edit(path, "around the corner all use it.", "around the corner all use it [Xinhua, 2026-03-01].")
    return line_of(path, "[Xinhua, 2026-03-01]")


def javascript_link(path: Path) -> int:
    edit(path, "around the corner all use it.", "around the corner all use it ([see](javascript:alert(1))).")
    return line_of(path, "javascript:")


def ftp_autolink(path: Path) -> int:
    edit(path, "around the corner all use it.", "around the corner all use it <ftp://files.example.com/x>.")
    return line_of(path, "ftp://")


def relative_html_link(path: Path) -> int:
    edit(path, "around the corner all use it.", 'around the corner all use it (<a href="/about">about</a>).')
    return line_of(path, 'href="/about"')


def front_matter_url_not_http(path: Path) -> int:
    # Both places, so the list and the front matter still agree: only the scheme is wrong.
    url = "https://www.scmp.com/tech/surveillance-messaging"
    edit(path, f"url: {url}", "url: data:text/html,hello")
    edit(path, f"]({url})", "](data:text/html,hello)")
    return line_of(path, "url: data:")


def hyphen_for_dash(path: Path) -> int:
    edit(path, "Source: Reuters – 📅", "Source: Reuters - 📅")
    return line_of(path, "Source: Reuters - ")


def bullet_headline(path: Path) -> int:
    edit(path, "🔸 WeChat adds", "* WeChat adds")
    return line_of(path, "* WeChat adds")


def three_trailing_spaces(path: Path) -> int:
    edit(path, "🗞️ Source: SCMP – 📅 2026-02-27  \n", "🗞️ Source: SCMP – 📅 2026-02-27   \n")
    return line_of(path, "Source: SCMP")


def two_blank_lines(path: Path) -> int:
    edit(path, "?id=7)\n\n", "?id=7)\n\n\n")
    return line_of(path, "?id=7)") + 1


def entries_run_together(path: Path) -> int:
    edit(path, "?id=7)\n\n", "?id=7)\n")
    return line_of(path, "🔸 WeChat adds")


def lower_max_age(path: Path) -> int:
    edit(path, "max_age_days: 30", "max_age_days: 5")
    return line_of(path, "📅 2026-02-27")  # six days before NOW; the others are within five


def duplicate_headline(path: Path) -> int:
    edit(path, "Surveillance & messaging: what changed", "TENCENT data-privacy rules, under scrutiny!")  # front matter
    edit(path, "🔸 Surveillance & messaging: what changed", "🔸 TENCENT data-privacy rules, under scrutiny!")
    return line_of(path, "🔸 TENCENT data-privacy")


def duplicate_url(path: Path) -> int:
    first, third = ITEMS[1].url, ITEMS[2].url
    edit(path, f"url: {third}", f"url: {first}")
    edit(path, f"]({third})", f"]({first})")
    return line_of(path, f"]({first})", occurrence=2)


def list_headline_edited_alone(path: Path) -> int:
    edit(path, "🔸 WeChat adds new encryption option for chats", "🔸 WeChat adds an encryption option")
    return line_of(path, "🔸 WeChat adds an encryption option")


def front_matter_entry_not_listed(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    start = text.index("\n\n🔸 Surveillance")
    path.write_text(text[:start] + text[text.index("\n<!-- pipeline:end further-reading"):], encoding="utf-8")
    edit(path, " [SCMP, 2026-02-27].", ".")  # its citation goes too: only the lists disagree
    return line_of(path, "url: https://www.scmp.com")


def jinja_left_over(path: Path) -> int:
    edit(path, "Sooner or later you wonder", "{% if city %} Sooner or later you wonder")
    return line_of(path, "{% if city %}")


def jinja_comment_left_over(path: Path) -> int:
    edit(path, "## 📣 How to Join the Group\n", "## 📣 How to Join the Group\n\n{# TODO add QR code #}\n")
    return line_of(path, "{# TODO")


BREAKERS: list[tuple[Breaker, str]] = [
    (drop_lastmod, "front-matter"),
    (bad_yaml, "front-matter"),
    (bad_status, "front-matter"),
    (swap_join_and_conclusion, "sections"),
    (drop_faq_heading, "sections"),
    (retitle_heading, "sections"),
    (reword_disclaimer, "disclaimer"),
    (truncate_disclaimer, "disclaimer"),
    (unclosed_region, "markers"),
    (repeated_region, "markers"),
    (nested_region, "markers"),
    (unknown_citation, "citation"),
    (citation_of_unlisted_publisher, "citation"),
    (javascript_link, "link"),
    (ftp_autolink, "link"),
    (relative_html_link, "link"),
    (front_matter_url_not_http, "link"),
    (hyphen_for_dash, "further-reading-format"),
    (bullet_headline, "further-reading-format"),
    (three_trailing_spaces, "further-reading-format"),
    (two_blank_lines, "further-reading-format"),
    (entries_run_together, "further-reading-format"),
    (lower_max_age, "further-reading-age"),
    (duplicate_headline, "further-reading-duplicate"),
    (duplicate_url, "further-reading-duplicate"),
    (list_headline_edited_alone, "further-reading-front-matter"),
    (front_matter_entry_not_listed, "further-reading-front-matter"),
    (jinja_left_over, "template-syntax"),
    (jinja_comment_left_over, "template-syntax"),
]


@pytest.mark.parametrize(("breaker", "rule"), BREAKERS, ids=[b.__name__ for b, _ in BREAKERS])
def test_each_rule_fails_a_draft_that_breaks_it(project: Path, draft: Path, breaker: Breaker, rule: str) -> None:
    line = breaker(draft)
    code, problems = run_check(project, str(draft))
    assert code == 1
    assert rules(problems) == {rule}, problems
    assert line in {p["line"] for p in problems}, problems


def test_entries_past_max_age_fail_as_time_passes(project: Path, draft: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch(NOW + dt.timedelta(days=32)))  # 2026-04-07
    code, problems = run_check(project, str(draft))
    assert code == 1
    # 2026-04-07 minus 30 days is 2026-03-08: all three are too old, each reported on its date line.
    assert [(p["rule"], p["line"]) for p in problems] == [
        ("further-reading-age", line_of(draft, f"📅 {item.date}")) for item in (ITEMS[1], ITEMS[0], ITEMS[2])
    ]


def test_entry_dated_in_the_future_fails(project: Path, draft: Path) -> None:
    edit(draft, "date: '2026-03-04'", "date: '2026-03-09'")
    edit(draft, "📅 2026-03-04", "📅 2026-03-09")
    edit(draft, "[Reuters, 2026-03-04]", "[Reuters, 2026-03-09]")
    code, problems = run_check(project, str(draft))
    assert [(p["rule"], p["line"]) for p in problems] == [("further-reading-age", line_of(draft, "📅 2026-03-09"))]


def test_release_requires_approved_status(project: Path, draft: Path) -> None:
    code, problems = run_check(project, "--release", str(draft))
    assert code == 1
    assert [(p["rule"], p["line"]) for p in problems] == [("status", line_of(draft, "status: draft"))]
    result = CliRunner().invoke(cli, ["--root", str(project), "status", str(draft), "approved"])
    assert result.exit_code == 0, result.output
    assert run_check(project, "--release", str(draft)) == (0, [])


def test_template_syntax_inside_code_is_allowed(project: Path, draft: Path) -> None:
    edit(draft, "around the corner all use it.",
         "around the corner all use it; Hugo writes `{{ .Title }}` and\n\n```\n{% raw %} [see](ftp://x)\n```\n")
    assert run_check(project, str(draft)) == (0, [])


# -- Markdown as CommonMark reads it (issue 13) ---------------------------------------------------


def test_a_section_heading_inside_a_fenced_code_block_is_not_a_section(project: Path, draft: Path) -> None:
    edit(draft, "around the corner all use it.",
         "around the corner all use it.\n\n```markdown\n## 🧩 Conclusion\n# Another title\n```\n")
    assert run_check(project, str(draft)) == (0, [])


def test_template_syntax_inside_an_indented_code_block_is_allowed(project: Path, draft: Path) -> None:
    edit(draft, "around the corner all use it.", "around the corner all use it.\n\n    {{ .Title }} {% raw %}\n")
    assert run_check(project, str(draft)) == (0, [])


def test_a_link_with_brackets_in_its_text_is_a_link(project: Path, draft: Path) -> None:
    edit(draft, "around the corner all use it.", "around the corner all use it; see [the [official] page](/about).")
    code, problems = run_check(project, str(draft))
    assert code == 1
    assert [(p["rule"], p["line"], p["message"]) for p in problems] == [
        ("link", line_of(draft, "[the [official] page]"),
         "link '/about' is not http(s); use an absolute https:// URL")]


def test_a_link_whose_text_wraps_onto_a_second_line_is_a_link(project: Path, draft: Path) -> None:
    edit(draft, "around the corner all use it.", "around the corner all use it; see [the official\npage](/about).")
    code, problems = run_check(project, str(draft))
    assert code == 1
    assert [(p["rule"], p["line"]) for p in problems] == [("link", line_of(draft, "see [the official"))]


def test_escaped_feed_text_that_looks_like_html_is_not_a_link(project: Path, draft: Path) -> None:
    edit(draft, "around the corner all use it.", "around the corner all use it \\<img src=x\\> \\[a\\](b).")
    assert run_check(project, str(draft)) == (0, [])


def test_either_generators_publishing_key_will_do_and_a_draft_with_neither_fails(project: Path, draft: Path) -> None:
    edit(draft, "draft: true\n", "")
    assert run_check(project, str(draft)) == (0, [])  # Jekyll's key alone (site = "jekyll")
    edit(draft, "published: false\n", "draft: true\n")
    assert run_check(project, str(draft)) == (0, [])  # Hugo's key alone (site = "hugo")
    edit(draft, "draft: true\n", "")
    code, problems = run_check(project, str(draft))
    assert code == 1 and [(p["line"], p["message"]) for p in problems] == [
        (1, "front matter lacks 'draft' (Hugo) or 'published' (Jekyll); add it (see README)")]
    edit(draft, "status: draft\n", "status: draft\npublished: 'no'\n")
    code, problems = run_check(project, str(draft))
    assert [p["message"] for p in problems] == ["'published' must be true or false"]


def test_hand_fixed_headline_passes_when_front_matter_agrees(project: Path, draft: Path) -> None:
    edit(draft, "WeChat adds new encryption option for chats", "WeChat adds an opt-in encrypted chat mode", count=3)
    assert run_check(project, str(draft)) == (0, [])


# -- unfinished drafts: warnings, failures with --release (issue 11, issue 16's notes) --------------


def ai_banner_left(path: Path) -> int:
    edit(path, "<!-- pipeline:begin context -->\n", "<!-- pipeline:begin context -->\n*AI-drafted by "
         "openai:gpt-4o-mini: check every sentence against its source before release.*\n\n")
    return line_of(path, "*AI-drafted by")


def placeholder_left(path: Path) -> int:
    edit(path, "around the corner all use it.", "around the corner all use it.\n\nTODO(editor): a word on VPNs.")
    return line_of(path, "TODO(editor): a word on VPNs")


def placeholder_description(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    draft = split_draft(path, text)
    fm = set_front_matter_key(draft.front_matter_text, "description", "TODO(editor): one sentence for search results.")
    path.write_text(draft.with_changes(fm, draft.body), encoding="utf-8")
    return line_of(path, "description: 'TODO(editor)")


def faq_without_questions(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    start = text.index("## 🙋 Frequently Asked Questions (FAQ)\n") + len("## 🙋 Frequently Asked Questions (FAQ)\n")
    path.write_text(text[:start] + "\n" + text[text.index("## 🧩 Conclusion"):], encoding="utf-8")
    return line_of(path, "## 🙋 Frequently Asked Questions (FAQ)")


def checklist_without_items(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    start = text.index("**Quick checklist:**\n") + len("**Quick checklist:**\n")
    path.write_text(text[:start] + "\n" + text[text.index("## 📣 How to Join the Group"):], encoding="utf-8")
    return line_of(path, "**Quick checklist:**")


def stopword_keywords(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    draft = split_draft(path, text)
    fm = set_front_matter_key(draft.front_matter_text, "keywords", ["the", "how to", "and"])
    path.write_text(draft.with_changes(fm, draft.body), encoding="utf-8")
    return line_of(path, "keywords:")


def reviewer_note(path: Path) -> int:
    edit(path, "around the corner all use it.", "around the corner all use it. {>>Is this still true in 2026?<<}")
    return line_of(path, "{>>Is this still true")


UNFINISHED: list[tuple[Breaker, str]] = [
    (ai_banner_left, "ai-banner"),
    (placeholder_left, "placeholder"),
    (placeholder_description, "placeholder"),
    (faq_without_questions, "empty-section"),
    (checklist_without_items, "empty-section"),
    (stopword_keywords, "keywords"),
    (reviewer_note, "note"),
]


@pytest.mark.parametrize(("breaker", "rule"), UNFINISHED, ids=[b.__name__ for b, _ in UNFINISHED])
def test_each_unfinished_draft_is_a_warning_and_fails_the_release(project: Path, draft: Path, breaker: Breaker,
                                                                   rule: str) -> None:
    line = breaker(draft)
    code, problems = run_check(project, str(draft))
    assert code == 0, problems
    assert [(p["rule"], p["line"], p["severity"]) for p in problems] == [(rule, line, "warning")]
    result = CliRunner().invoke(cli, ["--root", str(project), "status", str(draft), "approved"])
    assert result.exit_code == 0, result.output
    code, problems = run_check(project, "--release", str(draft))
    assert code == 1
    assert [(p["rule"], p["line"], p["severity"]) for p in problems] == [(rule, line, "error")]


def test_an_empty_further_reading_is_a_warning_and_fails_the_release(project: Path, monkeypatch: pytest.MonkeyPatch
                                                                      ) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch(NOW))
    result = CliRunner().invoke(cli, ["--root", str(project), "build", "--offline"])  # an empty store: no news
    assert result.exit_code == 0, result.output
    path = project / "output" / "wechat-encryption.md"
    line = line_of(path, "No recent news matched")
    text = CliRunner().invoke(cli, ["--root", str(project), "check", str(path)])
    assert text.exit_code == 0
    assert text.stdout == f"{path}:{line}: further-reading-empty: warning: Further Reading says no news matched; " \
        "a release needs stories: run `pipeline refresh`, or give the guide keywords or tags its news would match\n"
    code, problems = run_check(project, "--release", str(path))
    assert code == 1
    assert ("further-reading-empty", line, "error") in [(p["rule"], p["line"], p["severity"]) for p in problems]


def test_a_note_inside_a_managed_region_is_the_pipelines_text_not_a_reviewers(project: Path, draft: Path) -> None:
    edit(draft, "<!-- pipeline:begin context -->\n", "<!-- pipeline:begin context -->\n{>>not a reviewer note<<}\n\n")
    assert run_check(project, str(draft)) == (0, [])


def test_a_new_guides_skeleton_is_refused_for_release_at_each_placeholder(project: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch(NOW))
    monkeypatch.delenv("PIPELINE_MODEL", raising=False)
    result = CliRunner().invoke(cli, ["--root", str(project), "new", "Renting a flat in Shanghai"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["--root", str(project), "build", "--offline", "renting-a-flat-in-shanghai"])
    assert result.exit_code == 0, result.output
    path = project / "output" / "renting-a-flat-in-shanghai.md"
    code, problems = run_check(project, "--release", str(path))
    assert code == 1
    flagged = {p["line"] for p in problems if p["rule"] == "placeholder"}
    assert flagged == {n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                       if "TODO(editor):" in line}
    assert len(flagged) >= 8  # description, intro, three sections, the FAQ, conclusion, checklist


# -- output -----------------------------------------------------------------------------------------


def test_text_output_is_one_line_per_problem_with_path_line_rule(project: Path, draft: Path) -> None:
    reword_disclaimer(draft)
    unknown_citation(draft)
    result = CliRunner().invoke(cli, ["--root", str(project), "check", "output/wechat-encryption.md"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"output/wechat-encryption.md:{line_of(draft, '[Reuters, 2026-03-05]')}: citation: ")
    assert lines[1].startswith(f"output/wechat-encryption.md:{line_of(draft, 'Ignore it')}: disclaimer: ")
    assert "checked 1 draft(s): 2 problem(s)" in result.stderr


def test_several_problems_in_one_draft_are_all_named(project: Path, draft: Path) -> None:
    broken = [bad_status, drop_faq_heading, reword_disclaimer, unknown_citation, javascript_link, jinja_left_over]
    for breaker in broken:
        breaker(draft)
    code, problems = run_check(project, str(draft))
    assert code == 1
    assert rules(problems) == {"front-matter", "sections", "disclaimer", "citation", "link", "template-syntax"}
    assert [p["line"] for p in problems] == sorted(p["line"] for p in problems)  # line order
    assert all(set(p) == {"path", "line", "rule", "severity", "message"} for p in problems)


def test_missing_file_is_a_one_line_error_and_the_rest_are_checked(project: Path, draft: Path) -> None:
    unknown_citation(draft)
    result = CliRunner().invoke(cli, ["--root", str(project), "check", "output/nope.md", str(draft)])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "Error: output/nope.md: no such file; check the path or run `pipeline build`"
    assert "Traceback" not in result.output
    assert re.search(r":\d+: citation: ", result.stdout)


def test_unreadable_file_is_a_one_line_error(project: Path, draft: Path) -> None:
    draft.write_bytes(b"---\ntitle: \xff\xfe\n---\n")
    result = CliRunner().invoke(cli, ["--root", str(project), "check", str(draft)])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "is not UTF-8 text" in errors[0] and "wechat-encryption.md" in errors[0]


def test_empty_output_folder_is_an_error_not_a_pass(project: Path) -> None:
    result = CliRunner().invoke(cli, ["--root", str(project), "check"])
    assert result.exit_code == 2
    assert "no drafts (*.md) to check" in result.stderr


def test_check_text_is_pure_and_sorted(project: Path, draft: Path) -> None:
    reference = load_reference(project / "templates")
    text = draft.read_text(encoding="utf-8").replace("[Reuters, 2026-03-04]", "[AP, 2026-03-04]")
    problems = check_text(Path("x.md"), text, reference, NOW)
    assert [(str(p), p.rule) for p in problems][0][1] == "citation"
    assert str(problems[0]).startswith("x.md:") and len(problems) == 1
    assert check_text(Path("x.md"), text, reference, NOW + dt.timedelta(days=40), release=True) != problems


RULES = {"front-matter", "sections", "disclaimer", "markers", "citation", "link", "further-reading-format",
         "further-reading-age", "further-reading-duplicate", "further-reading-front-matter", "template-syntax",
         "status", "ai-banner", "placeholder", "further-reading-empty", "empty-section", "keywords", "note"}
FRAGMENTS = ["---", "<!-- pipeline:begin context -->", "<!-- pipeline:end further-reading -->", "🔸 x", "```",
             "`", "[", "](", "{{", "# ", "## 📌 Disclaimer", "\n", ":", "further_reading: 3", "\\",
             "🗞️ Source: SCMP – 📅 2026-13-40", "<a href='x'>", "[AP, 2026-01-01]", "http://[::1"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 120), st.sampled_from(FRAGMENTS)),
                      min_size=1, max_size=6))
def test_any_edit_gives_problems_on_real_lines_never_a_crash(
    project: Path, draft: Path, edits: list[tuple[float, int, str]]
) -> None:
    reference = load_reference(project / "templates")
    text = draft.read_text(encoding="utf-8")
    for where, length, fragment in edits:
        at = int(where * len(text))
        text = text[:at] + fragment + text[at + length:] if length % 2 else text[:at] + text[at + length:]
    problems = check_text(draft, text, reference, NOW, release=True)
    last = max(len(text.splitlines()), 1)
    assert problems, "release=True on a status: draft draft always has a problem"
    assert all(1 <= p.line <= last and p.rule in RULES for p in problems), problems


# -- from served feeds ------------------------------------------------------------------------------

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Tech Desk</title><link>https://news.example.com/</link>
<item><title><![CDATA[WeChat privacy settings explained &#8211; a guide]]></title>
  <link>https://news.example.com/wechat-privacy?utm_source=rss</link>
  <guid>wechat-privacy</guid><pubDate>Thu, 05 Mar 2026 09:00:00 +0800</pubDate></item>
<item><title>Tencent encryption claims examined</title>
  <link>https://news.example.com/tencent-encryption</link>
  <guid>tencent-encryption</guid><pubDate>Tue, 03 Mar 2026 18:30:00 +0800</pubDate></item>
</channel></rss>
"""


def test_draft_built_from_served_feed_passes_and_a_broken_copy_fails(
    project: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch(NOW))
    monkeypatch.chdir(project)
    feed_server.routes["/tech.xml"] = Route(RSS.encode("utf-8"))
    write_feeds(project, {"url": feed_server.url("/tech.xml"), "publisher": "Tech Desk", "tags": ["privacy"]})
    result = CliRunner().invoke(cli, ["--root", str(project), "build"])
    assert result.exit_code == 0, result.output
    path = project / "output" / "wechat-encryption.md"
    assert "🔸 WeChat privacy settings explained – a guide" in path.read_text(encoding="utf-8")
    assert run_check(project) == (0, [])

    edit(path, "🔗 [Read Full Article](https://news.example.com/tencent", "[Read Full Article](https://news.example.com/tencent")
    code, problems = run_check(project)
    assert code == 1
    assert [(p["path"], p["line"], p["rule"]) for p in problems] == [
        ("output/wechat-encryption.md", line_of(path, "](https://news.example.com/tencent"), "further-reading-format")
    ]

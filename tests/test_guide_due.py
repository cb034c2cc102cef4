"""Guides due for review: each trigger on its own, then through `pipeline check` and `pipeline review`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.errors import GuideError
from pipeline.guide_due import (
    RULE_DUE,
    RULE_TIME_RELATIVE,
    due_problems,
    parse_interval,
    time_relative_problems,
    watch_pattern,
)
from pipeline.guides import load_guide
from pipeline.models import Item
from review_support import NOW, draft_path, run

TODAY = dt.date(2026, 3, 10)
GUIDE = """---
title: "Visas"
{extra}---

Intro.

## Entry

Read the rules.
"""


def _guide(tmp_path: Path, extra: str, body: str = "") -> Path:
    path = tmp_path / "visas.md"
    path.write_text(GUIDE.format(extra=extra) + body, encoding="utf-8")
    return path


def _story(headline: str, seen: dt.date) -> Item:
    return Item(feed_url="https://f.example/feed.xml", guid=headline, headline=headline, source="Wire",
                date=seen, url=f"https://f.example/{len(headline)}",
                first_seen=dt.datetime.combine(seen, dt.time(8), tzinfo=dt.timezone.utc))


@pytest.mark.parametrize(("text", "days"), [("180d", 180), ("26w", 182), ("6m", 180), ("1y", 365), (90, 90),
                                            ("0d", None), ("soon", None), (True, None), (-3, None)])
def test_interval(text: object, days: int | None) -> None:
    assert parse_interval(text) == days


def test_past_due_names_the_due_date_and_the_reviewed_line(tmp_path: Path) -> None:
    guide = load_guide(_guide(tmp_path, "review_every: 30d\nreviewed: 2026-01-01\n"))
    (problem,) = due_problems(guide, [], TODAY)
    assert problem.rule == RULE_DUE and problem.line == 4  # the `reviewed:` line
    assert "was due for review on 2026-01-31" in problem.message and "set reviewed: 2026-03-10" in problem.message


def test_not_yet_due_and_no_interval_say_nothing(tmp_path: Path) -> None:
    assert due_problems(load_guide(_guide(tmp_path, "review_every: 180d\nreviewed: 2026-01-01\n")), [], TODAY) == []
    assert due_problems(load_guide(_guide(tmp_path, "reviewed: 2020-01-01\n")), [], TODAY) == []


def test_an_interval_never_reviewed_is_due(tmp_path: Path) -> None:
    (problem,) = due_problems(load_guide(_guide(tmp_path, "review_every: 180d\n")), [], TODAY)
    assert problem.line == 3 and "never reviewed" in problem.message


def test_a_watched_story_after_review_names_the_story(tmp_path: Path) -> None:
    guide = load_guide(_guide(tmp_path, "reviewed: 2026-03-01\nwatch: [visa-free, new rules]\n"))
    before = _story("China extends visa-free entry to 10 more countries", dt.date(2026, 2, 20))
    after = _story("China extends visa free entry to US travellers", dt.date(2026, 3, 5))
    unrelated = _story("Alipay raises limits", dt.date(2026, 3, 6))
    partial = _story("New rulesets for apps", dt.date(2026, 3, 7))  # "new rules" as a whole phrase only
    (problem,) = due_problems(guide, [before, after, unrelated, partial], TODAY)
    assert problem.rule == RULE_DUE and problem.line == 4  # the `watch:` line
    assert "'China extends visa free entry to US travellers' (Wire, 2026-03-05, watch word 'visa-free')" \
        in problem.message
    assert "10 more countries" not in problem.message and "Alipay" not in problem.message
    assert "rulesets" not in problem.message


def test_watch_words_match_whole_words_in_any_case_and_spacing() -> None:
    pattern = watch_pattern("visa-free")
    assert pattern.search("VISA FREE travel") and pattern.search("visa-free") and pattern.search("visa\u00a0-free")
    assert not pattern.search("visa-freeze")


def test_time_relative_phrases_are_listed_with_their_lines(tmp_path: Path) -> None:
    path = _guide(tmp_path, "", "\nCurrently the fee is low.\nIt rose this\nyear.\n\n`recently` in code is fine.\n")
    problems = time_relative_problems(path, path.read_text(encoding="utf-8"))
    assert [(p.rule, p.line) for p in problems] == [(RULE_TIME_RELATIVE, 11), (RULE_TIME_RELATIVE, 12)]
    assert "'Currently'" in problems[0].message
    assert "'this year'" in problems[1].message  # broken over two lines: reported where it starts
    path.write_text(GUIDE.format(extra="") + "\nAs of this writing, recently changed.\n", encoding="utf-8")
    lines = [p.line for p in time_relative_problems(path, path.read_text(encoding="utf-8"))]
    assert lines == [11]


@pytest.mark.parametrize(("extra", "line", "says"), [
    ("review_every: soon\n", 3, "not an interval"),
    ("reviewed: last week\n", 3, "reviewed must be a date"),
    ("watch: visa\n", 3, "watch must be a list"),
])
def test_bad_review_keys_name_their_line(tmp_path: Path, extra: str, line: int, says: str) -> None:
    with pytest.raises(GuideError) as caught:
        load_guide(_guide(tmp_path, extra))
    assert caught.value.line == line and says in caught.value.message


def test_check_warns_then_release_fails_naming_the_story(built: Path) -> None:
    guide = built / "templates" / "guides" / "mobile-payments.md"
    reviewed = (NOW.date() - dt.timedelta(days=10)).isoformat()
    text = guide.read_text(encoding="utf-8").replace("---\n\n", f"reviewed: {reviewed}\nwatch: [foreign-card]\n---\n\n", 1)
    guide.write_text(text, encoding="utf-8")  # the built fixture's stories arrived "now", after the review
    path = draft_path(built)
    assert run(built, "status", str(path), "approved").exit_code == 0
    warned = run(built, "check", str(path))
    assert warned.exit_code == 0, warned.stdout
    assert "due-for-review: warning: guide 'mobile-payments': since it was reviewed on" in warned.stdout
    assert "WeChat Pay waives fees on small foreign-card payments" in warned.stdout
    released = run(built, "check", "--release", str(path))
    assert released.exit_code == 1 and "due-for-review" in released.stdout
    guide.write_text(text.replace(f"reviewed: {reviewed}", f"reviewed: {NOW.date().isoformat()}"), encoding="utf-8")
    assert run(built, "check", "--release", str(path)).exit_code == 0


def test_review_page_flags_a_guide_due_for_review(built: Path) -> None:
    guide = built / "templates" / "guides" / "mobile-payments.md"
    guide.write_text(guide.read_text(encoding="utf-8").replace("---\n\n", "review_every: 30d\nreviewed: 2024-01-01\n---\n\n", 1),
                     encoding="utf-8")
    assert run(built, "review").exit_code == 0
    index = (built / "output" / "_review" / "index.html").read_text(encoding="utf-8")
    page = (built / "output" / "_review" / "mobile-payments.html").read_text(encoding="utf-8")
    assert "guide due for review" in index and "was due for review on 2024-01-31" in page

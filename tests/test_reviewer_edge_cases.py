"""Realistic reviewer behaviour that once broke the promise: no lost word, no silent change to an approved draft.

Each test is one way a reviewer really works (a capitalised status, a copied region, a wiped store,
YAML comments, a Windows editor) on a project built from feeds on the 127.0.0.1 test server.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from conftest import FeedServer
from pipeline.drafts import read_draft
from pipeline.state import load_state
from review_support import NEW_STORY, draft_path, gain_story, run

GUIDE = Path("templates/guides/mobile-payments.md")
GUIDE_LINE = "There are two main apps. Alipay is a standalone app run by Ant Group"
GUIDE_TITLE = 'title: "Paying in China with'
REVIEWER_LINE = "If something goes wrong, contact the merchant first"
HEADLINE = "Alipay raises single-payment limit for foreign cards"
REGION = re.compile(r"<!-- pipeline:begin further-reading -->\n.*?<!-- pipeline:end further-reading -->\n", re.S)


def edit(path: Path, old: str, new: str, newline: str = "\n") -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8", newline=newline)


def change_guide(root: Path) -> None:
    """The editors reword one paragraph of the payments guide."""
    edit(root / GUIDE, GUIDE_LINE, "There are two main apps, both huge. Alipay is a standalone app run by Ant Group")


def test_capitalised_approved_status_keeps_the_body_on_build(built: Path) -> None:
    path = draft_path(built)
    edit(path, "status: draft\n", "status: Approved\n")
    change_guide(built)
    before = path.read_bytes()

    result = run(built, "build", "--offline")

    assert result.exit_code == 0, result.stderr
    # 'Approved' is approved: not merged silently; only publishing follows the status set by hand.
    assert path.read_bytes() == before.replace(b"\ndraft: true\npublished: false\n", b"\ndraft: false\npublished: true\n")
    assert f"{path}: approved; body left alone" in result.stderr


def test_misspelt_status_is_protected_and_named(built: Path, feed_server: FeedServer) -> None:
    path = draft_path(built)
    edit(path, "status: draft\n", "status: aproved\n")
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh")

    assert result.exit_code == 0, result.stderr
    assert f"{path}: unknown status 'aproved'; treated as approved" in result.stderr
    draft = read_draft(path)
    # Approved as far as the pipeline goes: the list follows the news, the reviewer's value stays.
    assert draft is not None and draft.front_matter["status"] == "aproved"
    assert NEW_STORY.headline in draft.regions["further-reading"]


def test_a_copied_region_is_never_filled_from_its_copy(built: Path, feed_server: FeedServer) -> None:
    """A reviewer copies Further Reading to the top and rewords a headline in the copy."""
    path = draft_path(built)
    text = path.read_text(encoding="utf-8")
    region = REGION.search(text)
    assert region is not None
    copy = region.group(0).replace(HEADLINE, "Alipay lifts its limit for foreign cards (Dana's wording)")
    heading = "## How mobile payments work in China\n"
    text = text.replace(heading, f"Top stories:\n\n{copy}\n{heading}", 1)
    path.write_text(text, encoding="utf-8")
    second_line = text[: text.rindex("<!-- pipeline:begin further-reading -->")].count("\n") + 1
    gain_story(feed_server, NEW_STORY)

    for args in (("refresh",), ("build",)):
        result = run(built, *args)
        assert result.exit_code == 1, args
        assert path.read_text(encoding="utf-8") == text  # Dana's wording is still there, nothing moved
        assert f"{path}:{second_line}: region 'further-reading' appears twice; draft left untouched" in result.stderr


def test_a_deleted_store_changes_nothing_the_state_beside_the_draft_knows(built: Path) -> None:
    path = draft_path(built)
    edit(path, "title: 'Paying in China with", "title: 'Dana: Paying in China with")
    change_guide(built)  # the guide moves on too, so the build has something to merge
    for name in ("pipeline.sqlite3", "pipeline.sqlite3-wal", "pipeline.sqlite3-shm"):
        (built / name).unlink(missing_ok=True)

    result = run(built, "build", "--offline")

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    draft = read_draft(path)
    assert draft is not None and str(draft.front_matter["title"]).startswith("Dana: Paying in China")
    assert "There are two main apps, both huge." in draft.body  # the guide change merged in


def test_with_neither_store_nor_state_every_word_is_kept_and_said_once(built: Path, feed_server: FeedServer) -> None:
    path = draft_path(built)
    edit(path, "title: 'Paying in China with", "title: 'Dana: Paying in China with")
    change_guide(built)
    gain_story(feed_server, NEW_STORY)
    for name in ("pipeline.sqlite3", "pipeline.sqlite3-wal", "pipeline.sqlite3-shm"):
        (built / name).unlink(missing_ok=True)
    shutil.rmtree(built / "output" / ".pipeline")
    before = path.read_bytes()

    for args in (("refresh",), ("build",)):
        result = run(built, *args)
        assert result.exit_code == 0, result.stderr
        assert path.read_bytes() == before
        notes = [line for line in result.stderr.splitlines() if str(path) in line]
        assert notes == [f"warning: {path}: no record of what the pipeline last wrote here (a draft made by hand, "
                         "or by an older pipeline without its store); every word kept, nothing updated (use "
                         "`build --force` to regenerate it, or `refresh --force` to replace its regions)"]



def test_an_approved_draft_changed_only_in_front_matter_stays_approved_and_the_change_is_recorded(
    built: Path
) -> None:
    """The reviewer deleted `further_reading` from the front matter; refresh puts it back, and records it."""
    path = draft_path(built)
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"further_reading:\n(?:  .*\n)+", "", text).replace("status: draft\n", "status: approved\n")
    path.write_text(text, encoding="utf-8")

    result = run(built, "refresh")

    assert result.exit_code == 0, result.stderr
    draft = read_draft(path)
    assert draft is not None and "further_reading" in draft.front_matter
    assert draft.front_matter["status"] == "approved"
    state = load_state(built / "output", "mobile-payments")
    assert state is not None and state.approved is not None and state.approved.text == text
    assert [(c.region, c.summary) for c in state.changes_since_approval] == [
        ("front-matter", "generated keys written again to match the regions")]


def test_reviewer_comments_in_generated_keys_survive_a_guide_change(built: Path) -> None:
    path = draft_path(built)
    edit(path, "  - money\n", "  - money  # keep: our readers search for it (Dana)\n")
    text = path.read_text(encoding="utf-8")
    title_line = next(line for line in text.splitlines() if line.startswith("title:"))
    edit(path, title_line + "\n", title_line + "  # legal signed off on 'Paying' (Lee)\n")
    edit(built / GUIDE, GUIDE_TITLE, 'title: "Paying Anywhere in China with')
    edit(built / GUIDE, "tags: [payments, money, china]", "tags: [payments, money, china, apps]")

    result = run(built, "build", "--offline")

    assert result.exit_code == 0, result.stderr
    text = path.read_text(encoding="utf-8")
    assert "# keep: our readers search for it (Dana)" in text
    assert "# legal signed off on 'Paying' (Lee)" in text
    draft = read_draft(path)
    assert draft is not None
    assert str(draft.front_matter["title"]).startswith("Paying Anywhere in China")  # the guide's change landed
    assert draft.front_matter["tags"] == ["payments", "money", "china", "apps"]
    assert yaml.safe_load(draft.front_matter_text)["tags"] == draft.front_matter["tags"]


def test_a_crlf_draft_stays_crlf_through_refresh_and_status(built: Path, feed_server: FeedServer) -> None:
    """A reviewer on Windows saves the draft with CRLF line endings and rewords one line."""
    path = draft_path(built)
    edit(path, REVIEWER_LINE, REVIEWER_LINE + " (Dana checked this)", newline="\r\n")
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh")
    assert result.exit_code == 0, result.stderr
    status = run(built, "status", str(path), "in-review")
    assert status.exit_code == 0, status.stderr

    raw = path.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")  # no line changed its ending
    text = raw.decode("utf-8")
    assert NEW_STORY.link() in text and "(Dana checked this)" in text and "status: in-review\r\n" in text


def test_a_front_matter_key_a_reviewer_deleted_stays_deleted(built: Path) -> None:
    path = draft_path(built)
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"keywords:\n(?:  .*\n)+", "", text, count=1), encoding="utf-8")
    edit(built / GUIDE, "keywords: [alipay,", "keywords: [alipay pay,")  # the guide's keywords move on too
    change_guide(built)

    result = run(built, "build", "--offline")

    assert result.exit_code == 0, result.stderr
    draft = read_draft(path)
    assert draft is not None and "keywords" not in draft.front_matter
    assert "There are two main apps, both huge." in draft.body  # the rest of the build still landed
    again = run(built, "build", "--offline")
    assert again.exit_code == 0, again.stderr
    assert "keywords" not in read_draft(path).front_matter  # type: ignore[union-attr]

"""Hand edits are kept: managed regions edited by hand, three-way merges, conflicts, review status."""

from __future__ import annotations

from pathlib import Path


from conftest import FeedServer
from pipeline.drafts import read_draft
from review_support import (
    NEW_STORY,
    assert_whole,
    draft_path,
    gain_story,
    run,
    snapshot,
)

GUIDE = Path("templates/guides/mobile-payments.md")
# Two paragraphs of the payments guide, far apart: the guide changes one, a reviewer the other.
GUIDE_LINE = "There are two main apps. Alipay is a standalone app run by Ant Group"
REVIEWER_LINE = "If something goes wrong, contact the merchant first"
HEADLINE = "Alipay raises single-payment limit for foreign cards"
FIXED_HEADLINE = "Alipay raises the single-payment limit for foreign cards (fixed by Dana)"



def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def change_guide(root: Path, old: str, new: str) -> None:
    edit(root / GUIDE, old, new)


# -- a hand edit inside a managed region -------------------------------------------------------


def test_a_headline_fixed_inside_further_reading_survives_refresh_and_build(
    built: Path, feed_server: FeedServer
) -> None:
    path = draft_path(built)
    edit(path, f"🔸 {HEADLINE}", f"🔸 {FIXED_HEADLINE}")
    gain_story(feed_server, NEW_STORY)

    refreshed = run(built, "refresh")
    assert (refreshed.exit_code, refreshed.stdout, refreshed.stderr) == (0, "", "")
    # The news arrives around the fix; the context paragraph and front matter cite the list as it is.
    draft = read_draft(path)
    assert draft is not None
    assert f"🔸 {FIXED_HEADLINE}" in draft.regions["further-reading"]
    assert f"🔸 {NEW_STORY.headline}" in draft.regions["further-reading"]
    assert FIXED_HEADLINE in draft.regions["context"] and HEADLINE not in draft.regions["context"]
    assert FIXED_HEADLINE in [e["headline"] for e in draft.front_matter["further_reading"]]

    rebuilt = run(built, "build", "--offline")
    assert (rebuilt.exit_code, rebuilt.stderr) == (0, "")
    assert f"🔸 {FIXED_HEADLINE}" in path.read_text(encoding="utf-8")


STRAY = "Dana: check these before release."


def test_a_line_that_is_not_an_entry_keeps_the_list_and_its_context(built: Path, feed_server: FeedServer) -> None:
    path = draft_path(built)
    edit(path, "<!-- pipeline:end further-reading -->", f"\n{STRAY}\n<!-- pipeline:end further-reading -->")
    edited = path.read_text(encoding="utf-8")
    line = edited.split("\n").index(STRAY) + 1
    gain_story(feed_server, NEW_STORY)

    refreshed = run(built, "refresh")
    assert refreshed.exit_code == 0
    # The list is the reviewer's, and so is the context paragraph that cites it.
    assert path.read_text(encoding="utf-8") == edited
    assert f"{path}:{line}: region 'further-reading' was edited by hand and this line is not a list entry" \
        in refreshed.stderr
    # The context kept with it is part of that condition: said to a person running build, not by cron.
    assert "region 'context'" not in refreshed.stderr
    assert refreshed.stdout == ""

    rebuilt = run(built, "build", "--offline")
    assert rebuilt.exit_code == 0
    assert STRAY in path.read_text(encoding="utf-8")
    assert f"{path}:{line}: region 'further-reading' was edited by hand" in rebuilt.stderr
    assert f"{path}: region 'context' cites region 'further-reading', which was left alone" in rebuilt.stderr
    # The front matter list follows the region, so it is not updated behind the reviewer's back either.
    draft = read_draft(path)
    assert draft is not None
    assert NEW_STORY.headline not in [e["headline"] for e in draft.front_matter["further_reading"]]


def test_force_replaces_a_list_it_cannot_read_but_keeps_the_choices(built: Path, feed_server: FeedServer) -> None:
    path = draft_path(built)
    edit(path, f"🔸 {HEADLINE}", f"🔸 {FIXED_HEADLINE}")
    assert run(built, "refresh").stderr == ""  # the fix is remembered in front matter
    edit(path, "<!-- pipeline:end further-reading -->", f"\n{STRAY}\n<!-- pipeline:end further-reading -->")
    gain_story(feed_server, NEW_STORY)
    assert "was edited by hand" in run(built, "refresh").stderr

    forced = run(built, "refresh", "--force")

    assert forced.exit_code == 0, forced.stderr
    draft = read_draft(path)
    assert draft is not None
    assert STRAY not in draft.text
    assert f"🔸 {NEW_STORY.headline}" in draft.regions["further-reading"]
    assert f"🔸 {FIXED_HEADLINE}" in draft.regions["further-reading"]
    assert draft.front_matter["further_reading"][0]["headline"] == NEW_STORY.headline
    # Once replaced, the region is the pipeline's again: later refreshes say nothing.
    assert run(built, "refresh").stderr == ""


def test_undoing_a_hand_edit_hands_the_region_back(built: Path, feed_server: FeedServer) -> None:
    path = draft_path(built)
    original = path.read_text(encoding="utf-8")
    edit(path, "<!-- pipeline:end further-reading -->", f"\n{STRAY}\n<!-- pipeline:end further-reading -->")
    assert "edited by hand" in run(built, "refresh").stderr
    path.write_text(original, encoding="utf-8")  # the reviewer changes their mind
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh")

    assert result.exit_code == 0
    assert result.stderr == ""
    assert NEW_STORY.headline in path.read_text(encoding="utf-8")
    assert "further_reading_choices" not in path.read_text(encoding="utf-8")


def test_hand_edit_in_context_keeps_context_but_further_reading_moves_on(
    built: Path, feed_server: FeedServer
) -> None:
    path = draft_path(built)
    edit(path, "<!-- pipeline:begin context -->\n",
         "<!-- pipeline:begin context -->\nOur own reporter checked this in Shanghai.\n")
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh")

    assert result.exit_code == 0
    assert f"{path}: region 'context' was edited by hand" in result.stderr
    draft = read_draft(path)
    assert draft is not None
    assert "Our own reporter checked this in Shanghai." in draft.regions["context"]
    assert NEW_STORY.headline not in draft.regions["context"]
    assert NEW_STORY.headline in draft.regions["further-reading"]


def test_a_region_without_its_markers_is_reported_and_the_rest_refreshed(
    built: Path, feed_server: FeedServer
) -> None:
    path = draft_path(built)
    edit(path, "<!-- pipeline:begin context -->\n", "")
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh")

    assert result.exit_code == 0
    assert f"{path}: region 'context' markers are missing" in result.stderr
    assert NEW_STORY.headline in read_draft(path).regions["further-reading"]  # type: ignore[union-attr]


# -- three-way merge of build -------------------------------------------------------------------


def test_reviewer_edit_outside_regions_survives_a_guide_change(built: Path) -> None:
    path = draft_path(built)
    edit(path, REVIEWER_LINE, "Reviewer note: screenshot the receipt. " + REVIEWER_LINE)
    change_guide(built, GUIDE_LINE, "There are two main apps (updated by the editor). Alipay is a standalone app run by Ant Group")

    result = run(built, "build", "--offline")

    assert result.exit_code == 0, result.stderr
    text = path.read_text(encoding="utf-8")
    assert "Reviewer note: screenshot the receipt. " + REVIEWER_LINE in text
    assert "There are two main apps (updated by the editor)." in text
    assert_whole(path)


def test_build_without_changes_leaves_a_reviewed_draft_untouched(built: Path) -> None:
    path = draft_path(built)
    edit(path, REVIEWER_LINE, "Reviewer note. " + REVIEWER_LINE)
    before = snapshot(path)
    result = run(built, "build", "--offline")
    assert result.exit_code == 0, result.stderr
    assert snapshot(path) == before


def test_reviewer_front_matter_change_wins_over_a_guide_change(built: Path) -> None:
    path = draft_path(built)
    edit(path, 'description: How to set up', 'description: Reviewer wording. How to set up')
    change_guide(built, "keywords: [alipay,", "keywords: [alipay, qr codes,")

    result = run(built, "build", "--offline")

    assert result.exit_code == 0, result.stderr
    draft = read_draft(path)
    assert draft is not None
    assert str(draft.front_matter["description"]).startswith("Reviewer wording.")
    assert "qr codes" in draft.front_matter["keywords"]  # type: ignore[operator]


def test_conflicting_edit_leaves_the_draft_byte_identical_and_exits_1(built: Path) -> None:
    path = draft_path(built)
    edit(path, REVIEWER_LINE, "Reviewer: call the bank first. " + REVIEWER_LINE)
    change_guide(built, REVIEWER_LINE, "Editor: keep the receipt. " + REVIEWER_LINE)
    before = snapshot(path)

    result = run(built, "build", "--offline")

    assert result.exit_code == 1
    assert snapshot(path) == before
    assert f"error: {path}: reviewer edits conflict with the changed guide or templates" in result.stderr
    assert "Traceback" not in result.stderr

    forced = run(built, "build", "--offline", "--force")
    assert forced.exit_code == 0, forced.stderr
    text = path.read_text(encoding="utf-8")
    assert "Editor: keep the receipt. " in text
    assert "Reviewer: call the bank first." not in text
    assert f"{path}: regenerated with --force" in forced.stderr
    # After --force the new generation is the merge base: the next build is clean and quiet.
    again = run(built, "build", "--offline")
    assert again.exit_code == 0 and again.stderr == ""


def test_conflict_is_remembered_until_resolved_by_hand(built: Path) -> None:
    path = draft_path(built)
    edit(path, REVIEWER_LINE, "Reviewer: call the bank first. " + REVIEWER_LINE)
    change_guide(built, REVIEWER_LINE, "Editor: keep the receipt. " + REVIEWER_LINE)
    assert run(built, "build", "--offline").exit_code == 1
    assert run(built, "build", "--offline").exit_code == 1  # the base did not move
    # The reviewer resolves it by taking the editor's sentence too.
    edit(path, "Reviewer: call the bank first. ", "Reviewer: call the bank first. Editor: keep the receipt. ")
    change_guide(built, "Editor: keep the receipt. ", "Reviewer: call the bank first. Editor: keep the receipt. ")
    result = run(built, "build", "--offline")
    assert result.exit_code == 0, result.stderr


# -- review status -------------------------------------------------------------------------------


def test_status_moves_through_the_command_and_by_hand(built: Path) -> None:
    path = draft_path(built)
    result = run(built, "status", str(path), "in-review")
    assert result.exit_code == 0
    assert read_draft(path).front_matter["status"] == "in-review"  # type: ignore[union-attr]
    before = path.read_text(encoding="utf-8")

    same = run(built, "status", str(path), "in-review")
    assert same.exit_code == 0 and "(unchanged)" in same.stdout
    assert path.read_text(encoding="utf-8") == before

    relative = run(built, "status", "output/mobile-payments.md", "approved")  # relative to --root
    assert relative.exit_code == 0, relative.stderr
    after = path.read_text(encoding="utf-8")
    assert after == before.replace("\nstatus: in-review\n", "\nstatus: approved\n").replace(
        "\ndraft: true\npublished: false\n", "\ndraft: false\npublished: true\n")  # publishing follows status

    edit(path, "\nstatus: approved\n", "\nstatus: draft\n")  # by hand
    assert read_draft(path).front_matter["status"] == "draft"  # type: ignore[union-attr]


def test_status_rejects_unknown_statuses_and_missing_drafts(built: Path) -> None:
    bad = run(built, "status", str(draft_path(built)), "published")
    assert bad.exit_code == 2
    missing = run(built, "status", str(built / "output" / "nope.md"), "approved")
    assert missing.exit_code == 1
    assert f"{built / 'output' / 'nope.md'}: no such draft" in missing.stderr


def test_approved_body_is_left_alone_by_build(built: Path) -> None:
    path = draft_path(built)
    assert run(built, "status", str(path), "approved").exit_code == 0
    change_guide(built, GUIDE_LINE, "There are two main apps (updated by the editor). Alipay is a standalone app run by Ant Group")
    before = snapshot(path)

    result = run(built, "build", "--offline")

    assert result.exit_code == 0
    assert snapshot(path) == before
    assert f"{path}: approved; body left alone (use --force to regenerate)" in result.stderr

    forced = run(built, "build", "--offline", "--force")
    assert forced.exit_code == 0
    draft = read_draft(path)
    assert draft is not None
    assert "updated by the editor" in draft.body
    assert draft.front_matter["status"] == "in-review"
    assert "back to in-review" in forced.stderr


def test_refresh_keeps_an_approved_draft_approved_through_a_further_reading_change(
    built: Path, feed_server: FeedServer
) -> None:
    payments, privacy = draft_path(built), draft_path(built, "wechat-encryption")
    for path in (payments, privacy):
        assert run(built, "status", str(path), "approved").exit_code == 0
    privacy_before = snapshot(privacy)
    gain_story(feed_server, NEW_STORY)  # changes the payments list only

    result = run(built, "refresh")

    assert (result.exit_code, result.stderr) == (0, "")
    assert read_draft(payments).front_matter["status"] == "approved"  # type: ignore[union-attr]
    assert NEW_STORY.headline in payments.read_text(encoding="utf-8")
    assert snapshot(privacy) == privacy_before  # unchanged news: untouched


def test_a_draft_saved_by_a_reviewer_during_a_run_is_not_overwritten(built: Path) -> None:
    from pipeline.build import write_draft

    path = draft_path(built)
    read_by_the_run = read_draft(path)
    assert read_by_the_run is not None
    edit(path, REVIEWER_LINE, "Saved meanwhile. " + REVIEWER_LINE)  # the reviewer saves mid-run
    saved = path.read_text(encoding="utf-8")

    written = write_draft(path, read_by_the_run, read_by_the_run.text + "\nthe run's text\n")

    assert written is False
    assert path.read_text(encoding="utf-8") == saved
    assert write_draft(path, read_draft(path), saved + "\nnew\n") is True
    assert path.read_text(encoding="utf-8") == saved + "\nnew\n"

"""The review policies one at a time, on plain values: regions, body merge, front matter, status, write."""

from __future__ import annotations

from pathlib import Path

from pipeline.build import write_draft
from pipeline.drafts import DraftFile, blank_regions, compose_draft_text, read_draft, split_draft
from pipeline.policy import (
    RegionOutcome,
    decide_regions,
    hold_for_approval,
    judge_status,
    merge3_lines,
    merge_body,
    merge_front_matter,
    review_status,
    voucher,
    whole_region,
)
from pipeline.state import Approval, Change, DraftState

PATH = Path("output/x.md")
NEW = {"context": "new context", "further-reading": "new list"}
LAST = {"context": "old context", "further-reading": "old list"}


def body(context: str, further: str, intro: str = "Intro.") -> str:
    return (f"# T\n\n{intro}\n\n<!-- pipeline:begin context -->\n{context}\n<!-- pipeline:end context -->\n\n"
            f"## Further Reading\n\n<!-- pipeline:begin further-reading -->\n{further}\n"
            "<!-- pipeline:end further-reading -->\n")


def draft(front: dict[str, object], text_body: str) -> DraftFile:
    return split_draft(PATH, compose_draft_text(front, text_body))


# -- regions -------------------------------------------------------------------------------------


def test_a_region_still_holding_our_text_is_replaced_and_remembered() -> None:
    outcome = whole_region("old", "old", "new")
    assert outcome == RegionOutcome("new", kept=False, remember="new")


def test_a_hand_edited_region_is_kept_and_its_record_not_moved() -> None:
    outcome = whole_region("old", "mine", "new")
    assert (outcome.text, outcome.kept, outcome.remember) == ("mine", True, None)
    assert outcome.note is not None and "edited by hand" in outcome.note


def test_without_a_record_a_region_is_kept_unless_it_already_says_the_new_text() -> None:
    kept = whole_region(None, "mine", "new")
    assert kept.kept and kept.note is not None and "no record" in kept.note
    assert whole_region(None, "new", "new") == RegionOutcome("new", kept=False, remember="new")


def test_the_context_follows_a_kept_further_reading_list() -> None:
    plan = decide_regions(PATH, NEW, {"context": "old context", "further-reading": "my list"}, LAST)
    assert plan.kept == {"further-reading", "context"}
    assert plan.write == {}
    assert plan.kept_keys == {"further_reading", "ai"}
    assert [n.split(": ", 1)[1][:40] for n in plan.notes] == [
        "region 'further-reading' was edited by h", "region 'context' cites region 'further-r"]


def test_a_hand_edited_context_leaves_the_list_free_to_move() -> None:
    plan = decide_regions(PATH, NEW, {"context": "my words", "further-reading": "old list"}, LAST)
    assert plan.write == {"further-reading": "new list"}
    assert plan.kept == {"context"}
    assert plan.remember == {"further-reading": "new list"}


def test_missing_markers_keep_a_region_and_force_replaces_hand_edits() -> None:
    plan = decide_regions(PATH, NEW, {"further-reading": "my list"}, LAST, force=True)
    assert plan.write == {"further-reading": "new list"}
    assert plan.kept == {"context"}
    assert "markers are missing" in plan.notes[0]


def test_a_region_can_have_its_own_strategy() -> None:
    def merge_entries(last: str | None, on_disk: str, new: str) -> RegionOutcome:
        return RegionOutcome(f"{on_disk}+{new}", kept=False, remember=new, note=" merged entry by entry")

    plan = decide_regions(PATH, NEW, {"context": "old context", "further-reading": "my list"}, LAST,
                          strategies={"further-reading": merge_entries})
    assert plan.write == {"further-reading": "my list+new list", "context": "new context"}
    assert plan.notes == (f"{PATH}: region 'further-reading' merged entry by entry",)


# -- body merge ----------------------------------------------------------------------------------


def test_three_way_merge_keeps_both_sides_or_reports_a_conflict() -> None:
    base = "a\nb\nc\nd\ne\n"
    assert merge3_lines(base, "a\nB\nc\nd\ne\n", "a\nb\nc\nd\nE\n") == "a\nB\nc\nd\nE\n"
    assert merge3_lines(base, "a\nB\nc\nd\ne\n", "a\nX\nc\nd\ne\n") is None


def test_body_merge_brings_a_guide_change_next_to_a_reviewer_edit() -> None:
    base = blank_regions(body("c", "l", "Intro.\n\nMiddle.\n\nEnd."))
    reviewer = body("c", "l", "Intro, reviewed.\n\nMiddle.\n\nEnd.")
    new = blank_regions(body("x", "y", "Intro.\n\nMiddle.\n\nEnd, from the guide."))
    plan = decide_regions(PATH, {"context": "c2", "further-reading": "l2"}, {"context": "c", "further-reading": "l"},
                          {"context": "c", "further-reading": "l"})
    merged = merge_body(PATH, reviewer, base, new, plan)
    assert merged.body == body("c2", "l2", "Intro, reviewed.\n\nMiddle.\n\nEnd, from the guide.")


def test_refresh_and_a_missing_base_only_fill_regions() -> None:
    reviewer = body("c", "l", "Reviewer intro.")
    plan = decide_regions(PATH, {"context": "c", "further-reading": "l2"}, {"context": "c", "further-reading": "l"},
                          {"context": "c", "further-reading": "l"})
    refreshed = merge_body(PATH, reviewer, "anything", "anything else", plan, regions_only=True)
    assert refreshed == merge_body(PATH, reviewer, "x", "x", plan, regions_only=True)
    assert refreshed.body == body("c", "l2", "Reviewer intro.") and refreshed.notes == ()
    unknown = merge_body(PATH, reviewer, None, "new skeleton", plan)
    assert unknown.body == refreshed.body
    assert "no record of the last generation" in unknown.notes[0]


def test_a_conflicting_body_is_none_with_one_note() -> None:
    plan = decide_regions(PATH, {"context": "c"}, {"context": "c"}, {"context": "c"})
    merged = merge_body(PATH, body("c", "l", "Reviewer."), blank_regions(body("c", "l", "Base.")),
                        blank_regions(body("c", "l", "Guide.")), plan)
    assert merged.body is None and "conflict" in merged.notes[0]


# -- front matter --------------------------------------------------------------------------------


def test_generated_keys_follow_the_guide_unless_a_reviewer_changed_them() -> None:
    last = {"title": "T", "description": "old", "keywords": ["a"]}
    existing = draft({"title": "T", "description": "Reviewer's", "keywords": ["a"], "status": "draft"}, "b\n")
    new = {"title": "T2", "description": "new", "keywords": ["a", "b"]}
    merged = merge_front_matter(PATH, existing, new, last)
    front = split_draft(PATH, f"---\n{merged.text}---\n\nb\n").front_matter
    assert front == {"title": "T2", "description": "Reviewer's", "keywords": ["a", "b"], "status": "draft"}
    assert merged.remember == new
    assert merged.notes == ()


def test_a_deleted_key_stays_deleted_but_further_reading_comes_back() -> None:
    last = {"description": "d", "further_reading": [1]}
    existing = draft({"title": "T"}, "b\n")
    merged = merge_front_matter(PATH, existing, {"description": "d2", "further_reading": [2]}, last)
    assert "description" not in merged.text
    assert "further_reading:\n  - 2\n" in merged.text


def test_without_a_record_a_differing_key_is_kept_and_named() -> None:
    existing = draft({"description": "someone's"}, "b\n")
    merged = merge_front_matter(PATH, existing, {"description": "ours"}, None)
    assert merged.text == existing.front_matter_text
    assert merged.notes == (f"{PATH}: front matter 'description': no record of what the pipeline last wrote "
                            "there (new store?); left alone (use --force to replace it)",)


def test_refresh_touches_only_keys_written_from_regions_and_not_those_of_kept_regions() -> None:
    existing = draft({"description": "d", "further_reading": [1], "ai": {"a": 1}}, "b\n")
    last = {"description": "d", "further_reading": [1], "ai": {"a": 1}}
    new = {"description": "d2", "further_reading": [2], "ai": {"a": 2}}
    merged = merge_front_matter(PATH, existing, new, last, frozenset({"ai"}), regions_only=True)
    assert "description: d\n" in merged.text and "- 2" in merged.text and "a: 1" in merged.text
    assert merged.remember == {"description": "d", "further_reading": [2], "ai": {"a": 1}}


# -- status ----------------------------------------------------------------------------------------


def test_status_is_read_leniently_and_unknown_values_protect_the_draft() -> None:
    assert review_status({}) == ("draft", None)
    assert review_status({"status": " Approved "}) == ("approved", None)
    status, note = review_status({"status": "final"})
    assert status == "approved" and note is not None and "'final'" in note


def test_an_approved_draft_stays_approved_through_feed_changes_and_records_each() -> None:
    last = DraftState(regions=LAST, approved=Approval("t0", "approved text"))
    changed = {"further-reading": ("🔸 A\n\n🔸 B", "🔸 C\n\n🔸 A")}
    judged = judge_status(PATH, "approved", "status: approved\n", last, "now text", changed,
                          {"further-reading": "feed"}, "t1")
    assert judged.front_matter_text == "status: approved\n" and judged.notes == ()
    assert judged.approved == Approval("t0", "approved text")  # the text as approved, not as now
    assert judged.changes == (Change("t1", "further-reading", "1 story added, 1 story dropped"),)


def test_a_change_to_our_prose_sends_an_approved_draft_back_with_one_note() -> None:
    last = DraftState(regions=LAST, approved=Approval("t0", "x"), changes_since_approval=(Change("t0", "r", "s"),))
    changed = {"further-reading": ("a", "b"), "context": ("c", "d")}
    judged = judge_status(PATH, "approved", "status: approved\n", last, "x", changed,
                          {"further-reading": "feed", "context": "ours"}, "t1")
    assert judged.front_matter_text == "status: in-review\n"
    assert judged.approved is None and judged.changes == ()
    assert judged.notes == (f"{PATH}: was approved; its AI-drafted context changed, so it is back to in-review",)


def test_an_approval_first_seen_is_recorded_as_the_text_before_the_run_and_cleared_when_left() -> None:
    judged = judge_status(PATH, "approved", "fm", DraftState(regions=LAST), "text before", {}, {}, "t1")
    assert judged.approved == Approval("t1", "text before") and judged.changes == ()
    left = judge_status(PATH, "in-review", "fm", DraftState(approved=Approval("t0", "x")), "y", {}, {}, "t1")
    assert left.approved is None


def test_who_vouches_for_each_region() -> None:
    by_model = {"ai": {"context": {"status": "drafted"}}}
    assert voucher("further-reading", by_model) == "feed"
    assert voucher("context", {}) == "feed"  # the template restating the list
    assert voucher("context", {"ai": {"context": {"status": "fallback"}}}) == "feed"
    assert voucher("context", by_model) == "ours"
    assert voucher("some-guide-region", {}) == "ours"


def test_in_an_approved_draft_the_context_moves_only_with_the_list() -> None:
    on_disk = {"context": "c", "further-reading": "l"}
    plan = decide_regions(PATH, {"context": "c2", "further-reading": "l"}, on_disk, on_disk)
    held = hold_for_approval(plan, on_disk)
    assert held.write == {"further-reading": "l"} and "context" in held.kept and "context" not in held.remember
    moving = decide_regions(PATH, {"context": "c2", "further-reading": "l2"}, on_disk, on_disk)
    assert hold_for_approval(moving, on_disk) == moving


# -- write ---------------------------------------------------------------------------------------


def test_write_creates_and_refuses_to_overwrite_a_file_saved_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "d.md"
    text = compose_draft_text({"title": "T"}, "one\n")
    assert write_draft(path, None, text)
    read = read_draft(path)
    assert read is not None
    path.write_text(text + "saved by a reviewer\n", encoding="utf-8")
    assert not write_draft(path, read, text + "ours\n")
    assert path.read_text(encoding="utf-8").endswith("saved by a reviewer\n")
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind

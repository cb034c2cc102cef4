"""Publishing follows review: `draft` (Hugo) and `published` (Jekyll) say approved-or-not, whichever way
the status changed."""

from __future__ import annotations

from pathlib import Path

from review_support import NEW_STORY, draft_path, gain_story, run

from pipeline.drafts import read_draft


def keys(path: Path) -> tuple[object, object, object]:
    draft = read_draft(path)
    assert draft is not None
    return draft.front_matter.get("status"), draft.front_matter.get("draft"), draft.front_matter.get("published")


def test_a_new_draft_is_unpublished(built: Path) -> None:
    assert keys(draft_path(built)) == ("draft", True, False)


def test_the_status_command_moves_draft_and_published_with_status(built: Path) -> None:
    path = draft_path(built)
    for status, expected in (("in-review", ("in-review", True, False)), ("approved", ("approved", False, True)),
                             ("in-review", ("in-review", True, False))):
        assert run(built, "status", str(path), status).exit_code == 0
        assert keys(path) == expected


def test_the_status_command_repairs_keys_out_of_step_even_when_the_status_is_unchanged(built: Path) -> None:
    path = draft_path(built)
    path.write_text(path.read_text(encoding="utf-8").replace("status: draft", "status: approved"), encoding="utf-8")
    result = run(built, "status", str(path), "approved")
    assert result.exit_code == 0 and "(unchanged)" not in result.stdout
    assert keys(path) == ("approved", False, True)


def test_a_status_set_by_hand_is_published_by_the_next_build_and_by_the_next_refresh(built: Path) -> None:
    for command in (("build", "--offline"), ("refresh",)):
        path = draft_path(built)
        path.write_text(path.read_text(encoding="utf-8").replace("status: draft", "status: approved")
                        .replace("status: in-review", "status: approved"), encoding="utf-8")
        assert keys(path) == ("approved", True, False)
        result = run(built, *command)
        assert result.exit_code == 0, result.stderr
        assert keys(path) == ("approved", False, True), command
        run(built, "status", str(path), "in-review")
        assert keys(path) == ("in-review", True, False)


def test_a_misspelt_status_is_protected_but_never_published(built: Path) -> None:
    path = draft_path(built)
    path.write_text(path.read_text(encoding="utf-8").replace("status: draft", "status: aproved"), encoding="utf-8")
    result = run(built, "build", "--offline")
    assert "unknown status 'aproved'" in result.stderr
    assert keys(path) == ("aproved", True, False)


def test_a_refresh_that_changes_an_approved_draft_leaves_publishing_in_step_with_its_status(built: Path, feed_server) -> None:
    path = draft_path(built)
    run(built, "status", str(path), "approved")
    before = path.read_text(encoding="utf-8")
    gain_story(feed_server, NEW_STORY)
    result = run(built, "refresh")
    assert result.exit_code == 0, result.stderr
    status, draft, published = keys(path)
    if status == "approved":  # the change kept the approval (a Further Reading update): still published
        assert (draft, published) == (False, True) and path.read_text(encoding="utf-8") != before
    else:
        assert (status, draft, published) == ("in-review", True, False)


def test_build_force_on_an_approved_draft_unpublishes_it(built: Path) -> None:
    path = draft_path(built)
    run(built, "status", str(path), "approved")
    path.write_text(path.read_text(encoding="utf-8").replace("## 🧩 Conclusion", "## 🧩 Conclusion\n\nMine."),
                    encoding="utf-8")
    assert run(built, "build", "--offline", "--force").exit_code == 0
    assert keys(path) == ("in-review", True, False)


def test_naming_one_generator_takes_the_other_key_out_and_leaves_every_other_line(built: Path) -> None:
    path = draft_path(built)
    text = path.read_text(encoding="utf-8")
    # A reviewer's comment inside the key that goes, and one elsewhere: both are their words.
    text = text.replace("published: false\n", "published: false  # Jekyll needs this\n# Dana: tags checked\n", 1)
    path.write_text(text, encoding="utf-8")
    (built / "pyproject.toml").write_text('[tool.pipeline]\nsite = "hugo"\n', encoding="utf-8")
    result = run(built, "build", "--offline")
    assert result.exit_code == 0, result.stderr
    after = path.read_text(encoding="utf-8")
    assert keys(path) == ("draft", True, None)
    assert "# Dana: tags checked\n" in after and "# Jekyll needs this\n" in after
    assert [line for line in after.splitlines() if not line.startswith(("published:", "# Jekyll"))] == \
        [line for line in text.splitlines() if not line.startswith("published:")]
    # Approval moves Hugo's key alone; a later run leaves the draft as it is.
    assert run(built, "status", str(path), "approved").exit_code == 0
    assert keys(path) == ("approved", False, None)
    approved = path.read_bytes()
    assert run(built, "refresh").exit_code == 0 and path.read_bytes() == approved


def test_a_site_the_pipeline_does_not_know_is_refused_in_one_line(built: Path) -> None:
    (built / "pyproject.toml").write_text('[tool.pipeline]\nsite = "wordpress"\n', encoding="utf-8")
    before = draft_path(built).read_bytes()
    result = run(built, "build", "--offline")
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "pyproject.toml" in line and "site must be 'hugo' or 'jekyll'" in line and "'wordpress'" in line, line
    assert draft_path(built).read_bytes() == before

"""`pipeline refresh`: only managed regions move, unchanged drafts are not touched, quiet for cron."""

from __future__ import annotations

import os
import pty
import select
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import FeedServer, Route, project_store, write_feeds
from pipeline.drafts import blank_regions, read_draft, set_front_matter_key
from review_support import (
    EPOCH,
    NEW_STORY,
    PYTHON,
    Story,
    assert_whole,
    draft_path,
    env_for_subprocess,
    gain_story,
    run,
    rss,
    serve_feeds,
    snapshot,
)



def test_refresh_rewrites_only_the_managed_regions_and_their_front_matter(
    built: Path, feed_server: FeedServer
) -> None:
    path = draft_path(built)
    before = read_draft(path)
    assert before is not None
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh", epoch=EPOCH + 3600)

    assert result.exit_code == 0, result.stderr
    after = read_draft(path)
    assert after is not None
    assert "Alipay adds English menus for tourists" in after.regions["further-reading"]
    assert after.regions["further-reading"] != before.regions["further-reading"]
    assert after.regions["context"] != before.regions["context"]  # its citations follow the list
    # Outside the regions, not one byte moved.
    assert blank_regions(after.body) == blank_regions(before.body)
    # In the front matter only further_reading and lastmod changed, each in place.
    expected_fm = set_front_matter_key(before.front_matter_text, "further_reading",
                                       after.front_matter["further_reading"])
    expected_fm = set_front_matter_key(expected_fm, "lastmod", "2025-03-01T13:00:00Z")
    assert after.front_matter_text == expected_fm
    assert after.front_matter["lastmod"] == "2025-03-01T13:00:00Z"
    assert [entry["headline"] for entry in after.front_matter["further_reading"]][0] == NEW_STORY.headline


def test_refresh_leaves_a_draft_whose_regions_come_out_the_same_untouched(
    built: Path, feed_server: FeedServer
) -> None:
    payments, privacy = draft_path(built), draft_path(built, "wechat-encryption")
    privacy_before = snapshot(privacy)
    payments_before = snapshot(payments)

    # Nothing new anywhere, an hour later: no draft is written, lastmod stays.
    result = run(built, "refresh", epoch=EPOCH + 3600)
    assert result.exit_code == 0, result.stderr
    assert snapshot(payments) == payments_before
    assert snapshot(privacy) == privacy_before

    # An Alipay story changes the payments draft only; the privacy draft's list comes out the same.
    gain_story(feed_server, NEW_STORY)
    result = run(built, "refresh", epoch=EPOCH + 7200)
    assert result.exit_code == 0, result.stderr
    assert snapshot(privacy) == privacy_before
    assert yaml.safe_load(privacy.read_text(encoding="utf-8").split("---\n")[1])["lastmod"] == "2025-03-01T12:00:00Z"
    payments_after = read_draft(payments)
    assert payments_after is not None and payments_after.front_matter["lastmod"] == "2025-03-01T14:00:00Z"


@pytest.mark.both_backends
def test_unchanged_feeds_answer_304_and_are_not_parsed_again(built: Path, feed_server: FeedServer) -> None:
    first_run = len(feed_server.requests)
    # Same ETags, but bodies that would fail to parse: a 304 must mean nothing is read again.
    for route in feed_server.routes.values():
        route.body = b"<html>this is not a feed</html>"

    result = run(built, "refresh")

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    second = feed_server.requests[first_run:]
    assert sorted(r.path for r in second) == ["/pay.xml", "/privacy.xml"]
    assert {r.headers.get("if-none-match") for r in second} == {'"pay-1"', '"privacy-1"'}
    with project_store(built) as store:
        assert {state.last_status for state in store.feed_states().values()} == {"304"}


def test_a_successful_refresh_prints_nothing(built: Path, feed_server: FeedServer) -> None:
    gain_story(feed_server, NEW_STORY)
    result = run(built, "refresh")
    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == ("", "")
    assert NEW_STORY.headline in draft_path(built).read_text(encoding="utf-8")


def test_some_feeds_failing_warns_on_stderr_and_exits_0(built: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/privacy.xml"] = Route(b"oops", status=500)
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"feed {feed_server.url('/privacy.xml')}: HTTP 500" in result.stderr
    assert "Traceback" not in result.stderr
    assert NEW_STORY.headline in draft_path(built).read_text(encoding="utf-8")


def test_nothing_fetched_exits_non_zero(built: Path, feed_server: FeedServer) -> None:
    feed_server.routes.clear()  # every feed answers 404 now
    result = run(built, "refresh")
    assert result.exit_code == 1
    assert "no feed could be fetched" in result.stderr
    assert f"feed {feed_server.url('/pay.xml')}: HTTP 404" in result.stderr
    assert result.stdout == ""


def test_a_draft_that_cannot_be_parsed_exits_non_zero_naming_it(built: Path, feed_server: FeedServer) -> None:
    broken = draft_path(built, "wechat-encryption")
    broken.write_text("---\ntitle: [unclosed\n---\n\nbody\n", encoding="utf-8")
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh")

    assert result.exit_code == 1
    assert f"error: {broken}:" in result.stderr
    assert "front matter is not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr
    # The other draft was still refreshed, and the broken one was not overwritten.
    assert NEW_STORY.headline in draft_path(built).read_text(encoding="utf-8")
    assert broken.read_text(encoding="utf-8").startswith("---\ntitle: [unclosed")


def _make_read_only(folder: Path) -> list[str]:
    """Make `folder` unwritable, even for root (chattr +i); returns how to undo it, or skips."""
    folder.chmod(0o555)
    undo = ["chmod", "755", str(folder)]
    probe = folder / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return undo
    probe.unlink()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        folder.chmod(0o755)
        pytest.skip("cannot make a folder read-only here (root without chattr)")
    return ["chattr", "-i", str(folder)]


def test_a_draft_that_cannot_be_written_exits_non_zero_naming_it(built: Path, feed_server: FeedServer) -> None:
    gain_story(feed_server, NEW_STORY)
    output = built / "output"
    before = draft_path(built).read_bytes()
    undo = _make_read_only(output)
    try:
        result = run(built, "refresh")
    finally:
        subprocess.run(undo, check=True)
        output.chmod(0o755)
    assert result.exit_code == 1
    assert f"error: {draft_path(built)}: cannot be written" in result.stderr
    assert "could not be refreshed" in result.stderr
    assert "Traceback" not in result.stderr
    assert draft_path(built).read_bytes() == before


def test_progress_appears_only_on_a_terminal(built: Path, feed_server: FeedServer) -> None:
    # Not a terminal (CliRunner): nothing at all.
    assert run(built, "refresh").stderr == ""

    # A terminal on stderr: the progress bar is drawn there.
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [PYTHON, "-m", "pipeline.cli", "--root", str(built), "refresh"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env_for_subprocess(),
        )
        os.close(slave)
        seen = b""
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(master)
    assert process.returncode == 0
    assert b"fetching feeds" in seen
    assert stdout == b""


def test_refresh_does_not_create_drafts(project: Path, feed_server: FeedServer) -> None:
    serve_feeds(project, feed_server)
    result = run(project, "refresh")
    assert result.exit_code == 0, result.stderr
    assert list((project / "output").glob("*.md")) == []


def test_refresh_keeps_reviewer_front_matter_and_layout(built: Path, feed_server: FeedServer) -> None:
    path = draft_path(built)
    text = path.read_text(encoding="utf-8")
    # A reviewer adds a key and a comment, and removes the blank line after the front matter.
    text = text.replace("\nstatus: draft\n", "\nstatus: draft\nreviewer: Dana  # checked fees\n", 1)
    text = text.replace("---\n\n# ", "---\n# ", 1)
    path.write_text(text, encoding="utf-8")
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh")

    assert result.exit_code == 0, result.stderr
    after = path.read_text(encoding="utf-8")
    assert "\nreviewer: Dana  # checked fees\n" in after
    assert "---\n# Paying in China" in after
    assert NEW_STORY.headline in after
    assert_whole(path)


def test_refresh_with_feeds_file_listing_nothing_still_refreshes_from_the_store(
    built: Path, feed_server: FeedServer
) -> None:
    write_feeds(built)  # no feeds: nothing to fetch is not a failure
    result = run(built, "refresh")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.both_backends
def test_done_when_scenario(project: Path, feed_server: FeedServer) -> None:
    """Issue 3's "Done when", end to end with feeds on 127.0.0.1."""
    serve_feeds(project, feed_server)
    assert run(project, "build").exit_code == 0
    path = draft_path(project)

    # A reviewer edits the draft outside the managed regions, front matter included.
    text = path.read_text(encoding="utf-8")
    reviewer_edits = [
        "Reviewer's tip: save a screenshot of the refund screen.",
        "\nreviewer: Dana\n",
    ]
    text = text.replace("If something goes wrong, contact the merchant first",
                        reviewer_edits[0] + "\n\nIf something goes wrong, contact the merchant first", 1)
    text = text.replace("\nstatus: draft\n", "\nstatus: in-review\nreviewer: Dana\n", 1)
    path.write_text(text, encoding="utf-8")

    # A feed gains a story; the other feed is unchanged.
    gain_story(feed_server, NEW_STORY)
    seen = len(feed_server.requests)
    result = run(project, "refresh")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    draft = read_draft(path)
    assert draft is not None
    assert f"🔸 {NEW_STORY.headline}" in draft.regions["further-reading"]
    privacy_requests = [r for r in feed_server.requests[seen:] if r.path == "/privacy.xml"]
    assert [r.headers.get("if-none-match") for r in privacy_requests] == ['"privacy-1"']
    with project_store(project) as store:
        assert store.feed_state(feed_server.url("/privacy.xml")).last_status == "304"
    for edit in reviewer_edits:
        assert edit in draft.text
    assert draft.front_matter["status"] == "in-review"

    # A hand edit inside the list survives a later refresh that brings more news.
    hand_edit = f"🔸 {NEW_STORY.headline} (English menus in 20 cities, per Dana)"
    path.write_text(draft.text.replace(f"🔸 {NEW_STORY.headline}", hand_edit, 1), encoding="utf-8")
    feed_server.routes["/pay.xml"] = Route(
        rss("Pay News", (Story("Alipay opens a help desk at Pudong airport", "alipay-desk", 0), NEW_STORY)),
        etag='"pay-3"')
    result = run(project, "refresh")
    assert result.exit_code == 0
    assert f"{path}: region 'further-reading' was edited by hand" in result.stderr
    text = path.read_text(encoding="utf-8")
    assert hand_edit in text
    for edit in reviewer_edits:
        assert edit in text

    # Two refreshes at once leave a whole draft, with every edit still there.
    command = [PYTHON, "-m", "pipeline.cli", "--root", str(project), "refresh", "--wait", "60"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for_subprocess())
            for _ in range(2)]
    for process in runs:
        process.communicate(timeout=120)
        assert process.returncode == 0
    assert_whole(path)
    text = path.read_text(encoding="utf-8")
    assert hand_edit in text
    for edit in reviewer_edits:
        assert edit in text

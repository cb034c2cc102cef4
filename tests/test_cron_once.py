"""Cron speaks once: a condition that needs a person is said on the run that finds it, again only when it
changes, and listed by `pipeline status` while it is open; a run with nothing new prints nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Route, project_store
from review_support import NEW_STORY, PAYMENT_STORIES, Story, draft_path, gain_story, rss, run

from pipeline.conditions import Findings, adopt_ledger, reconcile, signature
from pipeline.models import Condition

HAND = "Dana checked: the limit is 5,000 yuan."  # a line in the list that is not an entry: the list is left alone


def hand_edit(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    head = f"🔸 {PAYMENT_STORIES[0].headline}"
    assert head in text
    path.write_text(text.replace(head, f"{HAND}\n\n{head}", 1), encoding="utf-8")


def listing(root: Path) -> dict:
    result = run(root, "status", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.both_backends
def test_a_hand_edited_region_is_said_once_listed_while_open_and_said_again_when_it_returns(
        built: Path, feed_server) -> None:
    path = draft_path(built)
    hand_edit(path)
    first = run(built, "refresh")
    assert first.exit_code == 0
    assert first.stderr.count("was edited by hand") == 1, first.stderr
    for _ in range(2):  # every later run: silent, news or not
        gain_story(feed_server, NEW_STORY, etag=f'"pay-{_ + 2}"')
        later = run(built, "refresh")
        assert later.exit_code == 0 and later.stderr == "", later.stderr
    drafts = {d["path"]: d for d in listing(built)["drafts"]}
    opened = drafts[str(path)]["open"]
    assert [c["kind"] for c in opened] == ["region-edited:further-reading"]

    # The reviewer puts the list back: the condition is over, quietly; editing again is news again.
    path.write_text(path.read_text(encoding="utf-8").replace(f"{HAND}\n\n", ""), encoding="utf-8")
    assert run(built, "refresh").stderr == ""
    assert {d["path"]: d for d in listing(built)["drafts"]}[str(path)]["open"] == []
    hand_edit(path)
    assert "was edited by hand" in run(built, "refresh").stderr


def test_a_person_running_build_still_sees_what_is_open_and_cron_does_not_repeat_it(built: Path) -> None:
    hand_edit(draft_path(built))
    for _ in range(2):
        shown = run(built, "build", "--offline")
        assert "was edited by hand" in shown.stderr
    assert run(built, "refresh").stderr == ""


@pytest.mark.both_backends
def test_a_failing_feed_is_said_when_it_starts_failing_and_when_it_backs_off_not_on_every_run(
        built: Path, feed_server) -> None:
    feed_server.routes["/pay.xml"] = Route(b"oops", status=500)
    said = []
    for epoch_step in range(8):
        result = run(built, "refresh", epoch=1740830400 + 1800 * epoch_step)
        said.append(result.stderr)
    noisy = [text for text in said if text]
    assert "HTTP 500" in noisy[0] and "/pay.xml" in noisy[0]
    assert any("backing off" in text for text in noisy[1:])
    assert len(noisy) <= 3, said  # failing, backing off, and at most a change of reason: never every run
    open_kinds = sorted(c["kind"] for c in listing(built)["open"])
    assert "failing" in open_kinds

    # Back to health: over, quietly.
    feed_server.routes["/pay.xml"] = Route(rss("Pay News", PAYMENT_STORIES), etag='"pay-9"')
    healthy = run(built, "refresh", epoch=1740830400 + 86400 * 2)
    assert healthy.stderr == ""
    assert listing(built)["open"] == []


def test_approval_revoked_is_said_once_and_stays_open_until_approved_again(built: Path, feed_server) -> None:
    path = draft_path(built)
    run(built, "status", str(path), "approved")
    before = path.read_text(encoding="utf-8")
    gain_story(feed_server, Story("Alipay drops the foreign card fee", "alipay-fee", 0))
    first = run(built, "refresh")
    now = path.read_text(encoding="utf-8")
    if "status: approved" in now:  # the change kept the approval (a list-only update): nothing to say
        assert first.stderr == "" and now != before
        return
    assert "back to in-review" in first.stderr
    gain_story(feed_server, Story("WeChat Pay adds a tourist card", "tourist-card", 0), etag='"pay-3"')
    assert run(built, "refresh").stderr == ""
    kinds = [c["kind"] for c in {d["path"]: d for d in listing(built)["drafts"]}[str(path)]["open"]]
    assert "approval-revoked" in kinds
    run(built, "status", str(path), "approved")
    run(built, "refresh")
    kinds = [c["kind"] for c in {d["path"]: d for d in listing(built)["drafts"]}[str(path)]["open"]]
    assert "approval-revoked" not in kinds


def test_status_lists_every_draft_with_its_status(built: Path) -> None:
    run(built, "status", str(draft_path(built)), "approved")
    result = run(built, "status")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.endswith("mobile-payments.md: approved") or "mobile-payments.md: approved (approved" in line
               for line in lines), lines
    assert any(line.endswith("wechat-encryption.md: draft") for line in lines), lines



@pytest.mark.both_backends
def test_a_ledger_kept_under_absolute_paths_is_taken_over_without_saying_anything_again(
        built: Path, feed_server) -> None:
    path = draft_path(built)
    hand_edit(path)
    assert "was edited by hand" in run(built, "refresh").stderr
    # The ledger as an older pipeline kept it: the draft's absolute path, in the key and in the message.
    with project_store(built) as store:
        [kept] = store.conditions()
        assert kept.subject == "output/mobile-payments.md", kept
        old_message = f"{built}/{kept.message}"
        old = Condition(str(path), kept.kind, old_message, signature(old_message), kept.since)
        store.save_conditions([old], [kept.key])
    later = run(built, "refresh")
    assert later.exit_code == 0 and later.stderr == "", later.stderr
    with project_store(built) as store:
        assert store.conditions() == [kept]
    drafts = {d["path"]: d for d in listing(built)["drafts"]}
    assert [c["kind"] for c in drafts[str(path)]["open"]] == ["region-edited:further-reading"]


def test_findings_and_ledger_name_drafts_by_their_path_in_the_project(tmp_path: Path) -> None:
    root = tmp_path / "site"
    draft = f"{root}/output/a.md"
    run_ = Findings()
    run_.look(draft)
    run_.look("output/a.md", lambda kind: kind == "approval-revoked")  # the same draft by its other name
    run_.add(draft, "conflict", f"{draft}: reviewer edits conflict")
    run_.add("https://example.org/feed.xml", "failing", "feed https://example.org/feed.xml: HTTP 500")
    within = run_.within(root)
    assert within.found == {("output/a.md", "conflict"): "output/a.md: reviewer edits conflict",
                            ("https://example.org/feed.xml", "failing"): "feed https://example.org/feed.xml: HTTP 500"}
    assert within.lines[("output/a.md", "conflict")] == f"warning: {draft}: reviewer edits conflict"  # printed whole
    assert within.looked_for("output/a.md", "conflict") and within.looked_for("output/a.md", "approval-revoked")
    elsewhere = str(tmp_path / "other-checkout" / "output" / "a.md")
    ledger = [Condition(draft, "conflict", f"{draft}: x", f"{draft}: x", "t0"),
              Condition(elsewhere, "conflict", f"{elsewhere}: x", f"{elsewhere}: x", "t0")]
    current, renamed, old_keys = adopt_ledger(ledger, root)
    assert renamed == [Condition("output/a.md", "conflict", "output/a.md: x", "output/a.md: x", "t0")]
    assert old_keys == [(draft, "conflict")]
    assert current == [renamed[0], ledger[1]]  # another checkout's row waits for that checkout's run

# -- the ledger's rules, without a run -------------------------------------------------------------

def test_counters_and_times_do_not_make_a_condition_new() -> None:
    assert signature("backing off after 3 failures; next try 2026-03-02 10:00 UTC") == \
        signature("backing off after 4 failures; next try 2026-03-02 12:30 UTC")
    assert signature("HTTP 500 Internal Server Error") != signature("HTTP 404 Not Found")


def test_reconcile_says_new_and_changed_conditions_and_closes_only_what_it_looked_for() -> None:
    ledger = [Condition("a.md", "conflict", "a.md: conflict", "a.md: conflict", "t0"),
              Condition("b.md", "conflict", "b.md: conflict", "b.md: conflict", "t0"),
              Condition("feed", "failing", "feed: HTTP 500", "feed: HTTP 500", "t0")]
    run_ = Findings()
    run_.look("a.md")  # a.md looked at, fine now; b.md not built this run
    run_.look("feed", lambda kind: kind in ("failing", "retired"))
    run_.add("feed", "failing", "feed: HTTP 404")
    run_.look("c.md")
    run_.add("c.md", "conflict", "c.md: conflict")
    result = reconcile(ledger, run_, "t1")
    assert [(c.subject, c.since) for c in result.news] == [("feed", "t0"), ("c.md", "t1")]
    assert result.closed == (("a.md", "conflict"),)


def _cite_and_invent(body: dict) -> str:
    """The test's model: cites the first item it was given and invents one (a grounding warning)."""
    import re

    cites = re.findall(r'"cite": "(\[[^"]+\])"', body["messages"][-1]["content"])
    return f"Recent news agrees {cites[0]}. Officials promised free SIM cards [Global Times, 2024-05-05]."


def test_with_a_model_a_run_with_nothing_new_prints_nothing(project: Path, feed_server, chat_server) -> None:
    from review_support import serve_feeds

    serve_feeds(project, feed_server)
    chat_server.reply = _cite_and_invent
    model = {"PIPELINE_MODEL": "openai:gpt-4o-mini", "OPENAI_BASE_URL": chat_server.base_url, "OPENAI_API_KEY": "t"}
    built = run(project, "build", env=model)
    assert built.exit_code == 0, built.stderr
    assert "not among the items given" in built.stderr and "model openai:gpt-4o-mini: 2 calls" in built.stdout
    calls = len(chat_server.requests)

    quiet = run(project, "refresh", env=model)
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""

    # A reviewer's edit outside the regions makes the next refresh look at the draft again: the model's
    # answer comes from the cache, with the grounding warnings already said, so nothing is said.
    path = draft_path(project)
    path.write_text(path.read_text(encoding="utf-8").replace("## 🧩 Conclusion", "## 🧩 Conclusion\n\nDana: ok."),
                    encoding="utf-8")
    cached = run(project, "refresh", env=model)
    assert cached.exit_code == 0 and cached.stderr == "", cached.stderr
    assert len(chat_server.requests) == calls

    # News: the model is called, so its summary is said once, with any new grounding warning.
    gain_story(feed_server, NEW_STORY)
    news = run(project, "refresh", env=model)
    assert len(chat_server.requests) > calls
    assert "model openai:gpt-4o-mini: 1 call" in news.stderr
    assert run(project, "refresh", env=model).stderr == ""


def test_status_shows_what_changed_since_approval_and_when(built: Path, feed_server) -> None:
    path = draft_path(built)
    run(built, "status", str(path), "approved")
    gain_story(feed_server, NEW_STORY)
    assert run(built, "refresh", epoch=1740830400 + 1800).exit_code == 0
    assert "status: approved" in path.read_text(encoding="utf-8")  # a list change keeps the approval

    entry = {d["path"]: d for d in listing(built)["drafts"]}[str(path)]
    assert entry["status"] == "approved" and entry["approved_at"] == "2025-03-01T12:00:00Z"
    changes = [(c["at"], c["region"], c["summary"]) for c in entry["changes_since_approval"]]
    assert changes[0][:2] == ("2025-03-01T12:30:00Z", "further-reading"), changes
    assert changes[0][2].startswith("1 story added"), changes
    text = run(built, "status").stdout
    assert "mobile-payments.md: approved (approved 2025-03-01T12:00:00Z)" in text
    assert "    changed since approval, 2025-03-01T12:30:00Z: further-reading: 1 story added" in text


def test_the_conditions_of_a_deleted_draft_end_with_it(built: Path) -> None:
    path = draft_path(built)
    hand_edit(path)
    assert "was edited by hand" in run(built, "refresh").stderr
    guide = built / "templates" / "guides" / "mobile-payments.md"
    guide.unlink()
    path.unlink()
    assert run(built, "refresh").stderr == ""
    listed = listing(built)
    assert listed["open"] == [] and all(d["open"] == [] for d in listed["drafts"])

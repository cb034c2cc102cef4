"""Approval that means something: per region, who vouches for a change to an approved draft.

The feeds vouch for the Further Reading list (escaped, format-checked): a list change keeps the draft
approved and is recorded as a change since approval. We vouch for prose a reader takes as ours (the
AI-drafted context): a change sends the draft back to in-review with one note. Turning a model on or
off is not news, and the model is never asked for text that will not be used. Models answer from the
OpenAI-compatible test server on 127.0.0.1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FeedServer
from pipeline.drafts import read_draft
from pipeline.state import load_state
from review_support import EPOCH, NEW_STORY, Story, draft_path, gain_story, run, snapshot

MODEL = "openai:gpt-4o-mini"
PAYMENTS_TITLE = "Paying in China with Alipay and WeChat Pay"
LATER = EPOCH + 1800


def state(root: Path, slug: str = "mobile-payments"):  # type: ignore[no-untyped-def]
    found = load_state(root / "output", slug)
    assert found is not None
    return found


def status_of(path: Path) -> object:
    draft = read_draft(path)
    assert draft is not None
    return draft.front_matter["status"]


def cite_first_item(body: dict) -> str:
    """The test's model: one sentence citing the first item it was given, naming how many there were."""
    cites = re.findall(r'"cite": "(\[[^"]+\])"', body["messages"][-1]["content"])
    return f"There are {len(cites)} recent stories worth reading, starting with this one {cites[0]}."


def asked_about(chat_server: object, title: str) -> int:
    return sum(title in str(r["body"]) for r in chat_server.requests)  # type: ignore[attr-defined]


@pytest.fixture
def model_env(chat_server: object) -> dict[str, str | None]:
    chat_server.reply = cite_first_item  # type: ignore[attr-defined]
    return {"PIPELINE_MODEL": MODEL, "OPENAI_BASE_URL": chat_server.base_url,  # type: ignore[attr-defined]
            "OPENAI_API_KEY": "test"}


# -- recording approval ----------------------------------------------------------------------------


def test_approving_records_the_time_and_the_whole_text_and_leaving_approved_clears_it(built: Path) -> None:
    path = draft_path(built)
    assert state(built).approved is None

    assert run(built, "status", str(path), "approved", epoch=LATER).exit_code == 0

    approved = state(built).approved
    assert approved is not None
    assert approved.at == "2025-03-01T12:30:00Z"  # the pipeline's clock: SOURCE_DATE_EPOCH
    assert approved.text == path.read_text(encoding="utf-8")
    assert run(built, "status", str(path), "in-review").exit_code == 0
    assert state(built).approved is None and state(built).changes_since_approval == ()


@pytest.mark.parametrize("command", ["refresh", "build"])
def test_an_approval_set_by_hand_is_recorded_by_the_next_run(built: Path, command: str) -> None:
    path = draft_path(built)
    path.write_text(path.read_text(encoding="utf-8").replace("\nstatus: draft\n", "\nstatus: approved\n"),
                    encoding="utf-8")
    approved_text = path.read_text(encoding="utf-8")

    assert run(built, command, epoch=LATER).exit_code == 0

    approved = state(built).approved
    assert approved is not None and (approved.at, approved.text) == ("2025-03-01T12:30:00Z", approved_text)
    # Moved back by hand: the next run clears the record.
    path.write_text(approved_text.replace("\nstatus: approved\n", "\nstatus: draft\n"), encoding="utf-8")
    assert run(built, "refresh", epoch=LATER + 60).exit_code == 0
    assert state(built).approved is None


# -- the list: the feeds vouch for it ------------------------------------------------------------------


def test_a_list_change_keeps_the_approval_and_is_recorded_as_a_change(built: Path, feed_server: FeedServer) -> None:
    path = draft_path(built)
    assert run(built, "status", str(path), "approved").exit_code == 0
    approved_text = path.read_text(encoding="utf-8")
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh", epoch=LATER)

    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert status_of(path) == "approved"
    assert NEW_STORY.headline in path.read_text(encoding="utf-8")
    recorded = state(built)
    assert recorded.approved is not None and recorded.approved.text == approved_text  # the text approved
    assert [(c.at, c.region, c.summary) for c in recorded.changes_since_approval] == [
        ("2025-03-01T12:30:00Z", "further-reading", "1 story added, 1 story dropped"),
        ("2025-03-01T12:30:00Z", "context", "rewritten to follow the Further Reading list"),
    ]

    # Another story pushes one out: recorded too, after the first.
    gain_story(feed_server, Story("Alipay opens a help desk at Pudong airport", "alipay-desk", 0), etag='"pay-3"')
    assert run(built, "refresh", epoch=LATER + 1800).stderr == ""
    assert [c.summary for c in state(built).changes_since_approval][2] == "1 story added, 1 story dropped"


# -- the AI-drafted context: we vouch for it -------------------------------------------------------------


def test_a_changed_ai_drafted_context_sends_an_approved_draft_back_with_one_note(
    built: Path, feed_server: FeedServer, chat_server: object, model_env: dict[str, str | None]
) -> None:
    path = draft_path(built)
    assert run(built, "build", "--force", env=model_env).exit_code == 0  # the context is the model's now
    assert "AI-drafted" in path.read_text(encoding="utf-8")
    assert run(built, "status", str(path), "approved").exit_code == 0
    gain_story(feed_server, NEW_STORY)

    result = run(built, "refresh", epoch=LATER, env=model_env)

    assert result.exit_code == 0
    assert status_of(path) == "in-review"
    notes = [line for line in result.stderr.splitlines() if str(path) in line]
    assert notes == [f"warning: {path}: was approved; its AI-drafted context changed, so it is back to in-review"]
    assert "There are 3 recent stories" in path.read_text(encoding="utf-8")
    assert state(built).approved is None


def test_turning_a_model_on_or_off_is_not_news(
    built: Path, feed_server: FeedServer, chat_server: object, model_env: dict[str, str | None]
) -> None:
    path = draft_path(built)
    assert run(built, "status", str(path), "approved").exit_code == 0
    before = snapshot(path)

    # On, nothing new: the approved draft is not touched and the model not asked about it.
    turned_on = run(built, "refresh", epoch=LATER, env=model_env)
    assert turned_on.exit_code == 0 and "news changed it" not in turned_on.stderr
    assert snapshot(path) == before
    assert asked_about(chat_server, PAYMENTS_TITLE) == 0

    # On, with news: the list moves, the template's context follows it, the draft stays approved.
    gain_story(feed_server, NEW_STORY)
    with_news = run(built, "refresh", epoch=LATER + 60, env=model_env)
    assert str(path) not in with_news.stderr
    assert status_of(path) == "approved" and NEW_STORY.headline in path.read_text(encoding="utf-8")
    assert asked_about(chat_server, PAYMENTS_TITLE) == 0

    # Off again, for a draft whose approved context the model wrote: kept as approved.
    assert run(built, "status", str(path), "in-review").exit_code == 0
    assert run(built, "build", "--force", env=model_env).exit_code == 0
    assert run(built, "status", str(path), "approved").exit_code == 0
    ai_drafted = snapshot(path)
    turned_off = run(built, "refresh", epoch=LATER + 120)
    assert turned_off.exit_code == 0 and str(path) not in turned_off.stderr
    assert snapshot(path) == ai_drafted


# -- the model is asked only for text that is used -----------------------------------------------------------


def test_the_model_is_never_asked_for_a_context_that_will_be_thrown_away(
    built: Path, feed_server: FeedServer, chat_server: object, model_env: dict[str, str | None]
) -> None:
    path = draft_path(built)
    gain_story(feed_server, NEW_STORY)

    # A hand-edited context is kept: no question about it.
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("<!-- pipeline:begin context -->\n",
                                 "<!-- pipeline:begin context -->\nOur reporter checked this.\n"), encoding="utf-8")
    assert run(built, "refresh", epoch=LATER, env=model_env).exit_code == 0
    assert asked_about(chat_server, PAYMENTS_TITLE) == 0
    assert asked_about(chat_server, "Is WeChat End-to-End Encrypted") == 1  # the other draft's context is used

    # A hand-edited list keeps the context that cites it: no question either.
    ours = path.read_text(encoding="utf-8").replace("Our reporter checked this.\n", "")
    path.write_text(ours.replace("🔸 Alipay raises", "🔸 Fixed by Dana: Alipay raises"), encoding="utf-8")
    gain_story(feed_server, Story("Alipay opens a help desk at Pudong airport", "alipay-desk", 0), etag='"pay-3"')
    assert run(built, "refresh", epoch=LATER + 60, env=model_env).exit_code == 0
    assert asked_about(chat_server, PAYMENTS_TITLE) == 0

    # An approved draft's body is kept by build: no question.
    path.write_text(ours, encoding="utf-8")
    assert run(built, "status", str(path), "approved").exit_code == 0
    assert run(built, "build", epoch=LATER + 120, env=model_env).exit_code == 0
    assert asked_about(chat_server, PAYMENTS_TITLE) == 0
    # And where the context is used, the model is asked.
    assert run(built, "status", str(path), "in-review").exit_code == 0
    assert run(built, "refresh", epoch=LATER + 180, env=model_env).exit_code == 0
    assert asked_about(chat_server, PAYMENTS_TITLE) == 1
    assert "There are 3 recent stories" in path.read_text(encoding="utf-8")

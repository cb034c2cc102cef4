"""A project as a reviewer meets it, for the `pipeline review` tests.

Two feeds on the test server (one carrying a hostile headline), a model on 127.0.0.1 drafting the
context paragraph, a reviewer's note and a bad citation in one draft, an approval, then a refresh
that brings a new story: every part the review pages show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ChatServer, FeedServer
from review_support import NEW_STORY, PRIVACY_STORIES, Story, draft_path, gain_story, run, serve_feeds

SLUG = "mobile-payments"
MODEL = "openai:gpt-4o-mini"
# Escaped beyond what the extractor decodes (it decodes twice, as feeds often escape HTML twice), so
# the headline's text itself says <script>.
HOSTILE = Story("Tencent &amp;lt;script&amp;gt;document.title='pwned'&amp;lt;/script&amp;gt; {{ site.title }} "
                "[tap](javascript:alert(1))", "tencent-hostile", 1)
NOTE = "Is the limit per payment or per day?"
BAD_CITATION = "[Nobody Times, 2025-02-01]"
NOTED_PARAGRAPH = "In much of China, paying means scanning a QR code."
CITED_PARAGRAPH = "The good news is that foreigners can now use"


def model_reply(body: dict) -> str:
    """The test's model: one sentence citing the card-limit story (the same words while it is listed)."""
    cites = re.findall(r'"cite": "(\[[^"]+\])"', body["messages"][-1]["content"])
    cite = next((c for c in cites if c.endswith(", 2025-02-27]")), cites[0])
    return f"Card payments are getting easier for visitors {cite}."


@dataclass
class Reviewed:
    root: Path
    env: dict[str, str | None]

    @property
    def draft(self) -> Path:
        return draft_path(self.root, SLUG)

    def review(self, *args: str) -> object:
        return run(self.root, "review", *args, env=self.env)


def model_env(chat_server: ChatServer) -> dict[str, str | None]:
    return {"PIPELINE_MODEL": MODEL, "OPENAI_BASE_URL": chat_server.base_url, "OPENAI_API_KEY": "test"}


def add_reviewer_edits(path: Path) -> None:
    """A note in one paragraph, a citation of nothing listed in another."""
    text = path.read_text(encoding="utf-8")
    assert NOTED_PARAGRAPH in text and CITED_PARAGRAPH in text
    text = text.replace(NOTED_PARAGRAPH, f"{NOTED_PARAGRAPH} {{>>{NOTE}<<}}", 1)
    text = text.replace(CITED_PARAGRAPH, f"{BAD_CITATION} {CITED_PARAGRAPH}", 1)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def reviewed(project: Path, feed_server: FeedServer, chat_server: ChatServer) -> Reviewed:
    """Built with a model, edited, approved, then refreshed with a new story (which keeps it approved:
    the feeds vouch for their list, and the model's sentence stays the same)."""
    chat_server.reply = model_reply
    env = model_env(chat_server)
    serve_feeds(project, feed_server, privacy=(HOSTILE, *PRIVACY_STORIES))
    built = run(project, "build", env=env)
    assert built.exit_code == 0, built.stderr
    path = draft_path(project, SLUG)
    add_reviewer_edits(path)
    assert run(project, "status", str(path), "approved").exit_code == 0  # records the approved text
    gain_story(feed_server, NEW_STORY)
    refreshed = run(project, "refresh", env=env)
    assert refreshed.exit_code == 0, refreshed.stderr
    text = path.read_text(encoding="utf-8")
    assert "English menus" in text and "Tencent \\<script\\>" in text
    return Reviewed(project, env)

"""Reviewers edit Further Reading entry by entry, through `pipeline build` and `pipeline refresh`.

The project fixture's drafts are built from feeds served on 127.0.0.1; a reviewer edits the list in
the draft file as a person would, and the next run keeps every choice they made.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FeedServer, Route
from pipeline.drafts import read_draft
from pipeline.entries import parse_entries
from review_support import EPOCH, PRIVACY_STORIES, Story, draft_path, rss, run, serve_feeds

DAY = 86400
PAY_STORIES = (
    Story("Alipay raises single-payment limit for foreign cards", "alipay-limit", 1),
    Story("WeChat Pay waives fees on small foreign-card payments", "wechat-pay-fees", 2),
    Story("Alipay adds English menus for tourists", "alipay-english", 3),
    Story("Alipay opens a help desk at Pudong airport", "alipay-desk", 4),
    Story("WeChat Pay links with Visa for visitors", "wechat-visa", 5),
)
FIXED = "Alipay doubles the single-payment limit for foreign cards (fixed by Dana)"


@pytest.fixture
def listed(project: Path, feed_server: FeedServer) -> Path:
    """A project built from five payment stories and two privacy stories."""
    serve_feeds(project, feed_server, pay=PAY_STORIES)
    result = run(project, "build")
    assert result.exit_code == 0, result.stderr
    return project


def entries(path: Path) -> list[tuple[str, str]]:
    draft = read_draft(path)
    assert draft is not None
    return [(e.link, e.headline) for e in parse_entries(draft.regions["further-reading"])]


def entry_block(text: str, link: str) -> str:
    """The three lines of the entry linking to `link`, with the blank line that separates it."""
    match = re.search(rf"🔸 [^\n]*\n[^\n]*\n🔗 \[Read Full Article\]\({re.escape(link)}\)\n\n?", text)
    assert match, link
    return match.group(0)


def test_a_deleted_story_stays_gone_a_fix_stays_and_check_passes_after_one_edit(
    listed: Path, feed_server: FeedServer
) -> None:
    path = draft_path(listed)
    before = entries(path)
    assert len(before) == 3
    (deleted, _), (fixed_link, old_headline) = before[0], before[1]
    text = path.read_text(encoding="utf-8")
    text = text.replace(entry_block(text, deleted), "")  # the reviewer deletes one story ...
    text = text.replace(f"🔸 {old_headline}  \n", f"🔸 {FIXED}  \n")  # ... and fixes one headline
    path.write_text(text, encoding="utf-8")

    result = run(listed, "refresh", epoch=EPOCH + 3600)

    assert (result.exit_code, result.stderr) == (0, "")
    after = entries(path)
    links = [link for link, _ in after]
    assert len(after) == 3, "the free slot is refilled"
    assert deleted not in links
    assert (fixed_link, FIXED) in after
    draft = read_draft(path)
    assert draft is not None
    assert [(e["url"], e["headline"]) for e in draft.front_matter["further_reading"]] == after
    assert draft.front_matter["further_reading_choices"] == {
        "exclude": [deleted], "fix": {fixed_link: {"headline": FIXED}}}
    # The context paragraph cites the list as it is now.
    assert f'"{FIXED}"' in draft.regions["context"] and old_headline not in draft.regions["context"]
    checked = run(listed, "check", str(path))
    assert checked.exit_code == 0, checked.stdout

    # Days later, with more news: the deleted story never comes back, the fix stays while listed.
    feed_server.routes["/pay.xml"] = Route(rss("Pay News", (Story("Alipay lowers fees for students", "fees", 0),
                                                             *PAY_STORIES)), etag='"pay-2"')
    later = run(listed, "refresh", epoch=EPOCH + 2 * DAY)
    assert (later.exit_code, later.stderr) == (0, "")
    again = entries(path)
    assert deleted not in [link for link, _ in again]
    assert (fixed_link, FIXED) in again
    assert run(listed, "check", str(path), epoch=EPOCH + 2 * DAY).exit_code == 0
    rebuilt = run(listed, "build", "--offline", epoch=EPOCH + 2 * DAY)
    assert (rebuilt.exit_code, rebuilt.stderr) == (0, "")
    assert entries(path) == again


def test_an_entry_added_by_hand_is_pinned_first_and_reordering_is_kept(listed: Path) -> None:
    path = draft_path(listed)
    (first, _), (second, _), (third, _) = entries(path)
    text = path.read_text(encoding="utf-8")
    one, two = entry_block(text, first), entry_block(text, second)
    mine = ("🔸 Our own guide to foreign-card limits  \n🗞️ Source: Expat Desk – 📅 2025-02-27  \n"
            "🔗 [Read Full Article](https://blog.example.org/limits)\n\n")
    # The reviewer swaps the first two stories and adds their own entry between them.
    assert one + two in text
    text = text.replace(one + two, two + mine + one)
    path.write_text(text, encoding="utf-8")

    result = run(listed, "refresh", epoch=EPOCH + 3600)

    assert (result.exit_code, result.stderr) == (0, "")
    assert [link for link, _ in entries(path)] == ["https://blog.example.org/limits", second, first]
    draft = read_draft(path)
    assert draft is not None
    assert draft.front_matter["further_reading_choices"] == {"pin": ["https://blog.example.org/limits"]}
    assert run(listed, "check", str(path)).exit_code == 0

    # Removing the pinned entry unpins it (and keeps it out); the slot goes back to the news.
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(entry_block(text, "https://blog.example.org/limits"), ""), encoding="utf-8")
    assert run(listed, "refresh", epoch=EPOCH + 7200).exit_code == 0
    assert [link for link, _ in entries(path)] == [second, first, third]


def test_a_line_that_is_not_an_entry_leaves_the_list_alone_and_names_the_line(listed: Path) -> None:
    path = draft_path(listed)
    text = path.read_text(encoding="utf-8").replace(
        "<!-- pipeline:end further-reading -->", "Ask Dana before adding more.\n<!-- pipeline:end further-reading -->")
    path.write_text(text, encoding="utf-8")
    line = text.split("\n").index("Ask Dana before adding more.") + 1

    result = run(listed, "refresh", epoch=EPOCH + 3600)

    assert result.exit_code == 0
    assert f"{path}:{line}: region 'further-reading' was edited by hand and this line is not a list entry" \
        in result.stderr
    assert path.read_text(encoding="utf-8") == text


def test_choices_a_person_cannot_read_stop_that_draft_with_one_line(listed: Path) -> None:
    path = draft_path(listed)
    text = path.read_text(encoding="utf-8").replace("\nstatus: draft\n", "\nstatus: draft\nfurther_reading_choices:\n"
                                                    "  exclude: https://news.example.com/alipay-limit\n", 1)
    path.write_text(text, encoding="utf-8")

    result = run(listed, "refresh", epoch=EPOCH + 3600)

    assert result.exit_code != 0
    assert f"{path}:" in result.stderr and "further_reading_choices: 'exclude' must be a list of links" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_text(encoding="utf-8") == text


def test_an_old_entry_added_by_hand_fails_the_age_rule_unless_pinned_on_purpose(listed: Path) -> None:
    path = draft_path(listed)
    old = ("🔸 How QR payments took over China  \n🗞️ Source: Expat Desk – 📅 2024-06-01  \n"
           "🔗 [Read Full Article](https://blog.example.org/qr-history)\n\n")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("<!-- pipeline:begin further-reading -->\n",
                                 "<!-- pipeline:begin further-reading -->\n" + old), encoding="utf-8")
    assert run(listed, "refresh", epoch=EPOCH + 3600).stderr == ""
    checked = run(listed, "check", str(path))
    assert checked.exit_code == 1
    assert "further-reading-age: 'How QR payments took over China' is dated 2024-06-01" in checked.stdout

    # The reviewer pins it on purpose: it stays first, and the gate lets it through.
    text = path.read_text(encoding="utf-8")
    assert "further_reading_choices:\n  pin:\n    - https://blog.example.org/qr-history\n" in text
    path.write_text(text.replace("further_reading_choices:\n  pin:\n", "further_reading_choices:\n  pin_any_age:\n"),
                    encoding="utf-8")
    assert run(listed, "refresh", epoch=EPOCH + 7200).stderr == ""
    assert entries(path)[0] == ("https://blog.example.org/qr-history", "How QR payments took over China")
    checked = run(listed, "check", str(path))
    assert checked.exit_code == 0, checked.stdout

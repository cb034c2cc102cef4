"""An editorial team's week, simulated: cron refreshes every 30 minutes of a fixed clock while feeds on
127.0.0.1 change, fail, recover and retire, and reviewers edit and approve in between.

What the team is promised: cron's stderr is empty on every run with nothing new, and each run that
speaks names a condition that was not open before it; approved drafts stay approved across Further
Reading updates; and a plain Hugo or Jekyll build publishes exactly the approved articles.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import FIXTURE, FeedServer, Route, write_feeds
from review_support import EPOCH, PAYMENT_STORIES, PRIVACY_STORIES, Story, rss, run

from pipeline.drafts import read_draft

HALF_HOUR = 1800
RUNS = 7 * 48  # a week of refreshes
PAY, PRIVACY = "mobile-payments", "wechat-encryption"
WEATHER = (Story("Shanghai expects a rainy weekend", "rain", 1), Story("Beijing opens a new park", "park", 2))


@dataclass
class Week:
    root: Path
    said: dict[int, str] = field(default_factory=dict)  # run -> stderr, for runs that spoke
    open_before: dict[int, dict[tuple[str, str], str]] = field(default_factory=dict)
    open_after: dict[int, dict[tuple[str, str], str]] = field(default_factory=dict)
    statuses: dict[int, dict[str, str]] = field(default_factory=dict)  # run -> slug -> status after it
    list_changed: dict[int, set[str]] = field(default_factory=dict)  # run -> slugs whose list changed


def open_conditions(root: Path, epoch: int) -> dict[tuple[str, str], str]:
    result = run(root, "status", "--json", epoch=epoch)
    assert result.exit_code == 0, result.stderr
    listing = json.loads(result.stdout)
    found = {(c["subject"], c["kind"]): c["message"] for c in listing["open"]}
    for draft in listing["drafts"]:
        found.update({(str(Path(draft["path"]).resolve()), c["kind"]): c["message"] for c in draft["open"]})
    return found


def draft(root: Path, slug: str) -> Path:
    return root / "output" / f"{slug}.md"


def status_of(root: Path, slug: str) -> str:
    loaded = read_draft(draft(root, slug))
    assert loaded is not None
    return str(loaded.front_matter["status"])


def reading_list(root: Path, slug: str) -> list[str]:
    loaded = read_draft(draft(root, slug))
    assert loaded is not None
    return [entry["url"] for entry in loaded.front_matter["further_reading"]]  # type: ignore[union-attr]


def serve(server: FeedServer, name: str, title: str, stories: tuple[Story, ...], version: int, host: str) -> None:
    server.routes[f"/{name}.xml"] = Route(rss(title, stories, host), etag=f'"{name}-{version}"')


def hand_edit_first_entry(root: Path, slug: str) -> tuple[str, str]:
    path = draft(root, slug)
    text = path.read_text(encoding="utf-8")
    start = text.index("🔸 ", text.index("<!-- pipeline:begin further-reading"))
    line = text[start:text.index("\n", start)]
    edited = line + " (checked by Dana)"
    path.write_text(text.replace(line, edited, 1), encoding="utf-8")
    return line, edited


def script(server: FeedServer, root: Path) -> dict[int, Callable[[], None]]:
    """What happens between refreshes, by the number of the refresh it comes before."""
    pay_news = list(PAYMENT_STORIES)
    undo: dict[str, tuple[str, str]] = {}

    def pay_gains(story: Story, version: int) -> Callable[[], None]:
        def act() -> None:
            pay_news.insert(0, story)
            serve(server, "pay", "Pay News", tuple(pay_news), version, "news.example.com")
        return act

    def approve(slug: str) -> Callable[[], None]:
        return lambda: _ok(run(root, "status", str(draft(root, slug)), "approved"))

    def edit_privacy_list() -> None:
        undo["line"] = hand_edit_first_entry(root, PRIVACY)

    def undo_privacy_edit() -> None:
        line, edited = undo["line"]
        path = draft(root, PRIVACY)
        path.write_text(path.read_text(encoding="utf-8").replace(edited, line, 1), encoding="utf-8")

    def wire(status: int) -> Callable[[], None]:
        def act() -> None:
            if status == 200:
                serve(server, "wire", "Asia Wire", WEATHER, 2, "wire.example.net")
            else:
                server.routes["/wire.xml"] = Route(b"<h1>down</h1>", status=status,
                                                   headers={"Content-Type": "text/html"})
        return act

    def retire_gazette() -> None:
        server.routes["/gazette.xml"] = Route(b"", status=410, headers={"Content-Type": "text/html"})

    return {
        1: approve(PAY),
        3: pay_gains(Story("Alipay raises limits for tourists", "alipay-tourists", 0), 2),  # list-only change
        10: edit_privacy_list,
        20: wire(500),
        60: wire(200),
        80: approve(PRIVACY),
        100: retire_gazette,
        200: pay_gains(Story("WeChat Pay adds a card for visitors", "wechat-visitors", 0), 3),
        250: undo_privacy_edit,
        300: pay_gains(Story("Alipay cuts fees on foreign cards", "alipay-fees", 0), 4),
    }


def _ok(result) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.stderr


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    root = tmp_path_factory.mktemp("week") / "project"
    root.mkdir()
    shutil.copytree(FIXTURE / "templates", root / "templates")
    (root / "sources").mkdir()
    # Its stories link to names that resolve nowhere; link health has its own tests (test_links.py).
    (root / "pyproject.toml").write_text("[tool.pipeline]\ncheck_links = false\n", encoding="utf-8")
    server = FeedServer().start()
    try:
        serve(server, "pay", "Pay News", PAYMENT_STORIES, 1, "news.example.com")
        serve(server, "privacy", "Privacy Wire", PRIVACY_STORIES, 1, "wire.example.org")
        serve(server, "wire", "Asia Wire", WEATHER, 1, "wire.example.net")
        serve(server, "gazette", "Old Gazette", WEATHER, 1, "gazette.example.com")
        write_feeds(root, {"url": server.url("/pay.xml"), "publisher": "Pay News", "tags": ["payments"]},
                    {"url": server.url("/privacy.xml"), "publisher": "Privacy Wire", "tags": ["privacy"]},
                    {"url": server.url("/wire.xml"), "publisher": "Asia Wire", "tags": ["china"]},
                    {"url": server.url("/gazette.xml"), "publisher": "Old Gazette", "tags": ["china"]})
        _ok(run(root, "build", epoch=EPOCH))  # an editor builds the drafts on Monday morning
        week = Week(root)
        events = script(server, root)
        opened = open_conditions(root, EPOCH)
        for number in range(RUNS):
            epoch = EPOCH + HALF_HOUR * (number + 1)
            if number in events:
                events[number]()
            lists = {slug: reading_list(root, slug) for slug in (PAY, PRIVACY)}
            week.open_before[number] = opened  # a reviewer's action opens or closes nothing by itself
            result = run(root, "refresh", epoch=epoch)
            assert result.exit_code == 0, (number, result.stderr)
            assert result.stdout == "", (number, result.stdout)
            if result.stderr:
                week.said[number] = result.stderr
            week.open_after[number] = opened = open_conditions(root, epoch)
            week.statuses[number] = {slug: status_of(root, slug) for slug in (PAY, PRIVACY)}
            week.list_changed[number] = {slug for slug in (PAY, PRIVACY) if reading_list(root, slug) != lists[slug]}
        yield week
    finally:
        server.stop()


def test_cron_speaks_only_on_runs_with_a_new_condition(week: Week) -> None:
    kinds_said = []
    for number, stderr in week.said.items():
        before, after = week.open_before[number], week.open_after[number]
        lines = stderr.strip().splitlines()
        for line in lines:
            # Every line names a condition open after the run that was not open (or said otherwise) before it.
            match = [key for key, message in after.items() if message in line]
            assert len(match) == 1, (number, line, after)
            assert before.get(match[0]) != after[match[0]], (number, line)
            kinds_said.append(match[0][1])
    # The week's news for a person: a hand-edited list, a feed failing then backing off, a feed retired.
    assert sorted(kinds_said) == sorted(["region-edited:further-reading", "failing", "backoff", "retired"]), week.said
    assert len(week.said) == 4, week.said
    assert RUNS - len(week.said) == 332  # every other run of the week printed nothing at all


def test_conditions_close_quietly_when_they_are_over(week: Week) -> None:
    last = week.open_after[RUNS - 1]
    kinds = sorted(kind for _subject, kind in last)
    assert kinds == ["retired"], last  # the feed recovered and the list edit was undone; the retired one remains


def test_approved_drafts_stay_approved_across_further_reading_updates(week: Week) -> None:
    pay_updates = [n for n in range(1, RUNS) if PAY in week.list_changed[n]]
    privacy_updates = [n for n in range(80, RUNS) if PRIVACY in week.list_changed[n]]
    assert len(pay_updates) >= 3 and privacy_updates, (pay_updates, privacy_updates)
    assert all(week.statuses[n][PAY] == "approved" for n in range(1, RUNS))
    assert all(week.statuses[n][PRIVACY] == "approved" for n in range(80, RUNS))


def test_a_plain_hugo_build_publishes_exactly_the_approved_articles(week: Week, tmp_path: Path) -> None:
    from test_hugo import HUGO, hugo_build, published

    if HUGO is None:
        pytest.skip("hugo is not on PATH (apt-get install hugo)")
    drafts = sorted((week.root / "output").glob("*.md"))
    approved = sorted(p.stem for p in drafts if status_of(week.root, p.stem) == "approved")
    assert published(hugo_build(tmp_path, drafts)) == approved == [PAY, PRIVACY]


def test_a_plain_jekyll_build_publishes_exactly_the_approved_articles(week: Week, tmp_path: Path) -> None:
    from test_jekyll import JEKYLL, jekyll_build, published

    if JEKYLL is None:
        pytest.skip("jekyll is not on PATH (apt-get install jekyll)")
    run(week.root, "status", str(draft(week.root, PRIVACY)), "in-review", epoch=EPOCH + HALF_HOUR * RUNS)
    drafts = sorted((week.root / "output").glob("*.md"))
    assert published(jekyll_build(tmp_path, drafts)) == [PAY]
    run(week.root, "status", str(draft(week.root, PRIVACY)), "approved", epoch=EPOCH + HALF_HOUR * RUNS)

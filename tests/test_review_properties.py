"""Property: reviewer edits outside managed regions survive any sequence of refreshes and rebuilds.

Each example copies a freshly built project into its own temp folder, then runs a random sequence of
steps: reviewer edits (insert, replace or delete a line of arbitrary text outside the regions), news
arriving (items written straight into the store), time passing (items ageing out), `refresh`,
`build`, and guide changes followed by `build`.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import FIXTURE, project_store
from pipeline.drafts import blank_regions, read_draft
from pipeline.models import Item
from review_support import EPOCH, draft_path, run

SLUG = "mobile-payments"
GUIDE_SENTENCE = re.compile(r"Refunds normally go back to the original payment method( \(revision \d+\))?")
MARKER = re.compile(r"^<!-- pipeline:(begin|end) [a-z-]+ -->$")
DAY = 86400

# Arbitrary text on one line: anything but line breaks (and never a region marker).
line_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    min_size=1, max_size=30,
).filter(lambda text: "<!-- pipeline:" not in text)

# Where: a random owned line, or (None) the line the guide changes, so conflicts get explored too.
edit_step = st.tuples(st.just("edit"), st.sampled_from(["insert", "replace", "delete"]),
                      st.one_of(st.none(), st.floats(min_value=0, max_value=1, exclude_max=True)), line_text)
step = st.one_of(
    edit_step,
    st.tuples(st.just("refresh")),
    st.tuples(st.just("build")),
    st.tuples(st.just("guide-change")),
    st.tuples(st.just("news")),
    st.tuples(st.just("time-passes"), st.integers(min_value=1, max_value=40)),
)


def _store_items(root: Path, items: list[Item], epoch: int) -> None:
    with project_store(root) as store:
        store.save_items(items, dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc))


def _headline(number: int) -> str:
    # Stories of one day rank by headline; counting down makes the latest one rank first.
    return f"Alipay update {1000 - number} for foreign visitors"


def _item(number: int, epoch: int) -> Item:
    day = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).date() - dt.timedelta(days=1)
    return Item(feed_url="https://feeds.example.com/pay.xml", guid=f"story-{number}",
                headline=_headline(number), source=f"Desk {number}",
                date=day, url=f"https://news.example.com/story-{number}")


@pytest.fixture(scope="module")
def template_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with stored news and built drafts; every example starts from a copy of it."""
    root = tmp_path_factory.mktemp("template") / "project"
    root.mkdir()
    shutil.copytree(FIXTURE / "templates", root / "templates")
    (root / "sources").mkdir()
    (root / "sources" / "feeds.toml").write_text("", encoding="utf-8")  # news arrives via the store
    (root / "output").mkdir()
    _store_items(root, [_item(0, EPOCH)], EPOCH)
    result = run(root, "build", "--offline")
    assert result.exit_code == 0, result.stderr
    return root


@dataclass
class Session:
    """One example's project and what the reviewer expects of it."""

    root: Path
    epoch: int = EPOCH
    stories: int = 1
    revision: int = 0
    guide_pending: bool = False  # the guide changed since the last clean build
    mine: str = ""  # the body as the reviewer last saw it
    typed: list[str] = field(default_factory=list)  # texts the reviewer typed, still in `mine`
    latest_story: str | None = None  # a story added since the last refresh or build

    @property
    def path(self) -> Path:
        return draft_path(self.root, SLUG)

    def body(self) -> str:
        draft = read_draft(self.path)
        assert draft is not None
        assert set(draft.regions) >= {"context", "further-reading"}
        return draft.body


def _outside_region_lines(lines: list[str]) -> list[int]:
    """Indexes of lines a reviewer owns: outside every managed region, markers excluded."""
    owned, inside = [], False
    for index, line in enumerate(lines):
        if MARKER.match(line):
            inside = line.startswith("<!-- pipeline:begin")
            continue
        if not inside:
            owned.append(index)
    return owned


def reviewer_edit(session: Session, kind: str, where: float | None, text: str) -> None:
    draft = read_draft(session.path)
    assert draft is not None
    lines = draft.body.split("\n")
    owned = _outside_region_lines(lines)
    near_guide = [i for i in owned if GUIDE_SENTENCE.search(lines[i])]
    if where is None and near_guide:
        index = near_guide[0]
    else:
        index = owned[int((where or 0.0) * len(owned))]
    if kind != "insert" and lines[index] in session.typed:
        session.typed.remove(lines[index])  # the reviewer removed a line they had typed
    if kind == "insert":
        lines.insert(index, text)  # before an owned line: never inside a region
    elif kind == "replace":
        lines[index] = text
    else:
        del lines[index]
    body = "\n".join(lines)
    session.path.write_text(draft.with_changes(draft.front_matter_text, body), encoding="utf-8")
    session.mine = body
    if kind != "delete":
        session.typed.append(text)


def check_run(session: Session, command: str) -> None:
    before = session.path.read_bytes()
    result = run(session.root, command, *(["--offline"] if command == "build" else []), epoch=session.epoch)
    body = session.body()
    if command == "build" and result.exit_code == 1:
        # A conflict: reported with the file, and the draft left exactly as it was.
        assert f"{session.path}: reviewer edits conflict" in result.stderr
        assert session.path.read_bytes() == before
        event("build: conflict reported, draft untouched")
        return
    assert result.exit_code == 0, result.stderr
    if command == "refresh" or not session.guide_pending:
        # Nothing changed outside the regions on the pipeline's side: every byte is the reviewer's.
        assert blank_regions(body) == blank_regions(session.mine)
    else:
        # A clean three-way merge: every text the reviewer typed, and the guide's change.
        for typed in session.typed:
            assert typed in body.split("\n")  # typed lines survive whole: the merge is line-based
        assert f"(revision {session.revision})" in body
        session.guide_pending = False
        event(f"build: guide change merged with {len(session.typed)} reviewer texts")
    if session.latest_story is not None:
        assert session.latest_story in read_draft(session.path).regions["further-reading"]  # type: ignore[union-attr]
        session.latest_story = None
    session.mine = body


def change_guide(session: Session) -> None:
    guide = session.root / "templates" / "guides" / f"{SLUG}.md"
    session.revision += 1
    text, count = GUIDE_SENTENCE.subn(
        f"Refunds normally go back to the original payment method (revision {session.revision})",
        guide.read_text(encoding="utf-8"))
    assert count == 1
    guide.write_text(text, encoding="utf-8")
    session.guide_pending = True


@contextmanager
def fresh_copy(template: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="review-property-") as folder:
        root = Path(folder) / "project"
        shutil.copytree(template, root)
        yield root


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first_edits=st.lists(edit_step, min_size=1, max_size=3), steps=st.lists(step, min_size=1, max_size=6))
def test_reviewer_edits_outside_regions_survive_refreshes_and_rebuilds(
    template_project: Path, first_edits: list[tuple[object, ...]], steps: list[tuple[object, ...]]
) -> None:
    with fresh_copy(template_project) as root:
        session = Session(root)
        session.mine = session.body()
        for action in [*first_edits, *steps]:
            name = action[0]
            if name == "edit":
                reviewer_edit(session, *action[1:])  # type: ignore[arg-type]
            elif name == "news":
                _store_items(root, [_item(session.stories, session.epoch)], session.epoch)
                session.latest_story = _headline(session.stories)
                session.stories += 1
            elif name == "time-passes":
                session.epoch += int(action[1]) * DAY  # type: ignore[call-overload]
                session.latest_story = None  # the latest story may have aged out
            elif name == "guide-change":
                change_guide(session)
                check_run(session, "build")
            else:
                check_run(session, str(name))
        # Finally the cron job runs once more: the reviewer's text is all still there.
        check_run(session, "refresh")
        for typed in session.typed:
            assert typed in session.body().split("\n")

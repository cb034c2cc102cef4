"""sources/feeds.toml: good files load into Feed records; each bad one stops `pipeline fetch` in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.config import load_feeds
from pipeline.errors import ConfigError
from pipeline.models import Feed

FIXTURE = Path(__file__).resolve().parent / "data" / "project"


def test_feeds_load_into_records(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(
        '[[feeds]]\nurl = " https://ex.example/rss "\npublisher = "Example News"\ntags = ["Visa", "china"]\n\n'
        '[[feeds]]\nurl = "http://other.example/atom.xml"\n',
        encoding="utf-8",
    )
    assert load_feeds(path) == [
        Feed(url="https://ex.example/rss", publisher="Example News", tags=("visa", "china")),
        Feed(url="http://other.example/atom.xml", publisher=None, tags=()),
    ]


def test_sample_feed_list_is_valid_and_names_publishers_or_is_google_news() -> None:
    # The fixture keeps a copy of the sample list the project started with; the live list is content,
    # checked by `pipeline sources` and `pipeline fetch`, never by this suite.
    feeds = load_feeds(FIXTURE / "sources" / "feeds.toml")
    assert 8 <= len(feeds) <= 15
    for feed in feeds:
        # Google News searches name each item's publisher in <source>; every other feed names its own.
        assert feed.publisher or feed.url.startswith("https://news.google.com/"), feed.url


GOOD = '[[feeds]]\nurl = "https://good.example/rss"\npublisher = "Good"\n\n'

BAD_FILES = {
    "toml-error": (GOOD + '[[feeds]]\nurl = "https://broken.example/rss\n', ["not valid TOML in feed #2", "line 6", "fix the syntax"]),
    "unknown-key": (
        GOOD + '[[feeds]]\nurl = "https://typo.example/rss"\npublsher = "Typo"\n',
        ["feed #2 (https://typo.example/rss)", "unknown key 'publsher'", "allowed keys are url, publisher, tags"],
    ),
    "missing-url": (
        GOOD + '[[feeds]]\npublisher = "No Address"\n',
        ["feed #2 (publisher 'No Address')", "missing 'url'", 'url = "https://'],
    ),
    "non-http-url": (
        GOOD + '[[feeds]]\nurl = "ftp://files.example/rss"\n',
        ["feed #2 (ftp://files.example/rss)", "http:// or https://"],
    ),
    "relative-url": (GOOD + '[[feeds]]\nurl = "/rss.xml"\n', ["feed #2 (/rss.xml)", "http:// or https://"]),
    "duplicate-url": (
        GOOD + '[[feeds]]\nurl = "https://good.example/rss"\npublisher = "Again"\n',
        ["feed #2 (https://good.example/rss)", "same url as feed #1", "remove one"],
    ),
    "tags-not-a-list": (
        GOOD + '[[feeds]]\nurl = "https://tags.example/rss"\ntags = "visa"\n',
        ["feed #2 (https://tags.example/rss)", "'tags' must be a list of strings"],
    ),
    "unknown-top-level": ('title = "My feeds"\n' + GOOD, ["unknown top-level key 'title'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_feeds_file_stops_fetch_with_one_line_and_writes_nothing(project: Path, case: str) -> None:
    text, expected = BAD_FILES[case]
    feeds_path = project / "sources" / "feeds.toml"
    feeds_path.write_text(text, encoding="utf-8")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))

    result = CliRunner().invoke(cli, ["--root", str(project), "fetch"])

    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # click's exit, not an uncaught error
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith(f"Error: {feeds_path}: ")
    for fragment in expected:
        assert fragment in line
    assert result.stdout == ""
    # Nothing written: no item store, no lock file, nothing else new in the project.
    assert not (project / "pipeline.sqlite3").exists()
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


@pytest.mark.parametrize("case", ["unknown-key", "duplicate-url"])
def test_load_feeds_raises_config_error_carrying_the_path(tmp_path: Path, case: str) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(BAD_FILES[case][0], encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_feeds(path)
    assert caught.value.path == path


def test_missing_feeds_file_says_how_to_create_it(project: Path) -> None:
    (project / "sources" / "feeds.toml").unlink()
    result = CliRunner().invoke(cli, ["--root", str(project), "fetch"])
    assert result.exit_code != 0
    assert "feeds.toml: not found; create it with [[feeds]] tables" in result.stderr
    assert not (project / "pipeline.sqlite3").exists()

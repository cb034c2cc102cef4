"""Bad input as a user meets it: each case ends in one line naming the file (or feed) and the fix,
a non-zero exit where the user must act, and never a traceback or a silently wrong result."""

from __future__ import annotations

import datetime as dt
import email.utils
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import Route, write_feeds

from pipeline.cli import cli
from pipeline.errors import StoreError
from pipeline.store import open_store

EPOCH = 1_790_000_000  # 2026-09-21


def run(root: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """The CLI in-process; an unexpected exception propagates, so a traceback fails the test."""
    settings: dict[str, str | None] = {"SOURCE_DATE_EPOCH": str(EPOCH), "PIPELINE_MODEL": "",
                                       "PIPELINE_LOCK_WAIT": None}
    settings.update(env or {})
    return CliRunner().invoke(cli, ["--root", str(root), *args], env=settings, catch_exceptions=False)


def rss(*titles: str) -> bytes:
    when = email.utils.format_datetime(dt.datetime.fromtimestamp(EPOCH - 86_400, dt.timezone.utc))
    items = "".join(f"<item><title>{t}</title><link>http://example.com/{i}</link><guid>g{i}</guid>"
                    f"<pubDate>{when}</pubDate></item>" for i, t in enumerate(titles))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>News</title>'
            f"<link>http://example.com/</link>{items}</channel></rss>").encode()


def test_output_that_is_a_file_is_named_instead_of_a_traceback(project: Path) -> None:
    (project / "output").rmdir()
    (project / "output").write_text("notes\n", encoding="utf-8")
    result = run(project, "build", "--offline")
    assert result.exit_code == 1
    assert f"{project / 'output'}: cannot be made the drafts folder" in result.stderr
    assert (project / "output").read_text(encoding="utf-8") == "notes\n"  # nothing of the user's lost


def test_lock_path_that_is_a_folder_is_named_instead_of_a_traceback(project: Path) -> None:
    (project / ".pipeline.lock").mkdir()
    for args in (("build", "--offline"), ("refresh",), ("fetch",)):
        result = run(project, *args)
        assert result.exit_code == 1, args
        assert f"{project / '.pipeline.lock'}: cannot open the lock file" in result.stderr
        assert "remove" in result.stderr


def test_source_date_epoch_beyond_year_9999_is_a_config_error(project: Path) -> None:
    result = run(project, "build", "--offline", env={"SOURCE_DATE_EPOCH": "99999999999999999"})
    assert result.exit_code == 1
    assert "SOURCE_DATE_EPOCH: must be whole seconds since 1970" in result.stderr


def test_feed_url_with_broken_ipv6_host_or_port_is_named(project: Path) -> None:
    for url, words in (("http://[::1/feed", "not a valid URL"), ("http://example.com:abc/feed", "not a valid URL"),
                       ("http://example.com:99999/feed", "not a valid URL"),
                       ("http://example.com/feed\\u0000", "control character")):
        (project / "sources" / "feeds.toml").write_text(f'[[feeds]]\nurl = "{url}"\n', encoding="utf-8")
        result = run(project, "fetch")
        assert result.exit_code == 1, url
        assert f"{project / 'sources' / 'feeds.toml'}: feed #1" in result.stderr, url
        assert words in result.stderr, url


def test_feed_host_that_idna_cannot_encode_fails_alone(project: Path, feed_server) -> None:
    # urlsplit accepts a zero-width space in a host; the HTTP client refuses it before any request.
    feed_server.routes["/good.xml"] = Route(rss("Alipay adds a card option"))
    write_feeds(project, {"url": "http://bad\u200bhost.example/feed", "publisher": "Bad"},
                {"url": feed_server.url("/good.xml"), "publisher": "Good"})
    result = run(project, "fetch")
    assert result.exit_code == 0  # one feed worked
    assert "feed http://bad\u200bhost.example/feed: invalid url" in result.stderr
    assert "fix it in sources/feeds.toml" in result.stderr
    assert "1 ok" in result.stdout


def test_feeds_toml_saved_with_a_bom_is_read(project: Path, feed_server) -> None:
    feed_server.routes["/feed.xml"] = Route(rss("Alipay adds a card option"))
    text = f'[[feeds]]\nurl = "{feed_server.url("/feed.xml")}"\n'
    (project / "sources" / "feeds.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = run(project, "fetch")
    assert result.exit_code == 0, result.stderr
    assert "1 ok" in result.stdout


def test_duplicate_status_key_in_a_draft_is_refused_not_half_set(project: Path) -> None:
    assert run(project, "build", "--offline").exit_code == 0
    draft = project / "output" / "mobile-payments.md"
    text = draft.read_text(encoding="utf-8")
    assert "\nstatus: draft\n" in text
    draft.write_text(text.replace("\nstatus: draft\n", "\nstatus: approved\nstatus: draft\n", 1), encoding="utf-8")
    before = draft.read_bytes()
    result = run(project, "status", str(draft), "in-review")
    assert result.exit_code == 1
    assert "key 'status' appears twice" in result.stderr and str(draft) in result.stderr
    assert draft.read_bytes() == before  # refused, not written with one of the two lines changed
    checked = run(project, "check", str(draft))
    assert checked.exit_code != 0
    assert "key 'status' appears twice" in checked.stdout


def test_draft_with_a_bom_says_so(project: Path) -> None:
    assert run(project, "build", "--offline").exit_code == 0
    draft = project / "output" / "mobile-payments.md"
    draft.write_bytes(b"\xef\xbb\xbf" + draft.read_bytes())
    before = draft.read_bytes()
    result = run(project, "build", "--offline")
    assert result.exit_code == 1
    assert f"{draft}:1: starts with a byte order mark (BOM); save it as UTF-8 without BOM" in result.stderr
    assert draft.read_bytes() == before


def test_duplicate_key_in_a_guide_is_refused(project: Path) -> None:
    guide = project / "templates" / "guides" / "mobile-payments.md"
    text = guide.read_text(encoding="utf-8")
    guide.write_text(text.replace("---\n", '---\ntitle: "First title"\n', 1), encoding="utf-8")
    result = run(project, "build", "--offline")
    assert result.exit_code == 1
    assert f"{guide}:3: front matter key 'title' appears twice (first on line 2)" in result.stderr
    assert not (project / "output" / "mobile-payments.md").exists()


def test_missing_guides_folder_fails_instead_of_building_nothing(project: Path) -> None:
    for guide in (project / "templates" / "guides").iterdir():
        guide.unlink()
    (project / "templates" / "guides").rmdir()
    for args in (("build", "--offline"), ("refresh",)):
        result = run(project, *args)
        assert result.exit_code == 1, args
        assert f"{project / 'templates' / 'guides'}: no guides folder here" in result.stderr


def test_a_hand_edited_store_value_is_a_store_error_not_a_traceback(project: Path) -> None:
    import sqlite3

    assert run(project, "build", "--offline").exit_code == 0
    store = project / "pipeline.sqlite3"
    with sqlite3.connect(store) as db:
        db.execute("INSERT INTO items (feed_url, guid, headline, source, date, url, first_seen) "
                   "VALUES ('https://x.example/feed', 'g', 'WeChat news', 'X', 'garbage', 'https://x.example/a', "
                   "'2026-01-01T00:00:00+00:00')")
    for command in (["items"], ["build", "--offline"]):
        result = run(project, *command)
        assert result.exit_code == 1, command
        assert f"{store}: holds a value the pipeline cannot read" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_quoted_front_matter_key_is_replaced_not_repeated(project: Path) -> None:
    from pipeline.drafts import set_front_matter_key

    text = "\"title\": Old  # kept\n'lastmod': '2026-01-01T00:00:00Z'\nslug: x\n"
    updated = set_front_matter_key(set_front_matter_key(text, "title", "New"), "lastmod", "2026-02-02T00:00:00Z")
    assert updated.count("title") == 1 and updated.count("lastmod") == 1
    assert "title: New\n" in updated and "# kept" in updated and "lastmod: '2026-02-02T00:00:00Z'\n" in updated


def test_a_root_that_does_not_exist_is_named_and_nothing_is_created(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-project"
    for command in (["items"], ["fetch"], ["build", "--offline"], ["sources"]):
        result = run(missing, *command)
        assert result.exit_code == 2, result.output
        assert f"Directory '{missing}' does not exist" in result.output
    assert not missing.exists()  # the lock used to create the folder it was given


def test_a_store_in_a_missing_folder_says_so() -> None:
    with pytest.raises(StoreError, match="its folder does not exist; check --root"):
        open_store(Path("/no/such/folder/pipeline.sqlite3"))


def test_blank_lines_a_reviewer_put_between_front_matter_keys_stay() -> None:
    from pipeline.drafts import set_front_matter_key

    text = "title: Old\n\ntags:\n  - a\n\n  - b\n\n\nstatus: draft\n"
    updated = set_front_matter_key(set_front_matter_key(text, "tags", ["c"]), "title", "New")
    assert updated == "title: New\n\ntags:\n  - c\n\n\nstatus: draft\n"


OLD_STORE = """
CREATE TABLE feeds (url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, last_attempt TEXT, last_success TEXT,
                    last_status TEXT, last_error TEXT, consecutive_failures INTEGER NOT NULL DEFAULT 0,
                    retry_after TEXT);
CREATE TABLE items (feed_url TEXT NOT NULL, guid TEXT NOT NULL, headline TEXT NOT NULL, source TEXT NOT NULL,
                    date TEXT, url TEXT NOT NULL, first_seen TEXT NOT NULL, PRIMARY KEY (feed_url, guid));
INSERT INTO feeds (url, etag) VALUES ('https://news.example/rss', '"v1"');
INSERT INTO items VALUES ('https://news.example/rss', 'g1', 'Kept through the upgrade', 'Pub', '2026-03-01',
                          'https://news.example/1', '2026-03-01T00:00:00+00:00');
"""


def test_a_store_from_before_a_column_or_table_existed_is_upgraded_in_place(project: Path) -> None:
    import sqlite3

    from pipeline.store import SCHEMA_VERSION

    path = project / "pipeline.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_STORE)
    result = run(project, "items", "--json")
    assert result.exit_code == 0, result.output
    assert "Kept through the upgrade" in result.output
    with open_store(path) as store:
        assert store.feed_state("https://news.example/rss").etag == '"v1"'  # moved_to column added
        assert store.fingerprints() == {}  # a table added since
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_store_from_a_newer_pipeline_is_refused_untouched(project: Path) -> None:
    import sqlite3

    path = project / "pipeline.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_STORE + "PRAGMA user_version = 99;")
    before = path.read_bytes()
    result = run(project, "items")
    assert result.exit_code == 1
    assert "written by a newer pipeline (store version 99" in result.output
    assert "Traceback" not in result.output
    assert path.read_bytes() == before


def test_an_up_to_date_store_the_user_may_only_read_still_opens(project: Path) -> None:
    import sqlite3

    path = project / "pipeline.sqlite3"
    open_store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 0")  # as every store made before versions existed
    with open_store(path) as store:  # nothing to add, so nothing is written: not even the version
        assert store.items() == []
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    finally:
        db.close()

"""A shared PostgreSQL store: one-line errors, nothing imported without it, copying stores both ways."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import project_store, write_feeds
from pgserver import PgServer
from review_support import EPOCH, run

from pipeline.models import Item
from pipeline.store import open_store

NOW = dt.datetime.fromtimestamp(EPOCH, tz=dt.timezone.utc)  # the time the CLI runs at


def use_store(root: Path, url: str) -> None:
    (root / "pyproject.toml").write_text(f'[tool.pipeline]\nstore = "{url}"\n', encoding="utf-8")


def news(count: int) -> list[Item]:
    return [Item("https://news.example/rss", f"g{n}", f"Alipay news number {n}", "Pub", NOW.date() - dt.timedelta(days=1 + n % 20),
                 f"https://news.example/{n}") for n in range(count)]


def test_with_no_store_configured_nothing_of_postgresql_is_imported(project: Path) -> None:
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from pipeline.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['--root', {str(project)!r}, 'build', '--offline'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_binary', 'pipeline')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pipeline.store_sqlite" in out.stdout  # it did open a store
    assert "psycopg" not in out.stdout and "store_postgres" not in out.stdout
    assert (project / "pipeline.sqlite3").is_file()


def test_a_postgresql_url_without_the_driver_says_how_to_install_it(project: Path) -> None:
    use_store(project, "postgresql://team:secret@db.example/guides")
    # A None in sys.modules makes `import psycopg` fail, as it does where the extra is not installed.
    script = (
        "import sys\nsys.modules['psycopg'] = None\n"
        "from click.testing import CliRunner\nfrom pipeline.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['--root', {str(project)!r}, 'items'])\n"
        "print(result.exit_code, result.output)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == (
        "1 Error: postgresql://team:***@db.example/guides: a PostgreSQL store needs the psycopg driver; install "
        "it with pip install -e '.[postgres]' (or unset the store to use pipeline.sqlite3)")


def one_error_line(root: Path) -> str:
    result = run(root, "items")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_wrong_password_names_the_url_without_it_and_the_fix(project: Path, pg_server: PgServer) -> None:
    url = pg_server.create_database()
    use_store(project, url.replace(":throwaway-pw@", ":wrong-pw@"))
    line = one_error_line(project)
    assert line.startswith(f"Error: {url.replace(':throwaway-pw@', ':***@')}: the server refused the login (")
    assert "check the user and password" in line and "wrong-pw" not in line


def test_a_missing_database_says_how_to_create_it(project: Path, pg_server: PgServer) -> None:
    use_store(project, pg_server.url("nosuchdb"))
    line = one_error_line(project)
    assert "the database 'nosuchdb' does not exist on the server; create it (createdb nosuchdb" in line
    assert "throwaway-pw" not in line


def test_an_unreachable_server_is_one_line(project: Path) -> None:
    from pgserver import free_port

    use_store(project, f"postgresql://team:secret@127.0.0.1:{free_port()}/guides")
    line = one_error_line(project)
    assert "postgresql://team:***@127.0.0.1:" in line
    assert "cannot reach the PostgreSQL server (" in line and "check it is running" in line


def test_a_store_setting_that_is_not_a_postgresql_url_is_refused(project: Path) -> None:
    use_store(project, "mysql://team:secret@db/guides")
    result = run(project, "items")
    assert result.exit_code == 1
    assert "store must be a postgresql://user@host/database URL, not a 'mysql' one" in result.stderr
    assert "secret" not in result.stderr
    result = run(project, "items", env={"PIPELINE_STORE": "elsewhere.sqlite3"})
    assert "PIPELINE_STORE: store must be a postgresql://" in result.stderr


def test_pipeline_store_env_wins_over_the_project_file(project: Path, pg_server: PgServer) -> None:
    url = pg_server.create_database()
    with open_store(url) as store:
        store.save_items(news(1), NOW)
    result = run(project, "items", "--json", env={"PIPELINE_STORE": url})
    assert result.exit_code == 0, result.stderr
    assert "Alipay news number 0" in result.stdout
    assert not (project / "pipeline.sqlite3").exists()


def table_rows(location: str) -> dict[str, list[tuple[object, ...]]]:
    with open_store(location) as store:
        return {table: sorted(store.dump(table)[1], key=repr) for table in store.tables()}


def test_store_copy_moves_sqlite_into_postgresql_and_back_and_the_next_build_changes_no_draft(
        project: Path, pg_server: PgServer) -> None:
    write_feeds(project, {"url": "https://news.example/rss", "publisher": "Pub", "tags": ["payments"]})
    sqlite = str(project / "pipeline.sqlite3")
    with open_store(sqlite) as store:
        store.save_items(news(30), NOW)
    assert run(project, "build", "--offline").exit_code == 0
    drafts = {p.name: p.read_bytes() for p in (project / "output").glob("*.md")}
    assert b"Alipay news number" in drafts["mobile-payments.md"]  # the drafts depend on the store
    url = pg_server.create_database()

    result = run(project, "store", "copy", sqlite, url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"copied {result.stdout.split()[1]} rows to {url.replace(':throwaway-pw@', ':***@')}: ")
    assert table_rows(url) == table_rows(sqlite)

    use_store(project, url)
    rebuilt = run(project, "build", "--offline")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert {p.name: p.read_bytes() for p in (project / "output").glob("*.md")} == drafts

    back = str(project / "back.sqlite3")
    assert run(project, "store", "copy", url, back).exit_code == 0
    assert table_rows(back) == table_rows(url)


def test_store_copy_refuses_a_target_that_holds_rows_unless_forced(project: Path, pg_server: PgServer) -> None:
    source, target = str(project / "a.sqlite3"), pg_server.create_database()
    with open_store(source) as store:
        store.save_items(news(3), NOW)
    with open_store(target) as store:
        store.save_items(news(5), NOW)
        store.save_fingerprints({"visa": "abc"})
    refused = run(project, "store", "copy", source, target)
    assert refused.exit_code == 1
    assert "already holds rows (5 in items, 1 in fingerprints); pass --force" in refused.stderr
    assert len(table_rows(target)["items"]) == 5  # untouched
    forced = run(project, "store", "copy", "--force", source, target)
    assert forced.exit_code == 0, forced.stderr
    assert table_rows(target) == table_rows(source)


def test_store_copy_from_a_file_that_does_not_exist_creates_nothing(project: Path) -> None:
    result = run(project, "store", "copy", str(project / "nope.sqlite3"), str(project / "out.sqlite3"))
    assert result.exit_code == 1
    assert "nope.sqlite3: no such store file" in result.stderr
    assert not (project / "nope.sqlite3").exists() and not (project / "out.sqlite3").exists()


@pytest.mark.both_backends
def test_project_store_follows_the_configuration(project: Path, backend: str) -> None:
    with project_store(project) as store:
        assert store.location.startswith("postgresql://") == (backend == "postgresql")

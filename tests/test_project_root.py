"""The project is found, not guessed: like git, commands walk up to the folder holding sources/feeds.toml
(or pyproject.toml with [tool.pipeline]); outside any project they say so and create nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.config import find_root

COMMANDS = [["build", "--offline"], ["fetch"], ["refresh"], ["items"], ["sources"], ["check"],
            ["status", "output/x.md", "approved"], ["new", "Renting a flat"]]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_command_run_from_a_subfolder_works_on_the_project_above(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project / "templates" / "guides")
    code, out, err = run("build", "--offline")
    assert code == 0, err
    assert sorted(p.name for p in (project / "output").glob("*.md")) == ["mobile-payments.md", "wechat-encryption.md"]
    assert not (project / "templates" / "guides" / "output").exists()
    assert (project / "pipeline.sqlite3").is_file()


def test_pyproject_with_a_pipeline_table_marks_the_project_and_one_without_is_walked_past(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    root = tmp_path / "site"
    (root / "docs" / "tool").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "site"\n\n[tool.pipeline]\n', encoding="utf-8")
    (root / "docs" / "tool" / "pyproject.toml").write_text('[project]\nname = "other"\n', encoding="utf-8")
    monkeypatch.chdir(root / "docs" / "tool")
    assert find_root() == root.resolve()
    code, _, err = run("items")
    assert code == 0, err
    assert (root / "pipeline.sqlite3").is_file()  # the store lives at the root, not where the command ran
    assert not (root / "docs" / "tool" / "pipeline.sqlite3").exists()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_outside_any_project_each_command_says_so_in_one_line_naming_root_and_creates_nothing(
        tmp_path: Path, monkeypatch, command: list[str]) -> None:
    elsewhere = tmp_path / "downloads"
    (elsewhere / "output").mkdir(parents=True)
    (elsewhere / "sources").mkdir()  # a folder called sources/ is not a project without feeds.toml
    assert find_root(elsewhere) is None, "a folder above the test's tmp_path looks like a project"
    before = files_under(elsewhere)
    monkeypatch.chdir(elsewhere)
    code, out, err = run(*command)
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "not inside a pipeline project" in lines[0] and "--root" in lines[0]
    assert files_under(elsewhere) == before


@pytest.mark.parametrize("command", [["items"], ["status", "output/x.md", "approved"]], ids=" ".join)
def test_a_root_that_is_not_a_project_gets_no_store_and_no_lock(tmp_path: Path, command: list[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    code, out, err = run("--root", str(folder), *command)
    assert code == 1, (out, err)
    assert f"{folder.resolve()}: not a pipeline project" in err and "--root" in err
    assert list(folder.iterdir()) == []  # items used to create an empty pipeline.sqlite3 here


def test_build_takes_a_guide_path_as_well_as_a_slug(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)
    code, _, err = run("build", "--offline", os.path.join("templates", "guides", "mobile-payments.md"))
    assert code == 0, err
    assert [p.name for p in (project / "output").glob("*.md")] == ["mobile-payments.md"]
    monkeypatch.chdir(project.parent)
    code, _, err = run("--root", str(project), "build", "--offline", "templates/guides/wechat-encryption.md")
    assert code == 0, err
    assert (project / "output" / "wechat-encryption.md").is_file()


def test_build_refuses_a_path_that_is_not_a_guide(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)
    run("build", "--offline", "mobile-payments")
    before = (project / "output" / "mobile-payments.md").read_bytes()
    code, _, err = run("build", "--offline", "output/mobile-payments.md")
    assert code == 1
    assert "output/mobile-payments.md: not a guide; guides are" in err and "templates/guides/SLUG.md" in err
    assert (project / "output" / "mobile-payments.md").read_bytes() == before

"""README and CLI agree: every command and option in the README's commands table exists, and every
command and option of the CLI (read from click, so a new command is seen) is in that table."""

from __future__ import annotations

import re
import subprocess
import sys

import click
import pytest

from conftest import REPO
from pipeline.cli import cli

README = (REPO / "README.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| `pipeline ([^`]*)` \|", re.MULTILINE)
LONG_OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def cli_commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """'store copy' -> its long options, for every command under the group."""
    found: dict[str, set[str]] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(cli_commands(command, (*path, name)))
        else:
            options = {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}
            found[" ".join((*path, name))] = options - {"--help"}
    return found


def readme_commands() -> dict[str, set[str]]:
    """The commands table: command path -> the long options its row names."""
    found: dict[str, set[str]] = {}
    for row in ROW.findall(README):
        words, group, path = row.split(), cli, []
        for word in words:
            command = group.commands.get(word) if isinstance(group, click.Group) else None
            if command is None:
                break
            path.append(word)
            group = command
        assert path, f"README row `pipeline {row}` names no command of the CLI"
        found.setdefault(" ".join(path), set()).update(LONG_OPTION.findall(row))
    return found


def test_every_cli_command_is_in_the_readme_table_with_every_option() -> None:
    documented = readme_commands()
    for command, options in cli_commands().items():
        assert command in documented, f"`pipeline {command}` is missing from README's commands table"
        assert options <= documented[command], (
            f"`pipeline {command}` options missing from README: {sorted(options - documented[command])}")


def test_every_readme_command_and_option_exists() -> None:
    commands = cli_commands()
    for command, options in readme_commands().items():
        assert command in commands, f"README lists `pipeline {command}`, which the CLI does not have"
        assert options <= commands[command], (
            f"README lists options `pipeline {command}` does not have: {sorted(options - commands[command])}")


def test_the_global_options_are_documented() -> None:
    options = {o for p in cli.params for o in p.opts if o.startswith("--")} - {"--help"}
    assert options and all(f"`{option}" in README or f"`pipeline {option}" in README for option in options), options


@pytest.mark.skipif(subprocess.run([sys.executable, "-m", "radon", "--version"], capture_output=True).returncode,
                    reason="radon is not installed (pip install -e '.[test]')")
def test_no_function_in_the_package_is_above_complexity_20() -> None:
    done = subprocess.run([sys.executable, "-m", "radon", "cc", "-n", "D", "pipeline"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # `radon cc -n D` lists every function of rank D or worse (complexity 21 and up): it must list none.
    assert not done.stdout.strip(), f"functions above cyclomatic complexity 20 (split them):\n{done.stdout}"


def test_every_check_rule_is_in_the_readme_rule_table() -> None:
    from pipeline import check, guide_due, unfinished

    rules = {value for name, value in vars(check).items() if name.startswith("RULE_")} | set(unfinished.RULES)
    rules |= {guide_due.RULE_DUE, guide_due.RULE_TIME_RELATIVE}  # found in guide files, for the drafts checked
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", README.split("## Release check", 1)[1], re.MULTILINE))
    assert rules == documented

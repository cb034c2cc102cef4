"""Every command's --help carries an example, shown as written (not rewrapped by click)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import cli

COMMANDS = sorted(cli.commands)


def example_lines(command: click.Command) -> list[str]:
    """The lines of the docstring's example block, as the author wrote them."""
    help_text = command.help or ""
    assert "Example:" in help_text, f"`pipeline {command.name}` has no 'Example:' in its help"
    block = help_text.split("Example:", 1)[1]
    return [line.strip() for line in block.splitlines() if line.strip() and line.strip() != "\b"]


def help_output(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_covered() -> None:
    # Commands added later are picked up by iterating cli.commands; this guards against an empty group.
    assert {"fetch", "items", "build", "refresh", "sources", "status"} <= set(COMMANDS)


@pytest.mark.parametrize("name", [None, *COMMANDS])
def test_help_shows_the_example_line_by_line(name: str | None) -> None:
    command = cli if name is None else cli.commands[name]
    output = help_output(*([name] if name else []))
    shown = [line.strip() for line in output.splitlines()]
    assert "Example:" in shown
    lines = example_lines(command)
    assert lines, "the example block is empty"
    assert any(line.startswith("pipeline") for line in lines), f"the example never runs pipeline: {lines}"
    for line in lines:
        assert line in shown, f"`pipeline {name or ''} --help` rewrapped the example line {line!r}:\n{output}"
    too_wide = [line for line in output.splitlines() if line.strip() in lines and len(line) > 80]
    assert not too_wide, too_wide

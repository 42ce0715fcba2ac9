"""Every command's ``--help`` renders: help texts are plain text, whatever brackets they hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from provisor.cli.main import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command's path in the tree, groups included (typer carries its own click)."""
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_tree_has_every_command_group() -> None:
    tops = {path[0] for path in COMMANDS if path}
    assert {"serve", "tenant", "token", "schema", "demo"} <= tops


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "provisor")
def test_help_renders(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output or repr(result.exception)
    assert result.output.startswith("Usage: provisor")


def test_brackets_in_a_help_text_are_shown_as_written() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200)
    assert "https://scim.example.com[/prefix]" in result.output

"""Every command's ``--help`` (and ``-h``) prints each option's help whole, defaults included."""

from __future__ import annotations

import re

import click
import pytest
import typer
from typer.testing import CliRunner

from helpers.cli import overspec
from overspec.cli import app

GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)  # iterated from the app, so a new command is covered without editing this test


def _squash(text: str) -> str:
    """Text without whitespace: click wraps help at the terminal width (and may break after hyphens)."""
    return re.sub(r"\s+", "", text)


def _help_texts(command: click.Command, ctx: click.Context) -> list[str]:
    texts = [command.help or ""]
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record:
            texts.append(record[1])  # the help plus click's extras: [default: ...], [required], [x>=1]
    return [t for t in texts if t]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_keeps_every_text_whole(name):
    command = GROUP.commands[name]
    runner = CliRunner()
    long, short = (runner.invoke(app, [name, flag]) for flag in ("--help", "-h"))
    assert long.exit_code == 0 and short.exit_code == 0, long.output
    assert long.output == short.output
    printed = _squash(long.output)
    with click.Context(command, info_name=name) as ctx:
        for text in _help_texts(command, ctx):
            assert _squash(text) in printed, f"`overspec {name} --help` lost text of: {text!r}"


def test_bracketed_default_survives_in_a_fresh_process():
    """The text rich markup used to eat: `overspec eval -h` as a user runs it."""
    result = overspec("eval", "-h")
    assert result.returncode == 0, result.stderr
    assert "[default: 16 on a CPU, 64 on a GPU]" in " ".join(result.stdout.split())
    assert "[default: zeroshot]" in " ".join(result.stdout.split())

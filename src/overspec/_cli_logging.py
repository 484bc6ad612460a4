"""``-q/--quiet`` and ``-v/--verbose`` on ``overspec`` and on every one of its commands, a command added later
included: the app's group gives them to each command it holds (``_log.configure`` does the rest)."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from overspec import _log

_CHOSEN = "overspec.verbosity"  # where a command line's choice is kept (its root context's meta)


def _choose(level: int, flag: str):
    def callback(ctx: typer.Context, value: bool) -> None:
        if not value:
            return
        chosen = ctx.find_root().meta.setdefault(_CHOSEN, (level, flag))
        if chosen[0] != level:
            raise typer.BadParameter(f"{chosen[1]} and {flag} contradict each other; give one")
        _log.configure(level)

    return callback


def _template(
    quiet: Annotated[
        bool,
        typer.Option(
            "-q",
            "--quiet",
            is_eager=True,
            expose_value=False,
            callback=_choose(_log.QUIET, "--quiet"),
            help="Warnings and errors only: no progress bars, no info lines.",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "-v",
            "--verbose",
            is_eager=True,
            expose_value=False,
            callback=_choose(_log.VERBOSE, "--verbose"),
            help="Debug lines too (e.g. where a run's records go).",
        ),
    ] = False,
) -> None:
    """The options, declared as any command's are, so typer builds them for the click it parses with."""


def verbosity_options() -> list:
    holder = typer.Typer(add_completion=False)
    holder.command()(_template)
    return list(typer.main.get_command(holder).params)


class LoggingGroup(TyperGroup):
    """The ``overspec`` group: -q/-v before the command or after it, for that command line only (a process may run
    several, e.g. tests)."""

    def __init__(self, **attrs) -> None:
        super().__init__(**attrs)
        self.params.extend(verbosity_options())
        for command in self.commands.values():
            command.params.extend(verbosity_options())

    def main(self, *args, **kwargs):
        before = _log.logger().level
        _log.configure(_log.NORMAL)
        try:
            return super().main(*args, **kwargs)
        finally:  # Python code that runs a command line, then calls overspec itself, is not left quiet
            _log.configure(before)

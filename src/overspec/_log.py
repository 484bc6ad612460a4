"""overspec's messages: stdlib ``logging`` under the ``overspec`` logger, on stderr.

On a terminal, rich's ``RichHandler`` renders them on the console the progress bars use (a line logged during a
bar prints above it). Elsewhere (a pipe, a file, CI) each record is one plain line that grep finds whole, which
rich would wrap and pad: an info line as is, others as ``overspec: warning: ...``. A warning is said once per process.
The handler is overspec's own (``propagate`` off), so a warning reaches the user whether or not the program around
overspec configured logging. ``-q/--quiet`` keeps warnings and errors only (no progress bars, no info lines);
``-v/--verbose`` adds debug lines (``configure``).
"""

from __future__ import annotations

import logging
import sys
from functools import lru_cache

ROOT = "overspec"
QUIET, NORMAL, VERBOSE = logging.WARNING, logging.INFO, logging.DEBUG


@lru_cache(maxsize=1)
def console():
    """The stderr console shared by the log handler and the progress bars (it writes to ``sys.stderr`` as it is at
    each write)."""
    from rich.console import Console

    return Console(stderr=True)


class _Stderr(logging.StreamHandler):
    """A plain handler on ``sys.stderr`` as it is at each record, not as it was when the handler was made."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _) -> None:
        pass


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno == logging.INFO else f"overspec: {record.levelname.lower()}: {text}"


class _Once(logging.Filter):
    """Each warning once per process (a loader's warning would otherwise repeat for every cell that reads it)."""

    def __init__(self) -> None:
        super().__init__()
        self.said: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        text = record.getMessage()
        if text in self.said:
            return False
        self.said.add(text)
        return True


def _handler() -> logging.Handler:
    if console().is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=console(), show_time=False, show_path=False, markup=False)
    else:
        handler = _Stderr()
        handler.setFormatter(_Plain("%(message)s"))
    handler.addFilter(_Once())
    handler.set_name(ROOT)
    return handler


def logger(name: str = ROOT) -> logging.Logger:
    """The logger of ``name`` (a module's ``__name__``), overspec's handler installed on first use."""
    root = logging.getLogger(ROOT)
    if not any(h.get_name() == ROOT for h in root.handlers):
        root.addHandler(_handler())
        root.propagate = False
        if root.level == logging.NOTSET:
            root.setLevel(NORMAL)
    return logging.getLogger(name)


def configure(level: int) -> None:
    """QUIET, NORMAL or VERBOSE for every overspec logger (and the progress bars, which follow INFO)."""
    logger().setLevel(level)


def chatty() -> bool:
    """Whether info lines and progress bars show (not ``--quiet``)."""
    return logger().isEnabledFor(logging.INFO)


class InfoLines:
    """The CLI's running commentary (``err.print(line, markup=False, ...)``) as info records of ``overspec.cli``, so
    ``-q`` silences it; error lines go to a console of their own."""

    def print(self, text: object, **_) -> None:
        logger("overspec.cli").info(str(text))

"""One rich progress bar on stderr, shared by feature extraction, training and the probe's fits (silent when disabled
or under ``--quiet``); it draws on the log handler's console, so a line logged meanwhile prints above it.

``steps`` counts work whose total is not known in advance (the probe's fits along its regularisation path) from
inside the code doing it: ``step()`` advances the innermost open ``steps`` bar of this thread or task, and does nothing
where none is open (a fit called on its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_open_steps: ContextVar[Callable | None] = ContextVar("overspec_progress_steps", default=None)


class progress_bar:
    """``with progress_bar(enabled, description, total) as advance: advance(n, note="loss 0.3")``; ``total=None``:
    a count without an end."""

    def __init__(self, enabled: bool, description: str, total: int | None, completed: int = 0) -> None:
        from overspec._log import chatty

        self.enabled = enabled and chatty()
        self.description, self.total, self.completed = description, total, completed

    def __enter__(self):
        if not self.enabled:
            return lambda n, note=None: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from overspec._log import console

        remaining = []
        if self.total is not None:
            from rich.progress import TimeRemainingColumn

            remaining = [TimeRemainingColumn()]
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn() if self.total is not None else TextColumn("{task.completed}"),
            *(remaining or [TimeElapsedColumn()]),
            TextColumn("{task.fields[note]}"),
            console=console(),
        )
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total, completed=self.completed, note="")

        def advance(n: int, note: str | None = None) -> None:
            self.bar.update(task, advance=n, **({"note": note} if note is not None else {}))

        return advance

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()


@contextmanager
def steps(enabled: bool, description: str) -> Iterator[None]:
    """A bar counting ``step()`` calls made inside the block."""
    with progress_bar(enabled, description, None) as advance:
        token = _open_steps.set(advance)
        try:
            yield
        finally:
            _open_steps.reset(token)


def step(note: str | None = None) -> None:
    """One unit of work done, for the innermost open ``steps`` bar (if any)."""
    advance = _open_steps.get()
    if advance is not None:
        advance(1, note)

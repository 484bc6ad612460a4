"""One rich progress bar on stderr, shared by feature extraction and training (silent when disabled)."""

from __future__ import annotations


class progress_bar:
    """``with progress_bar(enabled, description, total) as advance: advance(n, note="loss 0.3")``."""

    def __init__(self, enabled: bool, description: str, total: int, completed: int = 0) -> None:
        self.enabled, self.description, self.total, self.completed = enabled, description, total, completed

    def __enter__(self):
        if not self.enabled:
            return lambda n, note=None: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=Console(stderr=True),
        )
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total, completed=self.completed, note="")

        def advance(n: int, note: str | None = None) -> None:
            self.bar.update(task, advance=n, **({"note": note} if note is not None else {}))

        return advance

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()

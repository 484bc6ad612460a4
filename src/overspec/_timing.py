"""Wall time per phase of a long command (plan, load models, evaluate, report ...), printed at its end."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def add(self, seconds: dict[str, float]) -> None:
        for name, value in seconds.items():
            self.seconds[name] += value

    def line(self) -> str:
        total = sum(self.seconds.values())
        parts = ", ".join(f"{name} {value:.1f} s" for name, value in self.seconds.items())
        return f"time per phase: {parts} (total {total:.1f} s)"

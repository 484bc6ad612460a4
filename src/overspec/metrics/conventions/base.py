"""What a metric convention is, and the score set it reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

KINDS = ("verification", "mad", "pad")


@dataclass(frozen=True)
class ScoreSet:
    """Scores of one kind, oriented so that a higher score means genuine / bona fide.

    ``sign`` maps them back to the file's scores (``file = sign * scores``); ``threshold`` is a decision
    threshold given by the user, in the oriented units. ``attack_types`` and ``videos`` are per-row strings
    when the file has those columns.
    """

    kind: str
    scores: np.ndarray
    positive: np.ndarray
    attack_types: np.ndarray | None = None
    videos: np.ndarray | None = None
    sign: float = 1.0
    threshold: float | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def subset(self, index: np.ndarray) -> ScoreSet:
        """The rows at ``index`` (repeats allowed), in that order."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return replace(
            self,
            scores=self.scores[index],
            positive=self.positive[index],
            attack_types=pick(self.attack_types),
            videos=pick(self.videos),
        )


@dataclass(frozen=True)
class Convention:
    """A named set of metric rules.

    ``metrics`` returns flat metric keys (see ``overspec.metrics.specs``); keys that are scores rather than
    metrics (e.g. ``eer_threshold``) get no interval. ``prepare`` turns the file's rows into the units the
    convention scores (e.g. one score per video). ``file_order`` says the metrics depend on row order
    (k-fold splits), so bootstrap resamples keep the file's order instead of the score order.
    """

    name: str
    kinds: tuple[str, ...]
    reference: str
    summary: str
    metrics: Callable[[ScoreSet], dict[str, float]]
    prepare: Callable[[ScoreSet], ScoreSet] | None = None
    file_order: bool = False

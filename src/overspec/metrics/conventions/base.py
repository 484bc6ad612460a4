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
    threshold given by the user, in the oriented units. Attack types, when the file names them, are integer
    codes into ``attack_names`` (-1 on bona fide rows; integers keep bootstrap resamples cheap); ``videos``
    are per-row strings when the file has that column.
    """

    kind: str
    scores: np.ndarray
    positive: np.ndarray
    attack_codes: np.ndarray | None = None
    attack_names: tuple[str, ...] = ()
    videos: np.ndarray | None = None
    sign: float = 1.0
    threshold: float | None = None

    @classmethod
    def of(cls, kind: str, scores, positive, attack_types=None, videos=None) -> ScoreSet:
        """From plain arrays; ``attack_types`` as strings (ignored on positive rows)."""
        s, p = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
        codes, names = None, ()
        if attack_types is not None:
            types = np.asarray(attack_types, dtype=object)
            names = tuple(sorted({str(t) for t in types[~p]}))
            lookup = {name: code for code, name in enumerate(names)}
            codes = np.array([-1 if b else lookup[str(t)] for t, b in zip(types, p, strict=True)], dtype=np.int64)
        return cls(kind, s, p, codes, names, None if videos is None else np.asarray(videos, dtype=object))

    @property
    def attack_types(self) -> np.ndarray | None:
        """Per-row attack type names ("" on bona fide rows)."""
        if self.attack_codes is None:
            return None
        return np.array(["", *self.attack_names], dtype=object)[self.attack_codes + 1]

    def __len__(self) -> int:
        return len(self.scores)

    def subset(self, index: np.ndarray) -> ScoreSet:
        """The rows at ``index`` (repeats allowed), in that order."""
        return replace(
            self,
            scores=self.scores[index],
            positive=self.positive[index],
            attack_codes=None if self.attack_codes is None else self.attack_codes[index],
            videos=None if self.videos is None else self.videos[index],
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

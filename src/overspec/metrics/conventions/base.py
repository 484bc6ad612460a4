"""What a metric convention is, and the score set it reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

KINDS = ("verification", "mad", "pad")


@dataclass(frozen=True)
class ScoreSet:
    """Scores of one kind, oriented so that a higher score means genuine / bona fide: what a biometric protocol
    produces and what every convention scores.

    ``sign`` maps them back to the file's scores (``file = sign * scores``); ``threshold`` is a decision
    threshold given by the user (or a protocol's development set), in the oriented units. Attack types, when
    known, are integer codes into ``attack_names`` (-1 on bona fide rows; integers keep bootstrap resamples
    cheap); ``videos``, ``subjects`` and ``pairs`` (a pair's or template pair's id) are per-row strings where
    known. Videos or subjects make the bootstrap resample them whole (``overspec.metrics.conventions.scoring``).
    """

    kind: str
    scores: np.ndarray
    positive: np.ndarray
    attack_codes: np.ndarray | None = None
    attack_names: tuple[str, ...] = ()
    videos: np.ndarray | None = None
    sign: float = 1.0
    threshold: float | None = None
    subjects: np.ndarray | None = None
    pairs: np.ndarray | None = None

    @classmethod
    def of(cls, kind: str, scores, positive, attack_types=None, videos=None, *, subjects=None, pairs=None) -> ScoreSet:
        """From plain arrays; ``attack_types`` as strings (ignored on positive rows)."""
        s, p = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
        codes, names = None, ()
        if attack_types is not None:
            types = np.asarray(attack_types, dtype=object)
            names = tuple(sorted({str(t) for t in types[~p]}))
            lookup = {name: code for code, name in enumerate(names)}
            codes = np.array([-1 if b else lookup[str(t)] for t, b in zip(types, p, strict=True)], dtype=np.int64)
        return cls(kind, s, p, codes, names, _strings(videos), subjects=_strings(subjects), pairs=_strings(pairs))

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
            subjects=None if self.subjects is None else self.subjects[index],
            pairs=None if self.pairs is None else self.pairs[index],
        )

    @property
    def counts(self) -> dict[str, int]:
        """``n_genuine``/``n_impostor`` or ``n_bonafide``/``n_attack``."""
        positive, negative = ("genuine", "impostor") if self.kind == "verification" else ("bonafide", "attack")
        n = int(np.count_nonzero(self.positive))
        return {f"n_{positive}": n, f"n_{negative}": len(self.positive) - n}


def _strings(values) -> np.ndarray | None:
    return None if values is None else np.asarray([str(v) for v in values], dtype=object)


@dataclass(frozen=True)
class Convention:
    """A named set of metric rules.

    ``metrics(data, **options)`` returns the pooled values of one score set under flat metric keys (see
    ``overspec.metrics.specs``), plus decision thresholds (``eer_threshold``, ``threshold``: scores, not
    metrics, in the file's units). ``points`` is the convention's one list of operating points per
    parameterised metric; ``per_attack`` names the metrics also reported per attack type (all bona fide
    against that type's attacks) and as their mean and worst over types. ``prepare`` turns the file's rows
    into the units the convention scores (e.g. one score per video). ``file_order`` says the metrics depend on
    row order (k-fold splits, z-score sums), so bootstrap resamples keep the file's order instead of the score
    order. ``options`` are the parameters it takes after its name (``madation:float32``).
    """

    name: str
    kinds: tuple[str, ...]
    reference: str
    summary: str
    metrics: Callable[..., dict[str, float]]
    points: dict[str, tuple[float, ...]] = field(default_factory=dict)
    per_attack: tuple[str, ...] = ()
    prepare: Callable[..., ScoreSet] | None = None
    file_order: bool = False
    options: tuple[str, ...] = ()

"""The one validated score-and-label core every score-based metric shares.

Convention everywhere: ``positive`` marks genuine pairs (verification) or bona fide presentations
(MAD/PAD); a higher score means more likely positive; a sample is *accepted* (called positive) when
``score >= threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from overspec.errors import DataError


def check_scores(scores, positive, *, what: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(scores as float64, positive as bool)``.

    Both must be 1-D with the same length, scores finite, ``positive`` boolean or 0/1, and both classes
    present. Raises ``DataError`` saying which rule failed (and the first offending index).
    """
    s = np.asarray(scores)
    p = np.asarray(positive)
    if s.ndim != 1 or p.ndim != 1:
        raise DataError(f"{what}: scores and labels must be 1-D, got shapes {s.shape} and {p.shape}")
    if len(s) != len(p):
        raise DataError(f"{what}: {len(s)} scores but {len(p)} labels")
    if not np.issubdtype(s.dtype, np.number) or np.issubdtype(s.dtype, np.complexfloating):
        raise DataError(f"{what}: scores must be real numbers, got dtype {s.dtype}")
    s = s.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(s))
    if len(bad):
        raise DataError(f"{what}: score at index {bad[0]} is {s[bad[0]]}; every score must be finite")
    if p.dtype != bool:
        if not np.isin(p, (0, 1)).all():
            index = np.flatnonzero(~np.isin(p, (0, 1)))[0]
            raise DataError(f"{what}: label at index {index} is {p[index].item()!r}; labels must be 0/1 or boolean")
        p = p.astype(bool)
    if p.all() or not p.any():
        only = "positive" if p.all() else "negative"
        raise DataError(f"{what}: every label is {only}; both classes are needed")
    return s, p


@dataclass(frozen=True)
class ThresholdSweep:
    """Acceptance rates at every distinct threshold, from +inf (accept nothing) down to the lowest score.

    ``tpr[i]`` / ``fpr[i]`` are the fractions of positives / negatives with ``score >= thresholds[i]``.
    """

    thresholds: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    n_positive: int
    n_negative: int

    @property
    def fnr(self) -> np.ndarray:
        return 1.0 - self.tpr


def sweep(scores, positive, *, what: str = "scores") -> ThresholdSweep:
    """All operating points, one per distinct score (ties share one point), as in scikit-learn's
    ``roc_curve(drop_intermediate=False)``."""
    s, p = check_scores(scores, positive, what=what)
    order = np.argsort(-s, kind="mergesort")
    s, p = s[order], p[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(p)[last_of_run]
    fp = (last_of_run + 1) - tp
    n_pos, n_neg = int(p.sum()), int((~p).sum())
    return ThresholdSweep(
        thresholds=np.r_[np.inf, s[last_of_run]],
        tpr=np.r_[0.0, tp / n_pos],
        fpr=np.r_[0.0, fp / n_neg],
        n_positive=n_pos,
        n_negative=n_neg,
    )


def rates_at(scores, positive, threshold: float, *, what: str = "scores") -> tuple[float, float]:
    """``(fraction of positives accepted, fraction of negatives accepted)`` at ``score >= threshold``."""
    s, p = check_scores(scores, positive, what=what)
    accepted = s >= threshold
    return float(accepted[p].mean()), float(accepted[~p].mean())


def equal_error_point(points: ThresholdSweep) -> tuple[float, float, float, float]:
    """``(eer, threshold, far, frr)`` at the threshold minimising ``|FAR - FRR|``, EER = (FAR + FRR) / 2.

    Only thresholds that are actual scores count (the +inf point is excluded). Ties in ``|FAR - FRR|``
    go to the smallest (FAR + FRR) / 2, then to the highest threshold.
    """
    far, frr = points.fpr[1:], points.fnr[1:]
    gap = np.abs(far - frr)
    mean = (far + frr) / 2
    candidates = np.flatnonzero(np.isclose(gap, gap.min(), rtol=0, atol=1e-12))
    best = candidates[np.argmin(mean[candidates])]  # argmin keeps the first: the highest threshold
    return float(mean[best]), float(points.thresholds[1:][best]), float(far[best]), float(frr[best])

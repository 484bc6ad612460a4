"""ROC and DET curves of a score set, and its operating points, as the report draws them.

Both come from ``overspec.metrics.scores.sweep``, the threshold sweep every score-based metric shares (a sample is
accepted when ``score >= threshold``; a higher score means genuine / bona fide, as in every stored score set):

- ROC: every distinct threshold, as ``sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False)``:
  false acceptance rate (FAR; APCER for MAD/PAD) against true acceptance rate (TAR; 1 - BPCER).
- DET: ``sklearn.metrics.det_curve``'s points (1.8+): FAR against false rejection rate (FRR; BPCER), from the last
  threshold with no false acceptance to the first with no false rejection, FAR decreasing; drawn on normal-deviate
  axes (``scipy.stats.norm.ppf`` of each rate), as ISO/IEC 19795-1 and bob plot them.
- Operating points: at a target FAR (APCER), the lowest FRR (BPCER) among thresholds whose FAR does not exceed
  it, with that FAR; a target below 1/N of the negatives is not resolvable and gets no point (as the metrics mark
  it ``unresolved``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from overspec.metrics.scores import ThresholdSweep, sweep
from overspec.metrics.specs import needed_samples


@dataclass(frozen=True)
class Curve:
    """Rates of one score set at its thresholds (``thresholds`` in the set's oriented units)."""

    far: np.ndarray
    tar: np.ndarray
    frr: np.ndarray  # (positives rejected) / positives, not 1 - tar, so that it equals scikit-learn's to the bit
    thresholds: np.ndarray
    n_positive: int
    n_negative: int


def roc(scores, positive, *, higher_means_positive: bool = True) -> Curve:
    """Every operating point, from accepting nothing (threshold +inf) to accepting everything."""
    return _curve(_sweep(scores, positive, higher_means_positive), slice(None))


def det(scores, positive, *, higher_means_positive: bool = True) -> Curve:
    """The DET points scikit-learn's ``det_curve`` gives (1.8+, whose sweep starts at threshold +inf): FAR
    decreasing, from the first threshold with no false rejection to the last with no false acceptance."""
    points = _sweep(scores, positive, higher_means_positive)
    first = int(np.searchsorted(points.fpr, 0.0, side="right")) - 1  # the last point with FAR = 0 (fpr rises)
    last = int(np.flatnonzero(points.fnr == 0)[0]) + 1
    return _curve(points, slice(last - 1, first - 1 if first > 0 else None, -1))


def _curve(points: ThresholdSweep, keep: slice) -> Curve:
    n = points.n_positive
    accepted = np.rint(points.tpr * n)
    return Curve(
        points.fpr[keep],
        points.tpr[keep],
        ((n - accepted) / n)[keep],
        points.thresholds[keep],
        n,
        points.n_negative,
    )


def _sweep(scores, positive, higher_means_positive: bool) -> ThresholdSweep:
    sign = 1.0 if higher_means_positive else -1.0
    return sweep(sign * np.asarray(scores, dtype=float), positive, what="curve scores")


def probit(rates, *, floor: float | None = None) -> np.ndarray:
    """Normal deviates of ``rates`` (``norm.ppf``); ``floor`` clips rates to ``[floor, 1 - floor]`` first, so that
    0 and 1 land on the axis edge instead of at infinity."""
    from scipy.stats import norm

    rates = np.asarray(rates, dtype=float)
    if floor is not None:
        rates = np.clip(rates, floor, 1 - floor)
    return norm.ppf(rates)


@dataclass(frozen=True)
class OperatingPoint:
    target: float  # the FAR (APCER) asked for
    far: float  # the FAR reached (at most the target)
    frr: float  # the lowest FRR (BPCER) at that FAR
    threshold: float


def operating_points(curve: Curve, targets) -> list[OperatingPoint]:
    """For each resolvable target FAR, the point of ``curve`` (a ``roc``) with the lowest FRR and FAR <= target."""
    found = []
    for target in targets:
        if curve.n_negative < needed_samples(target):  # below 1/N: FAR 0 is the only rate at or under it
            continue
        allowed = np.flatnonzero(curve.far <= target + 1e-12)
        best = allowed[np.argmin(curve.frr[allowed])]
        found.append(
            OperatingPoint(float(target), float(curve.far[best]), float(curve.frr[best]), float(curve.thresholds[best]))
        )
    return found

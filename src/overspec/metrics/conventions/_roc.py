"""scikit-learn's ``roc_curve`` with its default ``drop_intermediate=True``, from overspec's full sweep.

The reference codebases call ``roc_curve(labels, scores)`` and then pick points of the *dropped* curve, so
which points exist changes their results. This reproduces it without importing scikit-learn.
"""

from __future__ import annotations

import numpy as np

from overspec.metrics.scores import ThresholdSweep


def dropped_roc(points: ThresholdSweep) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` exactly as ``sklearn.metrics.roc_curve(positive, scores)`` returns them
    (scikit-learn 1.3+: a leading ``(0, 0)`` point at threshold +inf).

    scikit-learn keeps the first and last distinct-score points and every point where the second difference
    of the false- or true-positive *counts* is non-zero (a corner of the curve); collinear points go.
    """
    tps = np.rint(points.tpr[1:] * points.n_positive)
    fps = np.rint(points.fpr[1:] * points.n_negative)
    keep = np.ones(len(tps), dtype=bool)
    if len(tps) > 2:
        keep[1:-1] = (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0)
    index = np.r_[0, 1 + np.flatnonzero(keep)]
    return points.fpr[index], points.tpr[index], points.thresholds[index]


def trapezoid_auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """``sklearn.metrics.auc(fpr, tpr)`` for an increasing ``fpr``."""
    return float(np.trapezoid(tpr, fpr))


def z_scores(scores: np.ndarray, *, float32: bool = False) -> np.ndarray:
    """``(s - np.mean(s)) / np.std(s)``, as MADation's and FoundPAD's ``test_model`` do before their metrics
    (left as they are when every score is equal).

    ``float32``: as the references run it: their scores are float32 tensors turned into numpy arrays, so the
    mean, the standard deviation and the division are float32 (numpy's pairwise float32 sums) and
    ``roc_curve`` sorts float32 z-scores, where scores a few ulps apart can become equal. The result is
    returned as float64 (exactly the float32 values)."""
    if float32:
        scores = np.asarray(scores, dtype=np.float32)
    spread = np.std(scores)
    z = scores if spread == 0 else (scores - np.mean(scores)) / spread
    return np.asarray(z, dtype=np.float64)

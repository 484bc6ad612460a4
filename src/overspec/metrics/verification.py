"""Face-verification metrics on pair scores (genuine = positive, higher score = more similar)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from overspec.metrics.scores import ThresholdSweep, check_scores, equal_error_point, sweep


def roc(scores, genuine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC as ``(far, tar, thresholds)``, one point per distinct score plus (0, 0) at +inf.

    FAR = impostor pairs with ``score >= t`` / impostors; TAR = genuine pairs with ``score >= t`` /
    genuines. Identical to ``sklearn.metrics.roc_curve(genuine, scores, drop_intermediate=False)``.

    >>> far, tar, t = roc([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    >>> far.tolist(), tar.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    points = sweep(scores, genuine)
    return points.fpr, points.tpr, points.thresholds


def roc_auc(scores, genuine) -> float:
    """Area under the ROC by the trapezoidal rule; equals the probability that a random genuine pair
    scores above a random impostor pair, ties counting one half (Mann-Whitney U / (n_gen * n_imp))."""
    return auc_of(sweep(scores, genuine))


def auc_of(points: ThresholdSweep) -> float:
    """Trapezoidal area under an already computed sweep (see ``roc_auc``)."""
    return float(np.trapezoid(points.tpr, points.fpr))


def tar_at_far(scores, genuine, far: float | list[float]) -> float | dict[float, float]:
    """TAR at the operating points whose FAR does not exceed ``far``: the highest such TAR.

    No interpolation between ROC points (a FAR below 1 / n_impostors can only be met by accepting no
    impostor). Given a list of targets, returns ``{target: tar}``.
    """
    targets = [far] if np.isscalar(far) else list(far)
    found = tar_at_far_of(sweep(scores, genuine), targets)
    return found[far] if np.isscalar(far) else found


def tar_at_far_of(points: ThresholdSweep, targets: list[float]) -> dict[float, float]:
    """``tar_at_far`` on an already computed sweep, for several targets at once."""
    return {t: float(points.tpr[points.fpr <= t + 1e-15].max()) for t in targets}


@dataclass(frozen=True)
class EqualErrorRate:
    eer: float
    threshold: float
    far: float
    frr: float


def eer(scores, genuine) -> EqualErrorRate:
    """Equal error rate: at the score threshold minimising |FAR - FRR|, reported as (FAR + FRR) / 2.

    FRR = 1 - TAR. Thresholds are the distinct scores (accept when ``score >= t``). Ties in |FAR - FRR|
    go to the lowest (FAR + FRR) / 2, then the highest threshold. This is the nearest-point EER of
    bob.measure / pyeer without interpolating the ROC.
    """
    return EqualErrorRate(*equal_error_point(sweep(scores, genuine)))


@dataclass(frozen=True)
class KFoldAccuracy:
    mean: float
    std: float
    fold_accuracies: tuple[float, ...]
    thresholds: tuple[float, ...]


def kfold_accuracy(scores, genuine, *, folds: int = 10) -> KFoldAccuracy:
    """Verification accuracy with the threshold chosen on the other folds (insightface's LFW protocol).

    Pairs are split into ``folds`` contiguous folds in file order (``KFold(shuffle=False)``, as
    insightface does). For each fold, the threshold maximising accuracy on the remaining pairs is applied
    to the fold. insightface searches distances on a 0.01 grid; here every midpoint between consecutive
    distinct training scores is tried, which finds the exact training optimum (lowest such threshold
    on ties). Returns the mean and standard deviation over folds (population std, as numpy's default).
    """
    s, g = check_scores(scores, genuine, what="verification scores")
    index_folds = np.array_split(np.arange(len(s)), folds)
    accuracies, thresholds = [], []
    for test in index_folds:
        train = np.setdiff1d(np.arange(len(s)), test, assume_unique=True)
        threshold = _best_threshold(s[train], g[train])
        thresholds.append(threshold)
        accuracies.append(float(((s[test] >= threshold) == g[test]).mean()))
    return KFoldAccuracy(float(np.mean(accuracies)), float(np.std(accuracies)), tuple(accuracies), tuple(thresholds))


def _best_threshold(s: np.ndarray, g: np.ndarray) -> float:
    """The threshold maximising training accuracy of the rule ``score >= t``."""
    unique = np.unique(s)
    candidates = np.r_[unique[0] - 1.0, (unique[:-1] + unique[1:]) / 2, unique[-1] + 1.0]
    order = np.argsort(s, kind="mergesort")
    sorted_s, sorted_g = s[order], g[order]
    # for each candidate t: correct = impostors below t + genuines at or above t
    below = np.searchsorted(sorted_s, candidates, side="left")
    impostors_below = np.r_[0, np.cumsum(~sorted_g)][below]
    genuines_below = np.r_[0, np.cumsum(sorted_g)][below]
    correct = impostors_below + (g.sum() - genuines_below)
    return float(candidates[int(np.argmax(correct))])

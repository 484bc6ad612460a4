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
    distinct training scores is tried (and one below the lowest, one above the highest), which finds the exact
    training optimum (lowest such threshold on ties). Returns the mean and standard deviation over folds
    (population std, as numpy's default).

    All folds' searches run at once on one sort of the scores (the frontier's paired bootstrap calls this per
    resample): for fold f, a training row that is the last of its score among the training rows ends a run of
    distinct values, and the candidate above it counts the training impostors up to it plus the training
    genuines after it.
    """
    s, g = check_scores(scores, genuine, what="verification scores")
    n = len(s)
    sizes = [len(f) for f in np.array_split(np.arange(n), folds)]
    fold_of = np.repeat(np.arange(folds), sizes)
    order = np.argsort(s, kind="mergesort")
    sorted_s, sorted_g = s[order], g[order]
    train = fold_of[order][None, :] != np.arange(folds)[:, None]  # (folds, n): training rows, in score order
    position = np.where(train, np.arange(n), n)
    following = np.minimum.accumulate(position[:, ::-1], axis=1)[:, ::-1]  # the first training row at or after
    after = np.concatenate([following[:, 1:], np.full((folds, 1), n)], axis=1)  # ... strictly after each row
    next_value = np.r_[sorted_s, np.inf][after]
    ends = train & (next_value > sorted_s)  # the last training row of each distinct training score
    impostors_below = np.cumsum(train & ~sorted_g, axis=1)
    genuines_below = np.cumsum(train & sorted_g, axis=1)
    genuines = genuines_below[:, -1]
    correct = np.where(ends, impostors_below + (genuines[:, None] - genuines_below), -1)
    best = np.argmax(correct, axis=1)  # the lowest of the midpoints reaching the most
    rows = np.arange(folds)
    lowest = sorted_s[np.minimum(following[:, 0], n - 1)] - 1.0  # below every training score: all accepted
    above = np.where(
        np.isinf(next_value[rows, best]), sorted_s[best] + 1.0, (sorted_s[best] + next_value[rows, best]) / 2
    )
    thresholds = np.where(genuines >= correct[rows, best], lowest, above)  # ties go to the lower threshold
    right = (s >= thresholds[fold_of]) == g
    accuracies = [float(right[fold_of == k].mean()) for k in range(folds)]
    return KFoldAccuracy(
        float(np.mean(accuracies)), float(np.std(accuracies)), tuple(accuracies), tuple(float(t) for t in thresholds)
    )

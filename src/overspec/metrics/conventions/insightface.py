"""``insightface``: the verification numbers of deepinsight/insightface, reproduced exactly.

- ``accuracy`` (and ``accuracy_std``): ``recognition/arcface_torch/eval/verification.py`` (commit
  166d74309f060d23d002dc60308bbf870d0ab753), ``evaluate`` -> ``calculate_roc``: pairs in file order split by
  ``KFold(n_splits=10, shuffle=False)``; on the nine training folds every threshold of
  ``np.arange(0, 4, 0.01)`` is tried on the squared L2 distance with ``np.less(dist, threshold)`` meaning
  "same", the first best (``np.argmax``) is kept and applied to the held-out fold; mean and population std
  of the ten fold accuracies. A cosine score is read as the distance of unit embeddings,
  ``dist = 2 - 2 * cos``, so scores must be cosine similarities in [-1, 1].
- ``tar_at_far`` and ``auc``: ``recognition/_evaluation_/ijb/ijb_11.py`` (commit
  1b8d9281f16044b1dccafacc191ba3ddb5612022; ``arcface_torch/eval_ijbc.py`` does the same):
  ``fpr, tpr, _ = roc_curve(label, score)`` (scikit-learn's dropped curve), both flipped, and for each
  target the point at ``min(zip(abs(fpr - target), range(len(fpr))))`` (the nearest FAR, first in flipped
  order on ties, i.e. the highest TAR), whose FAR may exceed the target.
"""

from __future__ import annotations

import numpy as np

from overspec.errors import DataError
from overspec.metrics.conventions._roc import dropped_roc, trapezoid_auc
from overspec.metrics.conventions.base import Convention, ScoreSet
from overspec.metrics.conventions.iso import FAR_TARGETS
from overspec.metrics.scores import sweep
from overspec.metrics.specs import metric_key

THRESHOLDS = np.arange(0, 4, 0.01)
FOLDS = 10


def insightface_metrics(data: ScoreSet) -> dict[str, float]:
    mean, std = kfold_accuracy(data.scores, data.positive)
    return {"accuracy": mean, "accuracy_std": std, **roc_metrics(data.scores, data.positive)}


def roc_metrics(scores: np.ndarray, genuine: np.ndarray, targets=FAR_TARGETS) -> dict[str, float]:
    """``auc`` and ``tar_at_far_<target>`` as ``ijb_11.py`` reads them off the dropped ROC (module doc)."""
    fpr, tpr, _ = dropped_roc(sweep(scores, genuine, what="verification scores"))
    values = {"auc": trapezoid_auc(fpr, tpr)}
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    for target in targets:
        values[metric_key("tar_at_far", point=target)] = float(tpr[np.argmin(np.abs(fpr - target))])
    return values


def kfold_accuracy(cosine: np.ndarray, genuine: np.ndarray) -> tuple[float, float]:
    """insightface's 10-fold accuracy ``(mean, std)`` of pairs in the given order (see the module doc)."""
    if len(cosine) < FOLDS:
        raise DataError(f"insightface's {FOLDS}-fold accuracy needs at least {FOLDS} pairs, got {len(cosine)}")
    # float32 cosines of unit vectors (IJB template pairs) can pass 1 by a few 1e-6; the bound catches scores
    # that are not cosines at all
    outside = np.flatnonzero(np.abs(cosine) > 1 + 1e-4)
    if len(outside):
        raise DataError(
            f"the insightface convention reads scores as cosine similarities in [-1, 1]; score "
            f"{cosine[outside[0]]:g} is not one"
        )
    dist = 2.0 - 2.0 * cosine
    folds = np.array_split(np.arange(len(dist)), FOLDS)  # = KFold(n_splits=10, shuffle=False)
    # (genuine accepted, impostors accepted, impostors) per fold at each grid threshold; a fold's training
    # counts are the totals less its own, the same integers the reference counts on the nine other folds
    counts = [_accepted(dist[test], genuine[test]) for test in folds]
    total = [sum(c[i] for c in counts) for i in range(3)]
    accuracy = np.zeros(FOLDS)
    for fold, (test, (gen, imp, n_imp)) in enumerate(zip(folds, counts, strict=True)):
        correct_train = (total[0] - gen) + ((total[2] - n_imp) - (total[1] - imp))
        best = int(np.argmax(correct_train))  # the first best threshold
        accuracy[fold] = float(gen[best] + (n_imp - imp[best])) / len(test)
    return float(np.mean(accuracy)), float(np.std(accuracy))


def _accepted(dist: np.ndarray, genuine: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Genuine and impostor pairs with ``dist < t`` at each grid threshold, and the impostor count."""
    gen = np.searchsorted(np.sort(dist[genuine]), THRESHOLDS, side="left")
    imp = np.searchsorted(np.sort(dist[~genuine]), THRESHOLDS, side="left")
    return gen, imp, int(np.count_nonzero(~genuine))


INSIGHTFACE = Convention(
    name="insightface",
    kinds=("verification",),
    reference=(
        "deepinsight/insightface recognition/arcface_torch/eval/verification.py@166d7430 (accuracy); "
        "recognition/_evaluation_/ijb/ijb_11.py@1b8d9281 (TAR@FAR)"
    ),
    summary="10-fold accuracy on a 0.01 distance grid; TAR at the nearest FAR of the dropped ROC",
    metrics=insightface_metrics,
    points={"tar_at_far": FAR_TARGETS},
    file_order=True,
)

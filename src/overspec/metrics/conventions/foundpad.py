"""``foundpad``: the PAD numbers of FoundPAD (Ozgur et al., WACVW 2025), reproduced exactly.

Reference: gurayozgur/FoundPAD ``src/utils/utils.py`` (commit c8558a7da2eb1eb239a3ed1bb40eeeaff77db918),
as ``src/training/trainer.py`` ``test_model`` uses it: scores are the bona fide probability, labels
1 = bona fide.

- ``compute_video_score``: when the file has a ``video`` column, each video's score is ``np.mean`` of its
  rows' scores (in file order) and its label that of its first row; metrics are then per video.
- ``performances_cross_db``: ``fpr, tpr, thr = roc_curve(labels, scores, pos_label=1)`` (scikit-learn's
  dropped curve); ``right_index = np.nanargmin(np.abs(tpr + fpr - 1))``; ``eer = fpr[right_index]``;
  ``apcer = fpr[right_index]``, ``bpcer = 1 - tpr[right_index]``, ``hter`` their mean (the threshold is
  tuned on the test scores themselves); ``auc = sklearn.metrics.auc(fpr, tpr)``.

Video scores are z-scored first, as ``trainer.py`` does (monotone, yet its rounding can merge scores a few
ulps apart into one ROC point). The reference orders videos by ``list(set(ids))``, which changes with
``PYTHONHASHSEED`` and so moves the z-score's last bits from run to run; here videos keep the order of their
first row. A video whose rows disagree on the label is an error here (the reference takes the first label).
``foundpad:float32`` computes the video means and the z-score in float32, as the reference does on its float32
bona fide probabilities.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from overspec.errors import DataError
from overspec.metrics.conventions._roc import dropped_roc, trapezoid_auc, z_scores
from overspec.metrics.conventions.base import Convention, ScoreSet
from overspec.metrics.scores import sweep


def foundpad_metrics(data: ScoreSet, *, float32: bool = False) -> dict[str, float]:
    z = z_scores(data.scores, float32=float32)
    fpr, tpr, _ = dropped_roc(sweep(z, data.positive, what="attack detection scores"))
    right = np.nanargmin(np.abs(tpr + fpr - 1.0))
    apcer, bpcer = float(fpr[right]), float(1 - tpr[right])
    return {"auc": trapezoid_auc(fpr, tpr), "eer": apcer, "apcer": apcer, "bpcer": bpcer, "hter": (apcer + bpcer) / 2}


def video_scores(data: ScoreSet, *, float32: bool = False) -> ScoreSet:
    """One row per video (in order of first appearance): the mean of its scores, its first row's label."""
    if data.videos is None:
        return data
    scores = data.scores.astype(np.float32) if float32 else data.scores
    rows, means = video_means(data.videos, scores, data.positive)
    return replace(data.subset(rows), scores=means.astype(np.float64))


def video_means(videos: np.ndarray, scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first row of each video, its mean score)``, videos in order of first appearance, each mean ``np.mean`` of
    its rows in file order (``compute_video_score``); a video whose rows disagree on the label is an error."""
    _, first, inverse = np.unique(videos, return_index=True, return_inverse=True)
    mixed = np.flatnonzero(positive != positive[first][inverse])
    if len(mixed):
        raise DataError(f"video {videos[mixed[0]]!r} has both bona fide and attack rows; one label per video")
    rows = np.argsort(inverse, kind="stable")  # each video's rows together, in file order
    bounds = np.flatnonzero(np.diff(inverse[rows])) + 1
    means = np.array([np.mean(part) for part in np.split(scores[rows], bounds)])
    appearance = np.argsort(first, kind="stable")
    return first[appearance], means[appearance]


FOUNDPAD = Convention(
    name="foundpad",
    kinds=("pad",),
    reference="gurayozgur/FoundPAD src/utils/utils.py@c8558a7d (performances_cross_db, compute_video_score)",
    summary="per-video mean scores; HTER at the test set's own |FAR-FRR| point on the dropped ROC",
    metrics=foundpad_metrics,
    per_attack=("auc", "eer", "apcer", "bpcer", "hter"),
    prepare=video_scores,
    options=("float32",),
    file_order=True,  # the z-score's mean is summed in file (video) order
)

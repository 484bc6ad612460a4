"""Classification metrics on logits or scores of shape (N, C)."""

from __future__ import annotations

import numpy as np

from overspec.errors import DataError


def _check(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    z, y = np.asarray(logits), np.asarray(labels)
    if z.ndim != 2 or y.ndim != 1 or len(z) != len(y):
        raise DataError(f"logits must be (N, C) and labels (N,), got {z.shape} and {y.shape}")
    if len(y) == 0:
        raise DataError("no samples to score")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise DataError(f"labels must lie in [0, {z.shape[1] - 1}], got {y.min()}..{y.max()}")
    return z, y.astype(int)


def accuracy_topk(logits, labels, *, k: int = 1) -> float:
    """Fraction of samples whose label is among the ``k`` highest logits.

    Ties: the lower class index ranks first (a stable sort of the logits, descending). CLIP_benchmark's accuracy
    takes ``output.topk(k, 1, True, True)``, whose order among equal values torch leaves undocumented and which
    differs by device and version (torch 2.14 on CPU ranks index 2 first in ``[1, 3, 3, 0, 3]``), so no rule
    replays it everywhere; the lowest index is ``torch.argmax``'s and ``np.argmax``'s documented rule, the one
    CLIP_benchmark's own per-class recall (``logits.argmax``) and ``mean_per_class_recall`` here use, so top-1
    and recall agree. Exact ties are real: ImageNet's OpenAI class names repeat ("missile", "sunglasses"), so the
    two classes of a name get identical zero-shot weights and the later one is never a top-1 prediction.
    """
    z, y = _check(logits, labels)
    if k > z.shape[1]:
        raise DataError(f"top-{k} accuracy needs at least {k} classes, got {z.shape[1]}")
    top = np.argsort(-z, axis=1, kind="stable")[:, :k]
    return float((top == y[:, None]).any(axis=1).mean())


def mean_per_class_recall(logits, labels) -> float:
    """Mean over the classes present in ``labels`` of the fraction of that class predicted correctly
    (top-1). The headline metric of FGVC Aircraft, Oxford Pets, Caltech-101 and Flowers102 in CLIP's
    evaluation; equals ``sklearn.metrics.balanced_accuracy_score``."""
    z, y = _check(logits, labels)
    return recall_per_class_mean(np.argmax(z, axis=1) == y, y)


def recall_per_class_mean(correct, labels) -> float:
    """Mean over the classes present in ``labels`` of the share of their samples that are ``correct``: mean
    per-class recall from per-sample top-1 outcomes."""
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    return float(recall_per_class_means(np.asarray(correct)[None], codes.reshape(1, -1), len(classes))[0])


def recall_per_class_means(correct: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """``recall_per_class_mean`` of each row of ``correct`` and ``codes`` (class codes 0 .. n_classes − 1, e.g.
    resamples of one test set: what the frontier's paired bootstrap recomputes from ``predictions/CELL.npz``).
    Each class's recall is its count of correct samples over its count; their mean is over the classes present
    in the row, in class order."""
    rows = np.arange(len(codes))[:, None] * n_classes
    flat = (codes + rows).ravel()
    size = len(codes) * n_classes
    hits = np.bincount(flat, weights=np.asarray(correct, dtype=float).ravel(), minlength=size).reshape(-1, n_classes)
    counts = np.bincount(flat, minlength=size).reshape(-1, n_classes)
    return np.array([np.mean(h[c > 0] / c[c > 0]) for h, c in zip(hits, counts, strict=True)])

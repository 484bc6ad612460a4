"""What a protocol returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from overspec.metrics import accuracy_topk, mean_per_class_recall
from overspec.metrics.conventions.base import ScoreSet


@dataclass
class ProtocolResult:
    """Metrics as fractions, the headline metric's name, and protocol-specific details.

    A biometric protocol also returns its ``score_set`` (what its convention scored, exported by the runner so
    ``overspec score`` can re-score it), the keys its data cannot resolve (``None`` in ``metrics``, the reason in
    ``unresolved``), and 95 % ``intervals`` with the ``interval_method`` that produced them (per key, where it
    differs from the common one, in ``interval_methods``)."""

    protocol: str
    dataset: str
    model: str
    metrics: dict[str, float | None]
    headline_metric: str
    details: dict = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # per-sample outcomes, for paired tests
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    interval_method: str | None = None
    interval_methods: dict[str, str] = field(default_factory=dict)
    unresolved: dict[str, str] = field(default_factory=dict)
    score_set: ScoreSet | None = None

    @property
    def headline(self) -> float | None:
        return self.metrics[self.headline_metric]

    def as_json(self) -> dict:
        return {
            "protocol": self.protocol,
            "dataset": self.dataset,
            "model": self.model,
            **self.metrics,
            "headline_metric": self.headline_metric,
            **({"unresolved": self.unresolved} if self.unresolved else {}),
            **({"ci": {k: list(v) for k, v in self.intervals.items()}} if self.intervals else {}),
            **({"ci_method": self.interval_method} if self.interval_method else {}),
            **self.details,
        }


def scored_result(
    protocol: str,
    dataset: str,
    model: str,
    data: ScoreSet,
    convention: str,
    headline: str,
    *,
    extra: dict[str, float] | None = None,
    details: dict | None = None,
    samples: dict[str, np.ndarray] | None = None,
) -> ProtocolResult:
    """A biometric protocol's result from its score set: every key of ``convention`` with bootstrap intervals
    (``overspec.metrics.conventions.scoring``, as ``overspec score`` computes them), plus the protocol's
    ``extra`` figures and counts."""
    from overspec.metrics.conventions.scoring import RUN_RESAMPLES, prepare, score_intervals, score_set

    units = prepare(data, convention)
    scored = score_set(units, convention, prepared=True)
    found = score_intervals(units, scored, n_resamples=RUN_RESAMPLES)
    decisions = {k: v for k, v in scored.decisions.items() if k not in (details or {})}
    return ProtocolResult(
        protocol,
        dataset,
        model,
        scored.values | (extra or {}) | scored.counts,
        headline,
        {
            **(details or {}),
            **decisions,
            "convention": convention,
            "ci_resamples": found.resamples,
            "ci_seconds": round(found.seconds, 3),
        },
        samples or {},
        found.intervals,
        found.method,
        {},
        scored.unresolved,
        data,
    )


def correct_top1(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.argmax(logits, axis=1) == labels


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """top-1, top-5 (where there are at least 5 classes), mean per-class recall, and n_test."""
    metrics = {"acc1": accuracy_topk(logits, labels, k=1)}
    if logits.shape[1] >= 5:
        metrics["acc5"] = accuracy_topk(logits, labels, k=5)
    metrics["mean_per_class_recall"] = mean_per_class_recall(logits, labels)
    metrics["n_test"] = int(len(labels))
    return metrics

"""What a protocol returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from overspec.metrics import accuracy_topk, mean_per_class_recall


@dataclass
class ProtocolResult:
    """Metrics as fractions, the headline metric's name, and protocol-specific details."""

    protocol: str
    dataset: str
    model: str
    metrics: dict[str, float]
    headline_metric: str
    details: dict = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # per-sample outcomes, for paired tests

    @property
    def headline(self) -> float:
        return self.metrics[self.headline_metric]

    def as_json(self) -> dict:
        return {
            "protocol": self.protocol,
            "dataset": self.dataset,
            "model": self.model,
            **self.metrics,
            "headline_metric": self.headline_metric,
            **self.details,
        }


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

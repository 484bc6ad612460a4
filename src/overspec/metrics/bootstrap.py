"""Percentile bootstrap confidence intervals for score-based metrics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_ci(
    statistic: Callable[[np.ndarray], dict[str, float]],
    labels: np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every value ``statistic(indices)`` returns, resampling with replacement
    *within each class* of ``labels`` (a stratified bootstrap keeps both classes in every resample, so
    rates such as APCER and BPCER stay defined; Efron & Tibshirani 1993, ch. 13).

    ``statistic`` receives an index array into the original samples and returns named scalars.
    """
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    draws: dict[str, list[float]] = {}
    for _ in range(n_resamples):
        index = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        for name, value in statistic(index).items():
            draws.setdefault(name, []).append(value)
    tail = (1 - confidence) / 2 * 100
    return {name: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) for name, v in draws.items()}

"""Percentile bootstrap confidence intervals for score-based metrics, with a bounded cost per resample."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from overspec._progress import progress_bar

# A resample's cost grows faster than its size once it leaves the CPU caches (measured: 250 k rows resample and
# re-sweep in ~5 ms, 1 M rows in ~70 ms), so larger score sets are bootstrapped on a fixed subsample.
MAX_ROWS = 200_000
_PROGRESS_WORK = 50_000_000  # rows x resamples above which a progress bar is worth showing


@dataclass(frozen=True)
class BootstrapIntervals:
    """Intervals per metric; ``rows`` resampled per draw (all of them unless the set exceeded ``max_rows``)."""

    intervals: dict[str, tuple[float, float]]
    rows: int
    n: int

    @property
    def method(self) -> str:
        if self.rows == self.n:
            return "stratified percentile bootstrap"
        return (
            f"stratified percentile bootstrap of a fixed {self.rows}-row stratified subsample, deviations "
            f"rescaled by sqrt({self.rows}/{self.n}) around the full-set estimate"
        )


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
    found = bootstrap_intervals(statistic, labels, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return found.intervals


def bootstrap_intervals(
    statistic: Callable[[np.ndarray], dict[str, float]],
    labels: np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    order: np.ndarray | None = None,
    max_rows: int | None = None,
    estimate: dict[str, float] | None = None,
    clusters: np.ndarray | None = None,
    progress: bool = False,
) -> BootstrapIntervals:
    """``bootstrap_ci`` with two bounds on its cost.

    ``order`` (a permutation of the rows, e.g. by descending score) is the order in which each resample's
    indices reach ``statistic``: the multiset drawn is the same, so a statistic that sorts by score sorts an
    already sorted array (linear with numpy's stable sort). With ``order=None`` indices come class by class.

    Above ``max_rows`` rows, a stratified subsample of ``m = max_rows`` rows is drawn once and bootstrapped;
    each interval is ``estimate + sqrt(m / n) * (percentile - subsample estimate)`` (the m-out-of-n
    rescaling, valid for statistics that are sqrt(n)-consistent; operating points rarer than a few in ``m``
    are resolved only as finely as the subsample allows). ``estimate`` is the statistic on all rows, if known.
    The same seed draws the same resamples as before these bounds existed when ``n <= max_rows``.

    ``clusters`` (integer codes per row, e.g. subjects or videos) makes it a cluster bootstrap: within each
    class, whole clusters are drawn with replacement and bring all their rows of that class (Davison & Hinkley
    1997, section 3.8), so correlated rows (frames of one video, images of one person) count as one unit.
    Used when ``n <= max_rows``.
    """
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    if max_rows is None or n <= max_rows:
        draws = _percentiles(statistic, labels, rng, n_resamples, confidence, order, progress, clusters)
        return BootstrapIntervals(draws, n, n)
    rows = _stratified_subsample(labels, max_rows, rng)
    sub_order = None
    if order is not None:
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        sub_order = np.argsort(rank[rows], kind="stable")
    full = estimate if estimate is not None else statistic(np.arange(n) if order is None else order)
    local = statistic(rows if sub_order is None else rows[sub_order])
    found = _percentiles(
        lambda index: statistic(rows[index]), labels[rows], rng, n_resamples, confidence, sub_order, progress
    )
    scale = np.sqrt(len(rows) / n)
    intervals = {
        name: (full[name] + scale * (low - local[name]), full[name] + scale * (high - local[name]))
        for name, (low, high) in found.items()
        if name in full and name in local  # e.g. an attack type the subsample missed
    }
    return BootstrapIntervals(intervals, len(rows), n)


def _percentiles(
    statistic, labels, rng, n_resamples, confidence, order, progress, clusters=None
) -> dict[str, tuple[float, float]]:
    n = len(labels)
    draws: dict[str, list[float]] = {}
    with progress_bar(progress and n * n_resamples > _PROGRESS_WORK, "bootstrap", n_resamples) as advance:
        for index in resample_indices(labels, rng, n_resamples, clusters=clusters):
            if order is not None:
                index = np.repeat(order, np.bincount(index, minlength=n)[order])
            for name, value in statistic(index).items():
                draws.setdefault(name, []).append(value)
            advance(1)
    tail = (1 - confidence) / 2 * 100
    return {name: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) for name, v in draws.items()}


def resample_indices(
    labels: np.ndarray, rng: np.random.Generator, n_resamples: int, *, clusters: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """The bootstrap's resamples, one index array (repeats allowed) at a time: within each class of ``labels``,
    rows (or, with ``clusters``, whole clusters bringing their rows of that class) drawn with replacement. What
    ``bootstrap_intervals`` resamples, and what the frontier's paired bootstrap draws once for every model."""
    labels = np.asarray(labels)
    n = len(labels)
    groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    units = None if clusters is None else [np.unique(clusters[g], return_inverse=True)[1].ravel() for g in groups]
    for _ in range(n_resamples):
        if units is None:
            yield np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        else:  # each drawn cluster brings its rows of the class; a row's count is its cluster's draws
            counts = np.zeros(n, dtype=np.int64)
            for g, unit in zip(groups, units, strict=True):
                k = int(unit.max()) + 1
                counts[g] = np.bincount(rng.integers(0, k, size=k), minlength=k)[unit]
            yield np.repeat(np.arange(n), counts)


def _stratified_subsample(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` rows (about; at least one per class), each class in its share, in file order."""
    n = len(labels)
    parts = []
    for value in np.unique(labels):
        group = np.flatnonzero(labels == value)
        parts.append(rng.choice(group, size=max(1, round(len(group) * size / n)), replace=False))
    return np.sort(np.concatenate(parts))

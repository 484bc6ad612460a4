"""The parametric binary search of the CLIP paper (appendix A.3), as CLIP_benchmark implements it.

Seven values, every 16th of a 97-point log grid, then three candidates (left, peak, right) at spans of 8, 4, 2
and 1 grid steps around the current peak.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def find_peak(score: Callable[[int], float], indices: Iterable[int]) -> int:
    """CLIP_benchmark's ``find_peak``: the first index with the strictly highest score, in ``indices`` order.
    Its quirk is kept: it starts from (index 0, score 0), so if every score is 0 it answers 0."""
    best, best_score = 0, 0.0
    for index in indices:
        value = score(index)
        if best_score < value:
            best, best_score = index, value
    return best


def binary_search(n_points: int, score: Callable[[int], float], *, first: int = 7) -> tuple[int, dict[int, float]]:
    """The grid index chosen, and the score of every index tried. ``score`` runs once per index: the
    reference retrains an index it has seen, with the same seed and so the same result."""
    seen: dict[int, float] = {}

    def cached(index: int) -> float:
        if index not in seen:
            seen[index] = score(index)
        return seen[index]

    step = (n_points - 1) // (first - 1)
    peak = find_peak(cached, range(0, n_points, step))
    span = step // 2
    while span > 0:
        left, right = max(peak - span, 0), min(peak + span, n_points - 1)
        peak = find_peak(cached, [left, peak, right])
        span //= 2
    return peak, seen

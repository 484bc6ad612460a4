"""The trade-off frontier: biometric performance (x, higher is better) against GELO (y) for points of several
forgetting-control methods, each swept over its strength.

- ``pareto_mask``: the points no other point beats on both axes (ties: equal points do not dominate each other).
- ``hypervolume``: the area the points dominate above a reference point (x_ref, y_ref) (the base's biometric
  performance and a GELO floor, 0 by default): the area under the frontier's staircase to the right of the
  base, so a frontier that gains Δ in biometric performance while keeping GELO g everywhere scores Δ·g; NaN when
  the reference or any point is undefined (a draw in which a headline was: its area is unknown, not smaller).
- ``value_at``: a curve's GELO at a given biometric performance, linear between its points taken in order of
  strength from the base outwards (the first crossing; NaN where the curve never reaches it, or where a point
  before the crossing, or at it, is undefined: a later crossing would not be the first).
- ``draw``: the parametric draws of points whose numbers cannot be recomputed per resample (``frontier/paired.py``
  pairs the others over their shared test sets): x and y from normal distributions whose 95 % intervals are the
  measured ones, independently across points. Every statistic is recomputed per draw and its 2.5 / 97.5
  percentiles reported (``interval``).

Hand-written: the 2-D cases are a few lines each, and pymoo / botorch (which have n-D hypervolumes) are heavy
dependencies for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True for every point no other point dominates (>= on both axes, > on one), both axes maximised; a point
    with a NaN coordinate is on no frontier and dominates nothing."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    order = np.lexsort((-y, -x))  # x descending, then y descending
    order = order[keep[order]]
    best_right = -np.inf  # the highest y among points of strictly greater x
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and x[order[j]] == x[order[i]]:
            j += 1
        group = order[i:j]  # equal x: only a higher y of the same x dominates
        top = y[group].max()
        for k in group:
            keep[k] = y[k] > best_right and y[k] == top
        best_right = max(best_right, top)
        i = j
    return keep


def hypervolume(x: np.ndarray, y: np.ndarray, reference: tuple[float, float]) -> float:
    """Area of the union of the rectangles [x_ref, x_i] × [y_ref, y_i] (points beyond the reference on both axes);
    NaN when the reference or any point has an undefined coordinate."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(reference))):
        return float("nan")
    inside = (x > reference[0]) & (y > reference[1])
    x, y = x[inside], y[inside]
    if not len(x):
        return 0.0
    front = pareto_mask(x, y)
    order = np.argsort(-x[front])  # x descending: y ascending along the front
    xs, ys = x[front][order], y[front][order]
    floors = np.concatenate([[reference[1]], ys[:-1]])
    return float(np.sum((xs - reference[0]) * (ys - floors)))


def value_at(x: np.ndarray, y: np.ndarray, target: float) -> float:
    """y where the polyline through (x_k, y_k), in the given order, first reaches x = ``target``; NaN where it
    never does or where a point up to the first crossing is undefined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    for k in range(len(x) - 1):
        if not np.all(np.isfinite([x[k], x[k + 1], y[k], y[k + 1]])):
            return float("nan")  # the polyline is broken before any crossing: which crossing is first is unknown
        low, high = sorted((x[k], x[k + 1]))
        if low <= target <= high:
            if x[k + 1] == x[k]:
                return float(y[k])
            t = (target - x[k]) / (x[k + 1] - x[k])
            return float(y[k] + t * (y[k + 1] - y[k]))
    if len(x) == 1 and x[0] == target:
        return float(y[0])
    return float("nan")


def sd_of(interval: tuple[float | None, float | None] | None) -> float:
    """The standard deviation a normal 95 % interval implies (0 when there is none)."""
    if interval is None or interval[0] is None or interval[1] is None or not np.all(np.isfinite(interval)):
        return 0.0
    return abs(interval[1] - interval[0]) / (2 * Z95)


@dataclass
class Draws:
    """``n`` parametric bootstrap draws of every point: arrays of shape (n, points)."""

    x: np.ndarray
    y: np.ndarray


def draw(x: np.ndarray, y: np.ndarray, x_sd: np.ndarray, y_sd: np.ndarray, *, n: int = 2000, seed: int = 0) -> Draws:
    rng = np.random.default_rng(seed)
    size = (n, len(x))
    return Draws(
        np.asarray(x, float) + rng.standard_normal(size) * np.asarray(x_sd, float),
        np.asarray(y, float) + rng.standard_normal(size) * np.asarray(y_sd, float),
    )


def interval(values: np.ndarray) -> tuple[float, float]:
    """The 2.5 and 97.5 percentiles of the finite values (NaN when fewer than half the draws are finite)."""
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    if len(finite) < max(1, len(values) // 2):
        return (float("nan"), float("nan"))
    return float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))

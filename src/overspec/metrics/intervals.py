"""Closed-form intervals of proportions (the bootstrap ones are in ``overspec.metrics.bootstrap``)."""

from __future__ import annotations

import math


def wilson_interval(p: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion (Wilson 1927; Brown, Cai & DasGupta 2001)."""
    if n <= 0:
        return (math.nan, math.nan)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)

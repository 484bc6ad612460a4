"""The frontier's maths against brute force: Pareto sets, hypervolume by inclusion-exclusion and on a grid,
matched-performance interpolation on hand-made curves, the parametric draws (the fallback of the paired bootstrap,
tests/test_frontier_paired.py) and the comparison of methods within draws."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from overspec.analysis.frontier import draw, hypervolume, interval, pareto_mask, sd_of, value_at
from overspec.frontier.summary import _compared


def brute_pareto(x, y) -> np.ndarray:
    return np.array(
        [
            not any(x[j] >= x[i] and y[j] >= y[i] and (x[j], y[j]) != (x[i], y[i]) for j in range(len(x)))
            for i in range(len(x))
        ]
    )


@pytest.mark.parametrize("seed", range(20))
def test_pareto_mask_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    # a coarse grid of values, so ties in x, in y and whole duplicate points occur
    x, y = rng.integers(0, 6, n) / 5, rng.integers(0, 6, n) / 5
    np.testing.assert_array_equal(pareto_mask(x, y), brute_pareto(x, y))


def test_a_point_with_a_nan_coordinate_is_on_no_frontier_and_dominates_nothing():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 6, 12) / 5, rng.integers(0, 6, 12) / 5
    x[[2, 7]], y[5] = np.nan, np.nan  # a draw in which some curves have no value
    finite = np.isfinite(x) & np.isfinite(y)
    expected = np.zeros(12, bool)
    expected[finite] = brute_pareto(x[finite], y[finite])
    np.testing.assert_array_equal(pareto_mask(x, y), expected)


def inclusion_exclusion(x, y, reference) -> float:
    """Area of the union of rectangles anchored at the reference: Σ over subsets (−1)^{|S|+1} |∩ S|."""
    boxes = [(a, b) for a, b in zip(x, y, strict=True) if a > reference[0] and b > reference[1]]
    total = 0.0
    for size in range(1, len(boxes) + 1):
        for subset in itertools.combinations(boxes, size):
            width = min(a for a, _ in subset) - reference[0]
            height = min(b for _, b in subset) - reference[1]
            total += (-1) ** (size + 1) * width * height
    return total


@pytest.mark.parametrize("seed", range(15))
def test_hypervolume_equals_inclusion_exclusion(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    x, y = rng.uniform(0.5, 1.0, n), rng.uniform(0.6, 1.1, n)
    reference = (float(rng.uniform(0.4, 0.8)), float(rng.choice([0.0, 0.8])))
    assert hypervolume(x, y, reference) == pytest.approx(inclusion_exclusion(x, y, reference), abs=1e-12)


def test_hypervolume_on_a_grid_and_by_hand():
    # two points right of the base at x 0.8: (0.9, 0.95) and (1.0, 0.7); floor 0 -> 0.1*0.95 + 0.1*0.7
    assert hypervolume([0.9, 1.0, 0.7], [0.95, 0.7, 1.0], (0.8, 0.0)) == pytest.approx(0.1 * 0.95 + 0.1 * 0.7)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1, 6), rng.uniform(0, 1, 6)
    grid = (np.arange(1000) + 0.5) / 1000  # cell centres of a 1000 x 1000 grid on [0, 1]^2
    gx, gy = np.meshgrid(grid, grid)
    covered = np.zeros_like(gx, bool)
    for a, b in zip(x, y, strict=True):
        covered |= (gx <= a) & (gy <= b)
    assert hypervolume(x, y, (0.0, 0.0)) == pytest.approx(covered.mean(), abs=3e-3)
    assert hypervolume([0.5], [0.5], (0.6, 0.0)) == 0.0  # nothing beyond the base


def test_value_at_interpolates_along_the_curve_in_strength_order():
    # base (0.80, 1.00) -> (0.90, 0.96) -> (0.95, 0.90) -> (0.97, 0.80)
    x, y = [0.80, 0.90, 0.95, 0.97], [1.00, 0.96, 0.90, 0.80]
    assert value_at(x, y, 0.85) == pytest.approx(0.98)
    assert value_at(x, y, 0.90) == pytest.approx(0.96)
    assert value_at(x, y, 0.96) == pytest.approx(0.85)
    assert np.isnan(value_at(x, y, 0.99))  # never reached
    assert np.isnan(value_at(x, y, 0.70))
    # a curve that overshoots and comes back: the first crossing from the base counts
    assert value_at([0.8, 1.0, 0.9], [1.0, 0.8, 0.5], 0.9) == pytest.approx(0.9)
    assert value_at([0.8, 0.8, 0.9], [1.0, 0.9, 0.5], 0.8) == pytest.approx(1.0)


def test_parametric_bootstrap_recovers_the_intervals():
    assert sd_of((0.9, 1.1)) == pytest.approx(0.1 / 1.959963984540054)
    assert sd_of(None) == 0.0 and sd_of((None, 1.0)) == 0.0
    draws = draw(np.array([0.5, 0.7]), np.array([1.0, 0.9]), np.array([0.01, 0.0]), np.array([0.0, 0.02]), n=20000)
    low, high = interval(draws.x[:, 0])
    assert low == pytest.approx(0.5 - 1.96 * 0.01, abs=1e-3) and high == pytest.approx(0.5 + 1.96 * 0.01, abs=1e-3)
    assert np.all(draws.y[:, 0] == 1.0) and np.all(draws.x[:, 1] == 0.7)
    assert np.isnan(interval(np.array([np.nan] * 3 + [1.0]))[0])


def test_methods_compared_within_draws_by_hand():
    # three draws of three methods' matched GELO; "c" never reaches the matched score in the second draw
    found = {
        "a": (0.90, np.array([0.90, 0.80, 0.95])),
        "b": (0.95, np.array([0.94, 0.85, 0.93])),
        "c": (0.92, np.array([0.92, np.nan, 0.97])),
    }
    compared = _compared(found, "gelo")
    assert compared["a"]["difference"]["to"] == "b"  # the best point estimate
    assert compared["a"]["difference"]["value"] == pytest.approx(-0.05)
    low, high = compared["a"]["difference"]["ci"]
    diffs = np.array([-0.04, -0.05, 0.02])
    assert (low, high) == (pytest.approx(np.percentile(diffs, 2.5)), pytest.approx(np.percentile(diffs, 97.5)))
    assert compared["b"]["difference"]["ci"] == [0.0, 0.0]
    # best in each draw: b (0.94), b (0.85, c undefined), c (0.97)
    assert [compared[m]["best_share"] for m in "abc"] == pytest.approx([0, 2 / 3, 1 / 3])
    assert compared["c"]["ci"] == [pytest.approx(np.percentile([0.92, 0.97], 2.5)), pytest.approx(0.97 - 0.00125)]


def test_an_undefined_coordinate_leaves_a_draws_hypervolume_undefined():
    # the base's score undefined in a draw: no reference, so no area (it used to read 0.0)
    assert np.isnan(hypervolume(np.array([np.nan, 0.9, 0.95]), np.array([1.0, 0.9, 0.8]), (np.nan, 0.0)))
    # a member undefined: the area without it would be smaller than the draw's, so it is unknown
    assert np.isnan(hypervolume(np.array([0.8, np.nan, 0.95]), np.array([1.0, 0.99, 0.8]), (0.8, 0.0)))
    assert np.isnan(hypervolume(np.array([0.8, 0.9]), np.array([1.0, np.nan]), (0.8, 0.0)))


def test_value_at_is_undefined_when_a_point_up_to_the_crossing_is():
    # base 0.80 -> (undefined) -> 0.95 -> 0.85: the first crossing of 0.90 may lie before 0.95; it used to skip
    # the broken segments and return the later crossing between 0.95 and 0.85 (0.925)
    assert np.isnan(value_at([0.8, np.nan, 0.95, 0.85], [1.0, 0.97, 0.9, 0.95], 0.9))
    assert np.isnan(value_at([0.8, 0.85, 0.95], [1.0, np.nan, 0.9], 0.9))  # the crossing segment's GELO
    # a point after the crossing does not matter
    assert value_at([0.8, 0.9, 1.0, np.nan], [1.0, 0.96, 0.9, np.nan], 0.85) == pytest.approx(0.98)

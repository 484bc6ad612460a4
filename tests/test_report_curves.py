"""The report's ROC and DET curves equal scikit-learn's ``roc_curve``/``det_curve`` (probit axes by scipy's
``norm.ppf``), with ties and either score direction; operating points equal a brute-force search."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import det_curve, roc_curve

from overspec.report.curves import det, operating_points, probit, roc

CASES = {
    "continuous": lambda r: (
        r.normal(size=300) + np.r_[np.ones(120), np.zeros(180)],
        np.r_[np.ones(120), np.zeros(180)],
    ),
    # scores on a coarse grid: many ties, across classes too
    "ties": lambda r: (
        np.round(r.normal(size=200) + np.r_[np.ones(90), np.zeros(110)], 1),
        np.r_[np.ones(90), np.zeros(110)],
    ),
    # the top score is an impostor's and the lowest a genuine's: both ends of the DET curve are finite thresholds
    "mixed ends": lambda r: (np.r_[5.0, r.normal(size=50), -5.0], np.r_[0, r.integers(0, 2, 50), 1]),
    "separable": lambda r: (np.r_[r.uniform(1, 2, 30), r.uniform(-2, -1, 40)], np.r_[np.ones(30), np.zeros(40)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("higher_means_positive", [True, False])
def test_roc_and_det_equal_scikit_learn(case, higher_means_positive):
    scores, labels = CASES[case](np.random.default_rng(len(case)))
    labels = labels.astype(int)
    positive = labels == 1
    if not higher_means_positive:  # e.g. a distance or an attack probability: lower means genuine / bona fide
        scores = -scores
    oriented = scores if higher_means_positive else -scores
    fpr, tpr, thresholds = roc_curve(labels, oriented, drop_intermediate=False)
    curve = roc(scores, positive, higher_means_positive=higher_means_positive)
    np.testing.assert_array_equal(curve.far, fpr)
    np.testing.assert_array_equal(curve.tar, tpr)
    np.testing.assert_array_equal(curve.thresholds, thresholds)

    fpr, fnr, thresholds = det_curve(labels, oriented)
    curve = det(scores, positive, higher_means_positive=higher_means_positive)
    np.testing.assert_array_equal(curve.far, fpr)
    np.testing.assert_array_equal(curve.frr, fnr)
    np.testing.assert_array_equal(curve.thresholds, thresholds)
    inner = (fpr > 0) & (fnr > 0)
    np.testing.assert_array_equal(probit(curve.far[inner]), norm.ppf(fpr[inner]))
    np.testing.assert_array_equal(probit(curve.frr), norm.ppf(fnr))  # 0 -> -inf, as norm.ppf
    assert np.isfinite(probit(curve.frr, floor=1e-3)).all()


def test_a_hand_computed_curve_with_a_tie_across_classes():
    # scores 3 (genuine), 2 (genuine and impostor: one threshold for both), 1 (impostor)
    curve = roc([3, 2, 2, 1], [1, 1, 0, 0])
    assert curve.thresholds.tolist() == [np.inf, 3, 2, 1]
    assert curve.far.tolist() == [0, 0, 0.5, 1] and curve.tar.tolist() == [0, 0.5, 1, 1]
    curve = det([3, 2, 2, 1], [1, 1, 0, 0])
    assert curve.far.tolist() == [0.5, 0.0] and curve.frr.tolist() == [0.0, 0.5]


def test_operating_points_equal_a_brute_force_search():
    rng = np.random.default_rng(0)
    positive = np.r_[np.ones(400, bool), np.zeros(600, bool)]
    scores = np.round(rng.normal(size=1000) + 1.5 * positive, 2)
    curve = roc(scores, positive)
    found = {p.target: p for p in operating_points(curve, (1e-4, 1e-3, 0.01, 0.05, 0.1, 0.2))}
    assert set(found) == {0.01, 0.05, 0.1, 0.2}  # 1e-3 needs 1,000 negatives: not resolvable with 600
    for target, point in found.items():
        best = min(
            ((np.mean(scores[~positive] >= t), np.mean(scores[positive] < t)) for t in np.r_[np.inf, scores]),
            key=lambda fr: (fr[0] > target, fr[1]),
        )
        assert (point.far, point.frr) == best and point.far <= target

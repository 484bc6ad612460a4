"""Debiased linear CKA, its permutation null and mutual k-NN, against direct transcriptions of the published
formulas and brute force."""

from __future__ import annotations

import numpy as np
import pytest

from overspec.errors import DataError
from overspec.metrics.similarity import (
    cka_with_null,
    debiased_cka,
    knn_chance,
    mutual_knn,
    unbiased_hsic,
)


def song_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (JMLR 2012) eq. 5, transcribed as printed, on explicit n x n Gram matrices."""
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    one = np.ones(n)
    term1 = np.trace(Kt @ Lt)
    term2 = (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (one @ Kt @ Lt @ one)
    return (term1 + term2 - term3) / (n * (n - 3))


def reference_cka(x: np.ndarray, y: np.ndarray) -> float:
    K, L = x @ x.T, y @ y.T
    return song_hsic(K, L) / np.sqrt(song_hsic(K, K) * song_hsic(L, L))


def features(seed: int, n: int = 60, p: int = 12, q: int = 20, shift: float = 3.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) + shift  # a large common offset: the estimator must be translation-invariant
    y = x @ rng.normal(size=(p, q)) + 0.5 * rng.normal(size=(n, q)) - shift
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_debiased_cka_equals_the_published_formula(seed):
    x, y = features(seed)
    K, L = x @ x.T, y @ y.T
    assert unbiased_hsic(x, y) == pytest.approx(song_hsic(K, L), rel=1e-9)
    assert debiased_cka(x, y) == pytest.approx(reference_cka(x, y), rel=1e-9)
    # wider than the number of images (the cross-product route must not care which is larger)
    x, y = features(seed, n=10, p=30, q=25)
    assert debiased_cka(x, y) == pytest.approx(reference_cka(x, y), rel=1e-9)


def test_cka_is_invariant_to_orthogonal_maps_and_isotropic_scaling():
    x, y = features(3)
    rng = np.random.default_rng(7)
    q_x, _ = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))
    q_y, _ = np.linalg.qr(rng.normal(size=(y.shape[1], y.shape[1])))
    base = debiased_cka(x, y)
    assert base < 0.99
    assert debiased_cka(x @ q_x, y) == pytest.approx(base, rel=1e-9)
    assert debiased_cka(x, y @ q_y) == pytest.approx(base, rel=1e-9)
    assert debiased_cka(7.5 * x, y) == pytest.approx(base, rel=1e-9)
    assert debiased_cka(x, 0.01 * y) == pytest.approx(base, rel=1e-9)
    # and 1 against an orthogonal, scaled copy of itself
    assert debiased_cka(x, 3.0 * x @ q_x) == pytest.approx(1.0, abs=1e-12)


def test_independent_features_sit_at_the_null():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(400, 16)), rng.normal(size=(400, 24))
    result = cka_with_null(x, y, permutations=32, seed=1)
    # the debiased estimator's null is centred on 0 (plain CKA's would sit far above it at n=400, width 16-24)
    assert abs(result.null_mean) < 3 * result.null_std / np.sqrt(32) + 1e-3
    assert abs(result.cka - result.null_mean) < 4 * result.null_std
    assert abs(result.calibrated) < 4 * result.null_std / (1 - result.null_mean)
    # related features are far outside it
    x, y = features(0, n=400)
    related = cka_with_null(x, y, permutations=8)
    assert related.cka > related.null_mean + 20 * related.null_std
    assert related.calibrated == pytest.approx((related.cka - related.null_mean) / (1 - related.null_mean))


@pytest.mark.parametrize("n, p, q", [(40, 12, 20), (12, 30, 25)])  # cross-product and Gram routes
def test_null_permutations_equal_explicitly_shuffled_features(n, p, q):
    """The null's shortcut (only the cross terms recomputed) equals CKA of an explicitly shuffled copy."""
    x, y = features(4, n=n, p=p, q=q)
    result = cka_with_null(x, y, permutations=5, seed=3)
    rng = np.random.default_rng(3)
    values = [reference_cka(x, y[rng.permutation(len(y))]) for _ in range(5)]
    assert result.null_mean == pytest.approx(np.mean(values), rel=1e-9, abs=1e-12)
    assert result.null_std == pytest.approx(np.std(values, ddof=1), rel=1e-9)


def brute_mutual_knn(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Huh et al.'s definition by brute force: full cosine matrices, sets per row."""

    def neighbours(z):
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        sims = z @ z.T
        return [set(np.argsort(-np.where(np.arange(len(z)) == i, -np.inf, row))[:k]) for i, row in enumerate(sims)]

    a, b = neighbours(x), neighbours(y)
    return float(np.mean([len(s & t) / k for s, t in zip(a, b, strict=True)]))


@pytest.mark.parametrize("k", [1, 5, 10])
def test_mutual_knn_equals_brute_force(k):
    x, y = features(6, n=90)
    expected = brute_mutual_knn(x, y, k)
    assert mutual_knn(x, y, k=k) == pytest.approx(expected)
    assert mutual_knn(x, y, k=k, block=7) == pytest.approx(expected)  # row blocks change nothing
    assert 0 < expected < 1


def test_mutual_knn_ends():
    x, _ = features(8, n=300)
    assert mutual_knn(x, 2.0 * x, k=10) == 1.0
    rng = np.random.default_rng(0)
    unrelated = mutual_knn(rng.normal(size=(300, 8)), rng.normal(size=(300, 8)), k=10)
    assert abs(unrelated - knn_chance(300, 10)) < 0.02


def test_bad_inputs_are_one_line_errors():
    x = np.zeros((10, 3))
    with pytest.raises(DataError, match="same images: 10 rows vs 9"):
        debiased_cka(x, np.zeros((9, 3)))
    with pytest.raises(DataError, match="at least 4 images"):
        debiased_cka(x[:3], x[:3])
    with pytest.raises(DataError, match="k=10"):
        mutual_knn(x, x, k=10)
    assert np.isnan(debiased_cka(x, np.random.default_rng(0).normal(size=(10, 3))))  # a constant side

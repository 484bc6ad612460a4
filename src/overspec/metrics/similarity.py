"""Representation similarity of two feature sets of the same images: debiased linear CKA with a permutation null,
and mutual k-nearest-neighbour overlap.

**Debiased linear CKA.** CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) (Kornblith et al., ICML 2019) with
linear kernels K = X Xᵀ, L = Y Yᵀ and the unbiased HSIC estimator of Song et al. (JMLR 2012, eq. 5), as Nguyen et
al. (ICLR 2021) and Murphy et al. (ICLR 2023) use it to remove plain CKA's small-sample bias::

    HSIC₁(K, L) = [ tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n-1)(n-2)) - 2/(n-2) · 1ᵀK̃L̃1 ] / (n(n-3))

where K̃, L̃ are K, L with their diagonals set to 0. No n x n matrix is formed: with k_i = |x_i|², s = Xᵀ1 (and
l, t for Y),

    tr(K̃L̃)  = |XᵀY|²_F - Σ k_i l_i          (Σ_{i≠j} K_ij L_ij)
    1ᵀK̃1    = |s|² - Σ k_i
    1ᵀK̃L̃1  = (X s - k) · (Y t - l)          (K̃1 = X s - k)

so the cost is O(n·p·q) time and O(n·(p+q) + p·q) memory for widths p, q (a 10,000 x 10,000 Gram matrix would
be 800 MB in float64). When n² <= p·q (few images of a wide layer) the hollow n x n Gram matrices are smaller and
faster, and are used instead: memory stays within min(n², p·q) beside the features either way.
Features are centred first: HSIC₁ is invariant to translating either side, and centring
removes the cancellation between the two terms of tr(K̃L̃). Everything runs in float64.

**Permutation null.** Shuffling the pairing of Y's rows with X's destroys every correspondence while keeping each
side's geometry; CKA over ``permutations`` shuffles gives the null's mean and standard deviation. Only the cross
terms (tr(K̃L̃_π) and the 1ᵀK̃L̃1 dot product) change, so each shuffle costs one p x q product (or an n x n
re-indexing on the Gram route). The calibrated score is

    calibrated = (cka - null_mean) / (1 - null_mean)

0 at the null's mean and 1 for identical representations (Murphy et al. compare CKA against its permutation
baseline the same way). The debiased estimator's null mean is close to 0, so calibrated ≈ cka; the null's spread is
what says whether a value is distinguishable from unrelated features at this n.

**Mutual k-NN** (Huh et al., "The Platonic Representation Hypothesis", ICML 2024, their ``mutual_knn``): rows are
L2-normalised, each image's k nearest other images by cosine similarity are found in both spaces, and the score is
the mean fraction |N_X(i) ∩ N_Y(i)| / k. Unrelated features overlap by k/(n-1) in expectation (``knn_chance``). The
n x n similarity is formed in row blocks of ``block`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from overspec.errors import DataError


def _pair(x: np.ndarray, y: np.ndarray, *, least: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 2:
        raise DataError(f"features must be 2-D (images x width); got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"the two feature sets must describe the same images: {x.shape[0]} rows vs {y.shape[0]}")
    if x.shape[0] < least:
        raise DataError(f"this similarity needs at least {least} images, got {x.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError("features hold NaN or inf values")
    return x, y


@dataclass(frozen=True)
class _Side:
    """What HSIC₁ needs of one side: centred features, row norms k, column sums s, K̃1 and 1ᵀK̃1."""

    features: np.ndarray
    norms: np.ndarray
    row_sums: np.ndarray  # K̃1 = X s - k
    total: float  # 1ᵀK̃1

    @classmethod
    def of(cls, x: np.ndarray) -> _Side:
        x = np.asarray(x, dtype=np.float64)
        x = x - x.mean(axis=0)
        norms = np.einsum("ij,ij->i", x, x)
        s = x.sum(axis=0)
        return cls(x, norms, x @ s - norms, float(s @ s - norms.sum()))


def _hsic(a: _Side, b: _Side, trace: float, row_sums_b: np.ndarray) -> float:
    """HSIC₁ from tr(K̃L̃) and Y's K̃1 aligned with X's rows."""
    n = a.features.shape[0]
    return (trace + a.total * b.total / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(a.row_sums @ row_sums_b)) / (
        n * (n - 3)
    )


def _cross_trace(a: _Side, b: _Side, order: np.ndarray | None = None) -> float:
    """tr(K̃L̃) = |XᵀY|²_F - Σ k_i l_i, with Y's rows in ``order``: O(n·p·q)."""
    y, norms = (b.features, b.norms) if order is None else (b.features[order], b.norms[order])
    cross = a.features.T @ y
    return float(np.einsum("ij,ij->", cross, cross) - a.norms @ norms)


def _hollow_gram(side: _Side) -> np.ndarray:
    gram = side.features @ side.features.T
    np.fill_diagonal(gram, 0.0)
    return gram


def _gram_route(a: _Side, b: _Side) -> bool:
    """n x n Gram matrices cost less than p x q cross-products when n² <= p·q (few images, wide layers); either
    way memory stays within min(n², p·q) beside the features."""
    n, p, q = a.features.shape[0], a.features.shape[1], b.features.shape[1]
    return n * n <= p * q


def _self_hsic(side: _Side) -> float:
    if _gram_route(side, side):
        gram = _hollow_gram(side)
        return _hsic(side, side, float(np.einsum("ij,ij->", gram, gram)), side.row_sums)
    return _hsic(side, side, _cross_trace(side, side), side.row_sums)


def unbiased_hsic(x: np.ndarray, y: np.ndarray) -> float:
    """Song et al.'s unbiased HSIC estimator with linear kernels on ``x`` (n, p) and ``y`` (n, q), n >= 4."""
    x, y = _pair(x, y, least=4)
    a, b = _Side.of(x), _Side.of(y)
    return _hsic(a, b, _cross_trace(a, b), b.row_sums)


def _ratio(hsic_xy: float, hsic_xx: float, hsic_yy: float) -> float:
    denominator = hsic_xx * hsic_yy
    return float(hsic_xy / np.sqrt(denominator)) if denominator > 0 else float("nan")


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of ``x`` (n, p) and ``y`` (n, q) with the unbiased HSIC estimator (n >= 4); NaN when either side
    has no estimated variance (constant features)."""
    return cka_with_null(x, y, permutations=0).cka


@dataclass(frozen=True)
class CkaResult:
    """Debiased CKA with its permutation null: ``calibrated = (cka - null_mean) / (1 - null_mean)``."""

    cka: float
    null_mean: float
    null_std: float
    permutations: int

    @property
    def calibrated(self) -> float:
        return (self.cka - self.null_mean) / (1.0 - self.null_mean)


def cka_with_null(x: np.ndarray, y: np.ndarray, *, permutations: int = 16, seed: int = 0) -> CkaResult:
    """Debiased linear CKA and its null over ``permutations`` shuffled pairings of the rows (seeded); 0
    permutations: CKA alone (null fields NaN)."""
    x, y = _pair(x, y, least=4)
    if permutations == 1 or permutations < 0:
        raise DataError(f"the permutation null needs at least 2 shuffles, got {permutations}")
    a, b = _Side.of(x), _Side.of(y)
    hsic_xx, hsic_yy = _self_hsic(a), _self_hsic(b)
    if _gram_route(a, b):
        gram_x, gram_y = _hollow_gram(a), _hollow_gram(b)

        def trace(order):
            shuffled = gram_y if order is None else gram_y[np.ix_(order, order)]
            return float(np.einsum("ij,ij->", gram_x, shuffled))
    else:

        def trace(order):
            return _cross_trace(a, b, order)

    cka = _ratio(_hsic(a, b, trace(None), b.row_sums), hsic_xx, hsic_yy)
    if permutations == 0:
        return CkaResult(cka, float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(permutations):
        order = rng.permutation(len(b.norms))  # X's row i paired with Y's row order[i]
        null.append(_ratio(_hsic(a, b, trace(order), b.row_sums[order]), hsic_xx, hsic_yy))
    null = np.asarray(null)
    return CkaResult(cka, float(null.mean()), float(null.std(ddof=1)), permutations)


def knn_indices(x: np.ndarray, k: int, *, block: int = 1024) -> np.ndarray:
    """(n, k) indices of each row's k most cosine-similar other rows (most similar first), by row blocks."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    n = x.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        sims = x[start:stop] @ x.T
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # an image is not its own neighbour
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[start:stop] = np.take_along_axis(top, order, axis=1)
    return out


def mutual_knn(x: np.ndarray, y: np.ndarray, *, k: int = 10, block: int = 1024) -> float:
    """Mean over images of |kNN_x(i) ∩ kNN_y(i)| / k, cosine neighbours, self excluded (Huh et al., 2024)."""
    x, y = _pair(x, y, least=2)
    if not 1 <= k < x.shape[0]:
        raise DataError(f"mutual k-NN needs 1 <= k < number of images ({x.shape[0]}); got k={k}")
    a, b = knn_indices(x, k, block=block), knn_indices(y, k, block=block)
    # per row, the count of shared indices: a set intersection by sorting each row's 2k indices
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    shared = (both[:, 1:] == both[:, :-1]).sum(axis=1)
    return float(np.mean(shared / k))


def knn_chance(n: int, k: int) -> float:
    """Expected mutual k-NN overlap of unrelated features: k/(n-1)."""
    return k / (n - 1)

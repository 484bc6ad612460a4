"""Linear probe: overspec's torch L-BFGS path vs the scikit-learn sweep a user would write.

Both see the same standardised features, the same class-stratified validation split and the same
regularisation values (scikit-learn's C = 1 / (l2 · n)); each picks its best value on validation, refits on
train+val and scores test once. Features are synthetic but realistic in size and difficulty (Gaussian class
clusters in a 768-d space with 20 % label noise, so the best regularisation is moderate, as on real
features).

    python bench/linear_probe.py                 # 50,000 x 768, 100 classes
    python bench/linear_probe.py --n 10000 --d 256 --classes 50
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def make_features(n: int, d: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)).astype(np.float32) * 0.08
    basis = rng.normal(size=(d, d)).astype(np.float32) / np.sqrt(d)  # correlated, anisotropic noise

    def draw(m):
        y = rng.integers(0, classes, m)
        x = centres[y] + rng.normal(size=(m, d)).astype(np.float32) @ basis
        noisy = rng.random(m) < 0.2  # label noise: weak regularisation overfits, as on real features
        y[noisy] = rng.integers(0, classes, int(noisy.sum()))
        return x, y

    return draw(n), draw(n // 5)


def sklearn_sweep(x, y, xt, yt, l2_values, fit, val):
    """Fit scikit-learn per value (lbfgs, max_iter=1000), best on validation, refit on train+val, test once."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    warnings.simplefilter("ignore", ConvergenceWarning)

    def standardise(a, ref):
        return (a - ref.mean(0)) / ref.std(0)

    best = None
    for l2 in l2_values:
        clf = LogisticRegression(C=1.0 / (l2 * len(fit)), max_iter=1000)
        clf.fit(standardise(x[fit], x[fit]), y[fit])
        accuracy = clf.score(standardise(x[val], x[fit]), y[val])
        if best is None or accuracy > best[0]:
            best = (accuracy, l2)
    clf = LogisticRegression(C=1.0 / (best[1] * len(y)), max_iter=1000).fit(standardise(x, x), y)
    return clf.score(standardise(xt, x), yt), best[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--classes", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    (x, y), (xt, yt) = make_features(args.n, args.d, args.classes)

    from overspec.data.labelled import seeded_split
    from overspec.protocols.linear_probe import probe
    from overspec.protocols.logistic import DEFAULT_GRID

    # torch.optim imports torch._dynamo on first use: a one-time cost per process (paid once by
    # `overspec run` for all its probes), timed here and left out of the probe's figure
    start = time.perf_counter()
    torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])
    print(f"one-time torch.optim import: {time.perf_counter() - start:.1f} s (not counted below)")
    start = time.perf_counter()
    metrics, details = probe(x, y, xt, yt, args.classes)
    ours = time.perf_counter() - start
    tried = [l2 for l2, _ in details["l2_path"]]
    print(f"overspec: acc1 {metrics['acc1']:.4f}  l2 {details['l2']:.3g}  {len(tried)} values  {ours:.1f} s")

    fit, val = seeded_split(y, test_fraction=0.2, seed=0)
    start = time.perf_counter()
    sk_acc, sk_l2 = sklearn_sweep(x, y, xt, yt, tried, fit, val)
    same = time.perf_counter() - start
    print(f"sklearn, the {len(tried)} values overspec tried: acc1 {sk_acc:.4f}  l2 {sk_l2:.3g}  {same:.1f} s")
    # what a user would run: the whole grid (no early stop), plus the same refinement values
    grid = sorted(set(DEFAULT_GRID.tolist()) | set(tried), reverse=True)
    start = time.perf_counter()
    full_acc, full_l2 = sklearn_sweep(x, y, xt, yt, grid, fit, val)
    full = time.perf_counter() - start
    print(f"sklearn, whole grid of {len(grid)} values: acc1 {full_acc:.4f}  l2 {full_l2:.3g}  {full:.1f} s")
    print(
        f"speed-up {full / ours:.1f}x against the whole-grid sweep ({same / ours:.1f}x against the same values); "
        f"accuracy difference {100 * (metrics['acc1'] - full_acc):+.2f} points "
        f"({args.n} x {args.d}, {args.classes} classes, {torch.get_num_threads()} threads)"
    )


if __name__ == "__main__":
    main()

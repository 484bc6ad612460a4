"""Linear-probe recipes side by side: accuracy, chosen regularisation and seconds of each on one feature set.

Features are synthetic but shaped like CLIP image embeddings: Gaussian class clusters in a correlated,
anisotropic space, a large common offset and a per-image norm that varies (so z-scoring, L2-normalising and
raw features differ), with 20 % label noise (so the best regularisation is moderate).

    python bench/probe_recipes.py                      # 4,000 x 256, 20 classes
    python bench/probe_recipes.py --n 10000 --d 512 --classes 50
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def make_features(n: int, d: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)) * 0.12
    basis = rng.normal(size=(d, d)) / np.sqrt(d)
    offset = rng.normal(size=d) * 0.5

    def draw(m):
        y = rng.integers(0, classes, m)
        x = offset + centres[y] + rng.normal(size=(m, d)) @ basis
        x *= rng.uniform(0.5, 2.0, size=(m, 1))  # embedding norms vary from image to image
        noisy = rng.random(m) < 0.2
        y[noisy] = rng.integers(0, classes, int(noisy.sum()))
        return x.astype(np.float32), y

    return draw(n), draw(n // 4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--classes", type=int, default=20)
    args = parser.parse_args()
    (x, y), (xt, yt) = make_features(args.n, args.d, args.classes)

    from overspec.protocols.linear_probe import probe

    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # one-time torch.optim import, not timed
    print(f"{args.n} train x {args.d}-d, {len(yt)} test, {args.classes} classes, {torch.get_num_threads()} threads")
    print("| recipe | top-1 (%) | regularisation chosen | validation top-1 (%) | seconds |")
    print("|---|---|---|---|---|")
    for name in ["lbfgs", "clip_benchmark", "clip_paper"]:
        start = time.perf_counter()
        metrics, details = probe(x, y, xt, yt, args.classes, recipe=name)
        seconds = time.perf_counter() - start
        chosen = {"lbfgs": "l2", "clip_benchmark": "weight_decay", "clip_paper": "C"}[name]
        print(
            f"| {name} | {100 * metrics['acc1']:.2f} | {chosen} = {details[chosen]:.3g} | "
            f"{100 * details['validation_acc1']:.2f} | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()

"""IJB-C-sized 1:1 scoring end to end: template pooling, 15.6 M pair scores, TAR@FAR / AUC / EER.

Synthetic image features with IJB-C's shape (~470k images in ~23k templates over ~3.5k identities,
512-d) stand in for a model's output; the pairs mimic IJB-C's ~19.5k genuine among 15.6 M pairs.
Reports wall time of each stage and the process's peak resident memory.

    python bench/ijb.py [--templates 23124 --pairs 15658489 --images 469375 --dim 512]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--templates", type=int, default=23_124)
    parser.add_argument("--pairs", type=int, default=15_658_489)
    parser.add_argument("--genuine", type=int, default=19_557)
    parser.add_argument("--images", type=int, default=469_375)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    identities = rng.integers(0, 3_531, args.templates)
    centres = rng.normal(size=(3_531, args.dim)).astype(np.float32)
    image_template = np.sort(rng.integers(0, args.templates, args.images))
    media = image_template * 8 + rng.integers(0, 8, args.images)
    features = np.empty((args.images, args.dim), np.float32)
    for start in range(0, args.images, 50_000):  # in chunks, so generating the data does not set the peak
        stop = min(start + 50_000, args.images)
        features[start:stop] = rng.standard_normal((stop - start, args.dim), dtype=np.float32) * 8
        features[start:stop] += centres[identities[image_template[start:stop]]]
    genuine_pairs = []
    while len(genuine_pairs) < args.genuine:  # pairs of templates of one identity
        a = rng.integers(0, args.templates, args.genuine * 4)
        b = rng.integers(0, args.templates, args.genuine * 4)
        keep = (identities[a] == identities[b]) & (a != b)
        genuine_pairs += list(zip(a[keep], b[keep], strict=True))
    genuine_pairs = np.array(genuine_pairs[: args.genuine])
    impostor = rng.integers(0, args.templates, (args.pairs - args.genuine, 2))
    pairs = np.concatenate([genuine_pairs, impostor])
    del impostor
    labels = identities[pairs[:, 0]] == identities[pairs[:, 1]]
    print(
        f"{args.images:,} images, {args.templates:,} templates, {len(pairs):,} pairs ({labels.sum():,} genuine), "
        f"{args.dim}-d"
    )

    from overspec.metrics.conventions import ScoreSet
    from overspec.metrics.conventions.scoring import score_set
    from overspec.protocols.ijb import pair_scores, template_features

    start = time.perf_counter()
    ids, pooled = template_features(features, image_template, media)
    pooled_at = time.perf_counter()
    scores = pair_scores(ids, pooled, pairs)
    scored_at = time.perf_counter()
    metrics = score_set(ScoreSet.of("verification", scores, labels), "iso").values
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"pooling {pooled_at - start:.1f} s, pair scores {scored_at - pooled_at:.1f} s, "
        f"metrics {done - scored_at:.1f} s: total {done - start:.1f} s; peak RSS {peak:.2f} GiB "
        f"(the synthetic features alone are {features.nbytes / 2**30:.2f} GiB)"
    )
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})  # None: not resolvable


if __name__ == "__main__":
    main()

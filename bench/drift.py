"""Drift's cost: all-layer extraction (forward hooks, one pass) against final-feature extraction, and peak memory.

1. Throughput: ``extract_layers`` (13 layers of a ViT-B/32: 12 class tokens and the embedding) against
   ``extract_features`` (the embedding alone) on the same JPEGs, same batch size and workers, alternating rounds;
   the overhead is what the hooks and the per-layer copies add to the forward pass.
2. Peak memory (VmHWM of a fresh process each): extraction of N images into the cache, all layers vs final
   features; and the comparison of two models' layer features at ``--compare-images`` images (default 10,000), read
   from the layer cache one layer at a time: CKA with its permutation null and mutual k-NN for every layer. The
   comparison's features are random (its cost does not depend on their values), written in the cache's own format,
   so the 10,000-image figure is measured, not extrapolated, without 10,000 forward passes per model.

    python bench/drift.py [--images 256] [--rounds 3] [--compare-images 10000] [--permutations 16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARCH = "ViT-B-32"


def _setup(root: Path, n: int) -> tuple[Path, Path]:
    """JPEG photo crops (bench/extraction.py's) and a random-init ViT-B/32 in OpenAI format."""
    import open_clip
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from extraction import photos

    photos(root / "photos", n)
    torch.manual_seed(0)
    weights = root / "model.pt"
    if not weights.exists():
        torch.save(open_clip.create_model(ARCH, pretrained=None).state_dict(), weights)
    return root / "photos", weights


def _encoder(weights: Path):
    from overspec.models import load_model

    return load_model({"family": "openai_clip", "weights": str(weights)})


def throughput(root: Path, n: int, rounds: int) -> dict:
    from overspec.data.images import ImageFiles, list_images
    from overspec.features import extract_features
    from overspec.features.layer_extract import extract_layers

    folder, weights = _setup(root, n)
    encoder = _encoder(weights)
    images = ImageFiles(list_images(folder))
    runs = {"final": [], "layers": []}
    for _ in range(rounds):
        for kind in runs:
            start = time.perf_counter()
            if kind == "final":
                extract_features(encoder, images, cache=False, progress=False)
            else:
                extract_layers(encoder, images, cache=False, progress=False)
            runs[kind].append(n / (time.perf_counter() - start))
    return {k: sorted(v) for k, v in runs.items()}


def _peak_mib() -> float:
    """This process's resident-memory high-water mark (VmHWM). Not ru_maxrss: Linux keeps that across exec, so a
    child started by a parent that ran a ViT would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _child(kind: str, root: Path, n: int, permutations: int) -> None:
    """One measurement in this fresh process; prints JSON with its peak RSS."""
    os.environ["OVERSPEC_CACHE"] = str(root / f"cache-{kind}-{n}")
    start = time.perf_counter()
    if kind in ("final", "layers"):
        from overspec.data.images import ImageFiles, list_images
        from overspec.features import extract_features
        from overspec.features.layer_extract import extract_layers

        folder, weights = root / "photos", root / "model.pt"
        encoder = _encoder(weights)
        images = ImageFiles(list_images(folder))
        (extract_features if kind == "final" else extract_layers)(encoder, images, progress=False)
    else:
        compare(root, n, permutations)
    peak = _peak_mib()
    print(json.dumps({"kind": kind, "n": n, "peak_mib": peak, "seconds": time.perf_counter() - start}))


def compare(root: Path, n: int, permutations: int) -> None:
    """Two models' 13 layers (width 768) of n images written in the layer cache's format, then compared."""
    import numpy as np

    from overspec.analysis.drift import compare_layers
    from overspec.features.cache import CacheEntry
    from overspec.features.layer_extract import LayerFeatures
    from overspec.features.layers import CLASS_TOKEN, EMBEDDING, Layer

    layers = [Layer(f"block {i}", f"visual.transformer.resblocks.{i}", CLASS_TOKEN, 1) for i in range(12)]
    layers.append(Layer("embedding", "", EMBEDDING))
    rng = np.random.default_rng(0)
    sides = []
    for side in ("base", "tuned"):
        folder = root / f"compare-{n}" / side
        for i in range(len(layers)):
            entry = CacheEntry(folder / f"layer_{i:03d}", n)
            entry.folder.mkdir(parents=True, exist_ok=True)
            width = 512 if i == len(layers) - 1 else 768
            for start in range(0, n, 1024):  # written as extraction writes: chunk by chunk
                entry.write_chunk(start, rng.normal(size=(min(1024, n - start), width)).astype(np.float32))
            entry.finish()
        sides.append(LayerFeatures(layers, n, folder))
    start = time.perf_counter()
    compare_layers(*sides, permutations=permutations)
    print(f"compare alone: {time.perf_counter() - start:.1f} s", file=sys.stderr)


def _measure(kind: str, root: Path, n: int, permutations: int) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--root", str(root), "--images", str(n),
         "--permutations", str(permutations)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "note": result.stderr.strip()[-200:]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare-images", type=int, default=10_000)
    parser.add_argument("--permutations", type=int, default=16)
    parser.add_argument("--child")
    parser.add_argument("--root")
    args = parser.parse_args()
    if args.child:
        _child(args.child, Path(args.root), args.images, args.permutations)
        return
    import torch

    root = Path(tempfile.mkdtemp(prefix="overspec-drift-bench-"))
    speed = throughput(root, args.images, args.rounds)
    print(f"{args.images} JPEGs, {ARCH} random init, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores")
    for kind, values in speed.items():
        print(f"  {kind:6s} img/s over {args.rounds} rounds: {', '.join(f'{v:.1f}' for v in values)}")
    best = {k: max(v) for k, v in speed.items()}
    median = {k: v[len(v) // 2] for k, v in speed.items()}
    print(f"  all-layer overhead: {100 * (best['final'] / best['layers'] - 1):+.1f} % (best), "
          f"{100 * (median['final'] / median['layers'] - 1):+.1f} % (median)")  # fmt: skip
    for kind in ("final", "layers"):
        m = _measure(kind, root, args.images, args.permutations)
        print(f"  peak RSS, {kind} extraction into the cache, {args.images} images: {m['peak_mib']:.0f} MiB")
    m = _measure("compare", root, args.compare_images, args.permutations)
    print(
        f"  peak RSS, drift of two ViT-B/32 feature sets (13 layers) at {args.compare_images} images, "
        f"{args.permutations} permutations: {m['peak_mib']:.0f} MiB ({m['note']}; with writing {m['seconds']:.0f} s)"
    )


if __name__ == "__main__":
    main()

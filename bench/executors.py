"""Local vs Ray executors on one small experiment, in one run: wall time and the overhead Ray adds per cell.

The experiment: a tiny random-init CLIP and a LoRA specialist, zero-shot and linear probe on real digits (two
copies) and 1:1 verification on LFW pairs: 10 cells. The feature cache is warmed first, so the figures are the
executor's cost, not extraction's. Ray runs with 1 and 2 CPUs (1 CPU per model worker: 1 or 2 workers at once).

    python bench/executors.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def build(root: Path) -> Path:
    import torch

    from helpers.cli import write_yaml
    from helpers.data import DIGIT_NAMES, digit_images, write_bin
    from helpers.models import tiny_clip, to_split_lora_format

    for split, per_class, offset in (("train", 30, 0), ("test", 15, 30)):
        for i, (image, label) in enumerate(digit_images(per_class, offset)):
            folder = root / "digits" / split / f"{label}_{DIGIT_NAMES[label]}"
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{i}.png")
    torch.save(tiny_clip().state_dict(), root / "clip.pt")
    torch.save(to_split_lora_format(tiny_clip(), 4, seed=3)[0], root / "fr.pth")
    write_yaml(root / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"})
    write_yaml(root / "fr.yaml", {"family": "froundation", "checkpoint": "fr.pth", "lora": {"r": 4, "alpha": 8}})
    write_bin(root / "lfw.bin", n_pairs=40)
    digits = str(root / "digits")
    return write_yaml(
        root / "bench.yaml",
        {
            "name": "bench",
            "models": [{"name": "clip", "spec": "clip.yaml"}, {"name": "fr", "spec": "fr.yaml", "base": "clip"}],
            "general": {"datasets": ["digits", "digits2"], "roots": {"digits": digits, "digits2": digits}},
            "biometric": [{"name": "lfw", "protocol": "face_verification", "path": str(root / "lfw.bin")}],
            "workers": 0,
        },
    )


def timed(config: Path, out: Path, executor: str) -> tuple[float, int]:
    from overspec.runner import run_experiment

    start = time.perf_counter()
    summary = run_experiment(config, out=out, executor=executor, report=False, log=lambda line: None)
    return time.perf_counter() - start, summary.ran


def main() -> None:
    import ray

    root = Path(tempfile.mkdtemp(prefix="overspec-bench-"))
    os.environ.setdefault("OVERSPEC_CACHE", str(root / "cache"))
    config = build(root)
    timed(config, root / "warm", "local")  # fill the feature cache
    local, cells = timed(config, root / "local", "local")
    print(f"{cells} cells, warm feature cache")
    print(f"local           {local:6.1f} s   {local / cells:5.2f} s/cell")
    for cpus in (1, 2):
        start = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        started = time.perf_counter() - start
        wall, _ = timed(config, root / f"ray{cpus}", "ray")
        ray.shutdown()
        print(
            f"ray, {cpus} worker{'s' if cpus > 1 else ' '} {wall:6.1f} s   {wall / cells:5.2f} s/cell   "
            f"{local / wall:4.2f}x local   (+ {started:.1f} s to start Ray; {(wall - local) / cells:+.2f} s/cell)"
        )


if __name__ == "__main__":
    main()

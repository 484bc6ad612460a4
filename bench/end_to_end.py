"""Zero-shot + linear probe of one model on one dataset, end to end: overspec vs CLIP_benchmark's pipeline, one run.

Workload: a random-init ViT-B/32 saved as an OpenAI-format state dict, 600 JPEG photo patches of 10 classes (400
train / 200 test) cut from scikit-image's bundled photos, on the CPU.

- overspec: ``overspec eval SPEC DATA --protocol zeroshot,linear_probe`` in a fresh process with an empty cache
  (cold), then the same command again (warm: features and results cached).
- CLIP_benchmark (pip ``clip-benchmark``, installed with ``--no-deps``), with the same weights built as OpenAI's
  architecture (``ViT-B-32-quickgelu``: OpenAI's CLIP uses QuickGELU, as overspec's OpenAI-format loader builds
  it), called as its CLI would: its zero-shot
  ``evaluate``, then its linear-probe ``evaluate`` (which featurises train, validation and test again) with a 20 %
  validation split so that it sweeps weight decay as overspec sweeps its regularisation. Its hard-coded CUDA is
  patched to run on the CPU: the ``assert device == 'cuda'`` and ``.cuda()`` calls, and its ``accuracy`` helper's
  NumPy-2 bug (``float()`` of a one-element array).

    python bench/end_to_end.py [--per-class 60] [--threads 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field", "horse", "clock", "coins", "brick")
TEMPLATES = ["a photo of a {c}.", "a close-up photo of the {c}."]


def build_photos(root: Path, per_class: int) -> None:
    """``train/<class>/*.jpg`` (2/3) and ``test/<class>/*.jpg`` (1/3): random 224 px crops of each photo."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in PHOTOS:
        photo = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        photo = photo.resize((max(photo.width, 320), max(photo.height, 320)))
        for i in range(per_class):
            size = int(rng.integers(96, min(photo.size)))
            x, y = int(rng.integers(0, photo.width - size + 1)), int(rng.integers(0, photo.height - size + 1))
            split = "train" if i < per_class * 2 // 3 else "test"
            folder = root / split / name.replace("_", " ")
            folder.mkdir(parents=True, exist_ok=True)
            photo.crop((x, y, x + size, y + size)).resize((224, 224)).save(folder / f"{i:03d}.jpg", quality=90)
    (root / "templates.txt").write_text("\n".join(TEMPLATES) + "\n")


def build_model(root: Path) -> Path:
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    torch.save(model.state_dict(), root / "vit_b32.pt")
    spec = root / "vit_b32.yaml"
    spec.write_text(f"family: openai_clip\nweights: {root / 'vit_b32.pt'}\n")
    return spec


def overspec_eval(spec: Path, data: Path, env: dict) -> tuple[float, dict]:
    command = [sys.executable, "-m", "overspec.cli", "eval", str(spec), str(data)]
    command += ["--protocol", "zeroshot,linear_probe", "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def acc1(document: dict, entry: int) -> float:
    """Top-1 of the ``entry``-th protocol of an ``overspec eval`` document (schemas/eval.schema.json)."""
    return document["results"][entry]["metrics"]["acc1"]["value"]


def clip_benchmark(spec_weights: Path, data: Path, threads: int) -> tuple[float, dict]:
    """CLIP_benchmark's zero-shot and linear-probe evaluation of the same weights, in this process."""
    import open_clip
    import torch
    from clip_benchmark.metrics import linear_probe, zeroshot_classification
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import ImageFolder

    torch.set_num_threads(threads)
    zeroshot_classification.accuracy = _accuracy  # its NumPy-2 bug (module doc)
    start = time.perf_counter()
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32-quickgelu", pretrained=str(spec_weights))
    model.eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32-quickgelu")
    train = ImageFolder(str(data / "train"), transform=preprocess)
    test = ImageFolder(str(data / "test"), transform=preprocess)
    loader = {"batch_size": 64, "num_workers": threads - 1}
    test_loader = DataLoader(test, shuffle=False, **loader)
    zero_shot = zeroshot_classification.evaluate(
        model, test_loader, tokenizer, train.classes, TEMPLATES, "cpu", amp=False
    )
    # its CLI's --val_proportion 0.2: a random 20 % of train for the weight-decay sweep
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0)).tolist()
    cut = int(len(train) * 0.8)
    train_loader = DataLoader(Subset(train, order[:cut]), shuffle=False, **loader)
    val_loader = DataLoader(Subset(train, order[cut:]), shuffle=False, **loader)
    probe = _cpu_linear_probe(linear_probe)(
        model,
        train_loader,
        test_loader,
        fewshot_k=-1,
        batch_size=64,
        num_workers=0,
        lr=0.1,
        epochs=10,
        model_id="vit_b32",
        seed=0,
        feature_root=tempfile.mkdtemp(),
        device="cpu",
        val_dataloader=val_loader,
        normalize=True,
        amp=False,
    )
    return time.perf_counter() - start, {"zeroshot_acc1": zero_shot["acc1"], "linear_probe_acc1": probe["lp_acc1"]}


def _accuracy(output, target, topk=(1,)):
    """CLIP_benchmark's ``accuracy`` with ``.item()`` where it calls ``float()`` on a one-element array."""
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    return [float(correct[:k].reshape(-1).float().sum(0, keepdim=True).item()) / len(target) for k in topk]


def _cpu_linear_probe(module):
    """CLIP_benchmark's ``linear_probe.evaluate`` with its CUDA-only lines patched for the CPU (module doc)."""
    import torch

    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    module.accuracy = _accuracy
    source = inspect.getsource(module.evaluate).replace("assert device == 'cuda'", "pass")
    namespace = dict(vars(module))
    exec(compile(source, module.__file__, "exec"), namespace)  # noqa: S102 - the installed package's own code
    return namespace["evaluate"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; the median ratio is reported")
    parser.add_argument("--clip-benchmark-in", type=Path, help=argparse.SUPPRESS)  # the timed child process
    args = parser.parse_args()
    if args.clip_benchmark_in is not None:
        print(
            json.dumps(
                clip_benchmark(args.clip_benchmark_in / "vit_b32.pt", args.clip_benchmark_in / "photos", args.threads)[
                    1
                ]
            )
        )
        return
    root = Path(tempfile.mkdtemp(prefix="overspec-e2e-"))
    build_photos(root / "photos", args.per_class)
    spec = build_model(root)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    n = len(list((root / "photos").rglob("*.jpg")))
    print(f"{n} JPEG photos, 10 classes; random-init ViT-B/32; {args.threads} threads; {args.rounds} rounds")
    ratios, warm_shares = [], []
    for round_ in range(1, args.rounds + 1):  # alternating, so that a slow spell of the machine hits both
        env["OVERSPEC_CACHE"] = str(root / f"cache-{round_}")
        cold, ours = overspec_eval(spec, root / "photos", env)
        warm, again = overspec_eval(spec, root / "photos", env)
        assert again == ours, "the warm rerun must print what the cold run printed"
        # in a fresh process too, as its CLI runs: process start and imports count for both
        start = time.perf_counter()
        child = [sys.executable, __file__, "--clip-benchmark-in", str(root), "--threads", str(args.threads)]
        done = subprocess.run(child, capture_output=True, text=True, env=env, check=True)
        theirs_seconds, theirs = time.perf_counter() - start, json.loads(done.stdout.strip().splitlines()[-1])
        ratios.append(theirs_seconds / cold)
        warm_shares.append(warm / cold)
        print(
            f"round {round_}: overspec cold {cold:5.1f} s (zero-shot {acc1(ours, 0):.3f}, linear probe "
            f"{acc1(ours, 1):.3f}); warm {warm:4.1f} s ({100 * warm / cold:.1f} % of cold); CLIP_benchmark "
            f"{theirs_seconds:5.1f} s (zero-shot {theirs['zeroshot_acc1']:.3f}, linear probe "
            f"{theirs['linear_probe_acc1']:.3f}); ratio {theirs_seconds / cold:.2f}x"
        )
    print(
        f"overspec cold is {statistics.median(ratios):.2f}x CLIP_benchmark's pipeline (median of {args.rounds}); "
        f"warm rerun {100 * statistics.median(warm_shares):.1f} % of cold"
    )


if __name__ == "__main__":
    main()

"""Small real runs of `overspec run` to compare across: tiny CLIPs saved as real checkpoints, real digit and face
images, each run with a base, a specialist and one benchmark of the specialist's task."""

from __future__ import annotations

from pathlib import Path

import torch

from helpers.cli import write_yaml
from helpers.data import DIGIT_NAMES, build_attack_layout, digit_images, write_bin
from helpers.models import tiny_clip, to_split_lora_format

# run name: (specialist family, its task, the tiny CLIP's width (a second "architecture"), LoRA seed)
RUNS = {
    "fr-b": ("froundation", "fr", 64, 3),
    "mad-b": ("madation", "mad", 64, 4),
    "fr-l": ("froundation", "fr", 96, 5),
}


def _benchmarks(root: Path) -> dict[str, dict]:
    """A face-verification .bin and a MAD protocol CSV (SMDD-style train, SYN-MAD-style test), written once."""
    from overspec.data.attack_layouts import LAYOUTS
    from overspec.data.attack_protocol import write_protocol_csv

    if not (root / "mad.csv").exists():
        write_bin(root / "lfw.bin", n_pairs=20)
        build_attack_layout("syn_mad22", root / "mad_test")
        build_attack_layout("smdd", root / "mad_train")
        samples = LAYOUTS.get("smdd")(root / "mad_train") + LAYOUTS.get("syn_mad22")(root / "mad_test")
        write_protocol_csv(samples, root / "mad.csv")
    return {
        "fr": {"name": "lfw", "protocol": "face_verification", "path": str(root / "lfw.bin")},
        "mad": {"name": "syn_mad22", "protocol": "attack_detection", "task": "mad", "path": str(root / "mad.csv")},
    }


def small_digits(root: Path, train: int = 8, test: int = 6) -> Path:
    """Real digits in the class-per-folder layout, ``train`` and ``test`` images per class (few: the runs are many)."""
    folder = root / "digits"
    if not folder.exists():
        for split, per_class, offset in (("train", train, 0), ("test", test, train)):
            for i, (image, label) in enumerate(digit_images(per_class, offset)):
                (folder / split / f"{label}_{DIGIT_NAMES[label]}").mkdir(parents=True, exist_ok=True)
                image.save(folder / split / f"{label}_{DIGIT_NAMES[label]}" / f"{i:04d}.png")
        (folder / "classnames.txt").write_text("\n".join(DIGIT_NAMES) + "\n")
        (folder / "templates.txt").write_text('a photo of the number: "{c}".\n')
    return folder


def write_run_config(root: Path, name: str, digits_folder: Path) -> Path:
    """The experiment YAML of run ``name`` (``RUNS``), its models saved beside it."""
    family, task, width, seed = RUNS[name]
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(tiny_clip(width=width).state_dict(), folder / "clip.pt")
    write_yaml(folder / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"})
    state, _ = to_split_lora_format(tiny_clip(width=width), 2, seed=seed)
    torch.save(state, folder / "specialist.pth")
    spec = {"family": family, "checkpoint": "specialist.pth", "lora": {"r": 2, "alpha": 4}}
    if family == "madation":
        torch.manual_seed(seed)
        head = {"linear.weight": torch.randn(2, 32), "linear.bias": torch.zeros(2)}
        torch.save(head, folder / "head.pth")
        spec["head"] = "head.pth"
    write_yaml(folder / "specialist.yaml", spec)
    roots = {"digits": str(digits_folder), "digits_again": str(digits_folder)}
    return write_yaml(
        folder / "experiment.yaml",
        {
            "name": name,
            "models": [
                {"name": "clip", "spec": "clip.yaml"},
                {"name": f"{task}-specialist", "spec": "specialist.yaml", "base": "clip", "task": task},
            ],
            "general": {"datasets": sorted(roots), "protocols": ["zeroshot", "linear_probe"], "roots": roots},
            "biometric": [_benchmarks(root)[task]],
            "workers": 0,
        },
    )


def three_runs(root: Path) -> list[Path]:
    """Run the three experiments of ``RUNS`` (with their reports) into ``root/<name>/run``."""
    from overspec.runner import run_experiment

    digits, outs = small_digits(root), []
    for name in RUNS:
        out = root / name / "run"
        run_experiment(write_run_config(root, name, digits), out=out, log=lambda line: None)
        outs.append(out)
    return outs


def frontier_run(root: Path) -> Path:
    """`overspec frontier` over run fr-b of ``three_runs(root)`` (which must have run): its FR specialist's LoRA
    scaled (0.5, 2) and a task-arithmetic merge of it into its base (λ 1: the specialist itself, as a point), compared
    at FR score 0.5 (random tiny models gain nothing over the base, so no default matched score exists); a MAD method
    too, whose task has no frontier (the base is kept off the MAD benchmark). Returns the run folder
    (``root/fr-frontier``)."""
    import yaml

    from overspec.frontier.run import run_frontier

    folder = root / "fr-b"
    config = yaml.safe_load((folder / "experiment.yaml").read_text())
    merge = {"family": "merge", "base": "clip.yaml", "models": [{"model": "specialist.yaml", "weight": 1.0}]}
    write_yaml(folder / "merge.yaml", {**merge, "method": "task_arithmetic"})
    config["name"] = "fr-frontier"
    config["biometric"].append(_benchmarks(root)["mad"])
    config["models"][0]["protocols"] = ["zeroshot", "linear_probe", "face_verification"]  # no MAD result
    config["frontier"] = {
        "base": "clip",
        "methods": [
            {"name": "lora-scale", "task": "fr", "model": "specialist.yaml", "grid": [0.5, 2.0]},
            {"name": "merge", "task": "fr", "model": "merge.yaml", "grid": [1.0]},
            {"name": "mad-scale", "task": "mad", "model": str(root / "mad-b" / "specialist.yaml"), "grid": [1.0]},
        ],
        "match": {"fr": 0.5},
        "n_boot": 200,
    }
    out = root / "fr-frontier"
    run_frontier(write_yaml(folder / "frontier.yaml", config), out=out, log=lambda line: None)
    return out

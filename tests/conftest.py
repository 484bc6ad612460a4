"""Shared fixtures: tiny random-weight models saved to disk exactly as real checkpoints are, and real images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "examples" / "images"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own feature cache and weights folder."""
    monkeypatch.setenv("OVERSPEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OVERSPEC_WEIGHTS", str(tmp_path / "weights"))


def tiny_clip(seed: int = 0):
    """A random-weight open_clip CLIP small enough for CPU tests (OpenAI layout, 32 px, QuickGELU)."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    model = open_clip.model.CLIP(
        embed_dim=32,
        vision_cfg=open_clip.model.CLIPVisionCfg(layers=2, width=64, patch_size=8, image_size=32),
        text_cfg=open_clip.model.CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
        quick_gelu=True,
    )
    with torch.no_grad():
        for param in model.parameters():  # non-zero biases too, so every tensor matters
            param.add_(torch.randn_like(param) * 0.02)
    return model.eval()


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory) -> Path:
    """An OpenAI-format CLIP state dict on disk (what FRoundation & co. start from)."""
    import torch

    path = tmp_path_factory.mktemp("clip") / "tiny_clip.pt"
    torch.save(tiny_clip().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def face_dir(tmp_path_factory) -> Path:
    """Real face crops: the first 12 of scikit-image's lfw_subset, as PNG files."""
    from PIL import Image
    from skimage.data import lfw_subset

    folder = tmp_path_factory.mktemp("faces")
    faces = lfw_subset()[:12]
    for i, face in enumerate(faces):
        Image.fromarray((face * 255).astype(np.uint8)).convert("RGB").save(folder / f"face_{i:02d}.png")
    return folder


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


def digit_images(per_class: int, offset: int = 0):
    """Real handwritten digits (scikit-learn's bundled set) as 32x32 RGB PIL images with labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    out = []
    for label in range(10):
        rows = [i for i, t in enumerate(digits.target) if t == label][offset : offset + per_class]
        for i in rows:
            pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
            out.append((Image.fromarray(pixels).resize((32, 32), Image.BICUBIC).convert("RGB"), label))
    return out


DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory) -> Path:
    """Class-per-folder layout of real digits: train/<class>/ (30 each) and test/<class>/ (15 each)."""
    root = tmp_path_factory.mktemp("digits")
    for split, per_class, offset in (("train", 30, 0), ("test", 15, 30)):
        for i, (image, label) in enumerate(digit_images(per_class, offset)):
            folder = root / split / f"{label}_{DIGIT_NAMES[label]}"
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{i:04d}.png")
    (root / "classnames.txt").write_text("\n".join(DIGIT_NAMES) + "\n")
    (root / "templates.txt").write_text('a photo of the number: "{c}".\na drawing of the digit {c}.\n')
    return root


def lfw_faces(n: int, offset: int = 0, size: int = 64):
    """Real face crops from scikit-image's lfw_subset (no identity labels), upscaled RGB PIL images."""
    from PIL import Image
    from skimage.data import lfw_subset

    faces = lfw_subset()[offset : offset + n]  # the first 100 entries are faces
    return [
        Image.fromarray((f * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC).convert("RGB") for f in faces
    ]

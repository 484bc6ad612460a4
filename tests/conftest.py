"""Shared fixtures: an isolated cache per test, a tiny CLIP saved as a real checkpoint, real images.
Builders live in ``tests/helpers``; test modules import from there, never from each other."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from helpers.data import DIGIT_NAMES, digit_images

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Module- and session-scoped fixtures run before a test's own cache is set: they get this private one,
    never the user's cache."""
    patch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("session_cache")
    patch.setenv("OVERSPEC_CACHE", str(root / "cache"))
    patch.setenv("OVERSPEC_WEIGHTS", str(root / "weights"))
    yield root
    patch.undo()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own feature cache and weights folder."""
    monkeypatch.setenv("OVERSPEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OVERSPEC_WEIGHTS", str(tmp_path / "weights"))


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory) -> Path:
    """An OpenAI-format CLIP state dict on disk (what FRoundation & co. start from)."""
    import torch

    from helpers.models import tiny_clip

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


@pytest.fixture
def command(capsys, monkeypatch):
    """``overspec ARGS`` through the CLI's entry point in this process (no interpreter start): its one line of
    error (exit code 2, no traceback)."""
    import sys

    from overspec.cli import run

    def invoke(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", ["overspec", *args])
        with pytest.raises(SystemExit) as exited:
            run()
        err = capsys.readouterr().err
        assert exited.value.code == 2 and "Traceback" not in err, err
        (line,) = err.strip().splitlines()
        return line

    return invoke

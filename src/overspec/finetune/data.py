"""Training data for fine-tuning: identity folders (FR) or the MAD/PAD protocol CSV (train rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overspec.data.attack_protocol import load_attack_dataset
from overspec.data.images import IMAGE_SUFFIXES, ImageFiles, ImageSource
from overspec.errors import DataError
from overspec.models.preprocess import Preprocess


def identity_folders(root: str | Path) -> tuple[ImageFiles, np.ndarray, list[str]]:
    """``root/<identity>/*.jpg`` (the insightface image-folder layout): images, labels, identity names."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"training folder {root} does not exist (expected one sub-folder per identity)")
    identities = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for index, name in enumerate(identities):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [index] * len(files)
    if len(identities) < 2 or not paths:
        raise DataError(f"{root}: needs at least two identity folders with images")
    return ImageFiles(paths, root=root), np.array(labels), identities


def training_data(task: str, data: str | Path) -> tuple[ImageSource, np.ndarray, list[str]]:
    """FR: identity folders, or insightface's ``train.rec``/``train.idx`` folder; MAD/PAD: protocol CSV."""
    if task == "fr":
        if (Path(data) / "train.rec").exists():
            from overspec.data.recordio import load_recordio

            images, labels = load_recordio(data)
            names, labels = np.unique(labels, return_inverse=True)
            return images, labels, [str(n) for n in names]
        return identity_folders(data)
    split = load_attack_dataset(data, task=task).split("train")
    return split.images, split.bonafide.astype(np.int64), ["attack", "bonafide"]


class Augmented:
    """Training transform: random resized crop (scale 0.8-1) and horizontal flip, then the model's own
    preprocessing. ``load(i, seed)`` draws from a generator seeded per sample and epoch, so a view does not
    depend on which process or worker loads it (resume and data-parallel runs see the same views)."""

    def __init__(self, source: ImageSource, preprocess: Preprocess, augment: bool) -> None:
        from torchvision import transforms as T

        self.source, self.preprocess = source, preprocess.transform()
        self.augment = (
            T.Compose(
                [T.RandomResizedCrop(preprocess.size, scale=(0.8, 1.0), ratio=(0.9, 1.1)), T.RandomHorizontalFlip()]
            )
            if augment
            else None
        )

    def __len__(self) -> int:
        return len(self.source)

    def load(self, index: int, seed: int = 0):
        import torch

        image = self.source.load(index)
        if self.augment is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                image = self.augment(image)
        return self.preprocess(image)

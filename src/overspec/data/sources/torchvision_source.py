"""torchvision dataset roots, read with ``download=False``; the catalog entry names the class and the
constructor arguments of each split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overspec._hashing import digest
from overspec.data.images import ImageSource
from overspec.data.labelled import LabelledSplit
from overspec.errors import DataError

LABEL_ATTRIBUTES = ("targets", "_labels", "labels", "y")


class TorchvisionImages(ImageSource):
    def __init__(self, dataset, fingerprint: str) -> None:
        self.dataset, self._fingerprint = dataset, fingerprint

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, index: int):
        image = self.dataset[int(index)][0]
        return image.convert("RGB")

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


def labels_of(dataset) -> np.ndarray:
    for attribute in LABEL_ATTRIBUTES:
        values = getattr(dataset, attribute, None)
        if values is not None and len(values) == len(dataset):
            return np.asarray(values, dtype=int)
    samples = getattr(dataset, "samples", None) or getattr(dataset, "_samples", None)
    if samples is not None:
        return np.array([s[1] for s in samples], dtype=int)
    return np.array([dataset[i][1] for i in range(len(dataset))], dtype=int)  # decodes every image: last resort


class TorchvisionSource:
    name = "torchvision"

    @staticmethod
    def read(root: Path, spec) -> dict[str, LabelledSplit]:
        import torchvision.datasets as tvd

        cls = getattr(tvd, spec.cls, None)
        if cls is None:
            raise DataError(f"torchvision has no dataset class {spec.cls}")
        argument_sets = spec.splits or {"all": spec.all or {}}
        splits = {}
        for split, arguments in argument_sets.items():
            try:
                dataset = cls(root=str(root), download=False, **arguments)
            except (RuntimeError, FileNotFoundError, OSError) as exc:
                raise DataError(f"torchvision {spec.cls} ({split}) not found under {root}: {exc}") from None
            fingerprint = digest(
                {
                    "source": "torchvision",
                    "cls": spec.cls,
                    "root": str(Path(root).resolve()),
                    "args": arguments,
                    "n": len(dataset),
                }
            )
            splits[split] = LabelledSplit(TorchvisionImages(dataset, fingerprint), labels_of(dataset))
        return splits

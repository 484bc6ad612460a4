"""Hugging Face datasets saved with ``save_to_disk`` (a ``DatasetDict`` folder with ``dataset_dict.json``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overspec._hashing import digest, path_sha256
from overspec.data.images import ImageSource
from overspec.data.labelled import LabelledSplit
from overspec.errors import DataError

LABEL_COLUMNS = ("label", "labels", "fine_label", "cls", "class")


class HFImages(ImageSource):
    def __init__(self, table, column: str, fingerprint: str) -> None:
        self.table, self.column, self._fingerprint = table, column, fingerprint

    def __len__(self) -> int:
        return len(self.table)

    def load(self, index: int):
        return self.table[int(index)][self.column].convert("RGB")

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


class HuggingFaceSource:
    name = "huggingface"

    @staticmethod
    def detect(root: Path) -> bool:
        return (root / "dataset_dict.json").exists()

    @staticmethod
    def read(root: Path) -> tuple[dict[str, LabelledSplit], list[str] | None, list[str] | None]:
        try:
            from datasets import Image, load_from_disk
        except ImportError:
            raise DataError(f"{root} is a Hugging Face dataset: pip install 'overspec[data]' to read it") from None
        data = load_from_disk(str(root))
        splits, classnames = {}, None
        for split, table in data.items():
            image_column = next((c for c, f in table.features.items() if isinstance(f, Image)), None)
            label_column = next((c for c in LABEL_COLUMNS if c in table.features), None)
            if image_column is None or label_column is None:
                raise DataError(
                    f"{root}/{split}: needs an Image column and one of {LABEL_COLUMNS}; has {list(table.features)}"
                )
            feature = table.features[label_column]
            classnames = classnames or getattr(feature, "names", None)
            fingerprint = digest({"source": "huggingface", "split": split, "files": path_sha256(root / split)})
            splits[split] = LabelledSplit(HFImages(table, image_column, fingerprint), np.array(table[label_column]))
        return splits, classnames, None

"""Labelled classification datasets as protocols consume them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from overspec.data.images import ImageSource


@dataclass
class LabelledSplit:
    """One split: images and their integer labels (indices into the dataset's class names)."""

    images: ImageSource
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class LabelledDataset:
    """A classification dataset: class names, prompt templates, splits and its headline metric."""

    name: str
    classnames: list[str]
    templates: list[str]
    splits: dict[str, LabelledSplit]
    headline_metric: str = "acc1"
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Everything a protocol's numbers depend on: each split's images (their content) and labels, the class
        names, the prompt templates and the headline metric."""
        import hashlib

        from overspec._hashing import digest

        return digest(
            {
                "splits": {
                    name: [split.images.fingerprint, hashlib.sha256(np.ascontiguousarray(split.labels)).hexdigest()]
                    for name, split in sorted(self.splits.items())
                },
                "classnames": self.classnames,
                "templates": self.templates,
                "headline": self.headline_metric,
            }
        )

    def split(self, name: str) -> LabelledSplit:
        from overspec.errors import DataError

        if name not in self.splits:
            raise DataError(f"dataset {self.name} has no {name!r} split; it has {sorted(self.splits)}")
        return self.splits[name]


def seeded_split(labels: np.ndarray, *, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: within each class, a seeded permutation puts ``round(n * test_fraction)``
    (at least one, when the class has two or more images) into test. Deterministic for a given input order."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        n_test = min(len(members) - 1, max(1, round(len(members) * test_fraction))) if len(members) > 1 else 0
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(test, dtype=int))

"""The experiment's ``analysis`` section: ``analysis: {drift: {datasets: [...], layers: all}}``.

Drift runs for every model of the experiment that has a base (``runner/drift.py``), on each dataset listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DriftDataset(BaseModel):
    """Images to compare a model and its base on: a folder (any dataset layout ``eval`` reads, or plain images)."""

    model_config = ConfigDict(extra="forbid")
    name: str  # the dataset's name in the report
    path: str | None = None  # its folder; default: general.roots / general.root's folder of `name`, or the catalog's
    split: str = "test"  # the split of a dataset with splits
    images: Literal["general", "face"] = "general"  # which side of the report's face / general comparison it is on


class DriftSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # a general-suite or catalog dataset by name, or {name, path, split, images}
    datasets: list[str | DriftDataset] = Field(min_length=1)
    layers: str | list[str | int] = "all"  # all, or layer names (block 3, embedding) / positions (-1: embedding)
    n: int | None = Field(None, ge=4)  # a seeded random subset of this many images per dataset (default: all)
    k: int = Field(10, ge=1)  # neighbours of mutual k-NN
    permutations: int = Field(16, ge=2)  # shuffled pairings of the CKA permutation null

    def entries(self) -> list[DriftDataset]:
        return [DriftDataset(name=d) if isinstance(d, str) else d for d in self.datasets]

    def resolve_paths(self, against: Callable[[str], str]) -> None:
        """Folders written relative resolve against the config's folder (``config._resolve_paths``)."""
        self.datasets = [
            d.model_copy(update={"path": against(d.path)}) if isinstance(d, DriftDataset) and d.path else d
            for d in self.datasets
        ]


class AnalysisSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drift: DriftSettings | None = None  # layer-wise drift of every model with a base from it (docs/drift.md)

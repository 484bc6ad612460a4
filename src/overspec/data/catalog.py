"""The dataset catalog: one YAML per dataset in ``data/catalog/``, validated against ``CatalogEntry``."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from overspec._validation import parse_yaml, validated
from overspec.errors import ConfigError
from overspec.registry import Registry

HEADLINE_METRICS = ("acc1", "mean_per_class_recall")


class SeededSplit(BaseModel):
    """A fixed split for sources without one: per class, a seeded shuffle puts ``test_fraction`` in test."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    test_fraction: float = Field(0.2, gt=0, lt=1)


class TorchvisionSource(BaseModel):
    """A torchvision dataset class and the constructor arguments of each split (``download=False``)."""

    model_config = ConfigDict(extra="forbid")
    cls: str
    splits: dict[str, dict] = Field(default_factory=dict)
    all: dict | None = None  # arguments when the dataset has no split (then `seeded_split` applies)


class Sources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webdataset: str | None = None  # Hugging Face id of the CLIP_benchmark webdataset copy
    huggingface: str | None = None  # Hugging Face datasets id (save_to_disk it for offline use)
    torchvision: TorchvisionSource | None = None
    url: str | None = None  # where the original is published


class CatalogEntry(BaseModel):
    """A classification benchmark: class names, OpenAI prompt templates, splits, headline metric."""

    model_config = ConfigDict(extra="forbid")
    name: str
    title: str
    version: int = 1
    num_classes: int = Field(gt=1)
    classnames: list[str]
    templates: list[str] = Field(min_length=1)
    headline_metric: Literal["acc1", "mean_per_class_recall"] = "acc1"
    higher_is_better: bool = True
    splits: dict[Literal["train", "val", "test"], str] = Field(
        default_factory=lambda: {"train": "train", "test": "test"}
    )
    seeded_split: SeededSplit | None = None
    # images per split in the published copy (sources.webdataset), where known: `overspec fetch` checks them
    sizes: dict[Literal["train", "val", "test"], int] = Field(default_factory=dict)
    in_study: bool = False
    aliases: list[str] = Field(default_factory=list)  # other names papers use (e.g. Flowers102, SST2)
    sources: Sources = Field(default_factory=Sources)
    # a source whose labels number the classes in another order than `classnames` (e.g. CLIP_benchmark's VTAB
    # copy of Caltech-101 is alphabetical): its order, a permutation of `classnames`
    class_orders: dict[Literal["webdataset", "huggingface", "torchvision"], list[str]] = Field(default_factory=dict)
    notes: str | None = None

    def classnames_for(self, source: str) -> list[str]:
        """The class names in the order ``source``'s labels use."""
        return self.class_orders.get(source, self.classnames)

    @field_validator("templates")
    @classmethod
    def _placeholder(cls, templates: list[str]) -> list[str]:
        missing = [t for t in templates if "{c}" not in t]
        if missing:
            raise ValueError(f"every template needs the placeholder {{c}}; these lack it: {missing[:3]}")
        return templates

    @model_validator(mode="after")
    def _counts(self) -> CatalogEntry:
        if len(self.classnames) != self.num_classes:
            raise ValueError(f"num_classes is {self.num_classes} but {len(self.classnames)} classnames are listed")
        if "test" not in self.splits:
            raise ValueError("splits needs a test split")
        for source, names in self.class_orders.items():
            if sorted(names) != sorted(self.classnames):
                raise ValueError(f"class_orders.{source} must list the same names as classnames, reordered")
        return self


def parse_entry(text: str, *, origin: str) -> CatalogEntry:
    return validated(CatalogEntry, parse_yaml(text, origin=origin), origin=origin)


@lru_cache(maxsize=1)
def catalog() -> Registry[CatalogEntry]:
    """Every catalog YAML, validated (a file that fails is an error, never skipped)."""
    registry: Registry[CatalogEntry] = Registry("dataset")
    folder = resources.files("overspec.data").joinpath("catalog")
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            entry = parse_entry(item.read_text(), origin=f"catalog/{item.name}")
            if entry.name != item.name.removesuffix(".yaml"):
                raise ConfigError(f"catalog/{item.name}: name {entry.name!r} must match the file name")
            registry.register(entry.name, entry)
    return registry


def normal_name(name: str) -> str:
    """A name compared without case, spaces or punctuation (dataset names, class names)."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def canonical_dataset(name: str) -> str:
    """The catalog name for ``name`` given as a catalog name, title or alias (case and punctuation
    ignored), else ``name`` itself: lets tables typed in from papers line up with runs."""
    wanted = normal_name(name)
    for entry_name in catalog():
        entry = catalog().get(entry_name)
        if wanted in {normal_name(entry.name), normal_name(entry.title), *(normal_name(a) for a in entry.aliases)}:
            return entry.name
    return name

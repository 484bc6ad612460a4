"""An experiment becomes cells: one (model, dataset, protocol) evaluation each, independent of the others,
with a key that names it across runs, machines and shards."""

from __future__ import annotations

from dataclasses import dataclass, field

from overspec._hashing import digest
from overspec.config import TASK_OF_FAMILY, BiometricBenchmark, Experiment, ModelEntry


@dataclass(frozen=True)
class Cell:
    model: ModelEntry
    dataset: str
    protocol: str
    task: str  # the dataset's task: general, fr, mad or pad
    location: str | None  # dataset folder or benchmark file
    benchmark: BiometricBenchmark | None = None
    options: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return digest(
            {
                "model": self.model.model_dump(),
                "dataset": self.dataset,
                "protocol": self.protocol,
                "location": self.location,
                "options": self.options,
            }
        )[:20]

    @property
    def label(self) -> str:
        return f"{self.model.name} / {self.dataset} / {self.protocol}"


def plan(experiment: Experiment) -> list[Cell]:
    """Every cell, models outermost (so one model is loaded once per run). Linear probes skip datasets
    without a training split (ImageNet-V2 and the ImageNet test-only variants)."""
    from overspec.data.catalog import catalog

    cells = []
    for model in experiment.model_entries():
        allowed = set(model.protocols) if model.protocols else None
        general = experiment.general
        if general is not None:
            for name in general.datasets:
                for protocol in general.protocols:
                    if protocol == "linear_probe" and name in catalog() and "train" not in catalog().get(name).splits:
                        continue
                    if allowed is not None and protocol not in allowed:
                        continue
                    cells.append(
                        Cell(
                            model,
                            name,
                            protocol,
                            "general",
                            general.root_of(name),
                            options=general.options.get(protocol, {}),
                        )
                    )
        for bench in experiment.biometric:
            if allowed is not None and bench.protocol not in allowed:
                continue
            cells.append(Cell(model, bench.name, bench.protocol, bench.task, bench.path, bench, dict(bench.options)))
    return cells


def task_of(model: ModelEntry) -> str:
    """The biometric task a model was tuned for: given in the config, else read off its family."""
    if model.task:
        return model.task
    from overspec.models import resolve_spec

    return TASK_OF_FAMILY.get(resolve_spec(model.source).family, "general")


def base_of(model: ModelEntry) -> str | None:
    """The model it was fine-tuned from: given in the config, else its spec's ``base``."""
    if model.base:
        return model.base
    from overspec.models import resolve_spec

    base = resolve_spec(model.source).base
    return base if isinstance(base, str) else None


def reference_of(model: ModelEntry) -> str | None:
    from overspec.models import resolve_spec

    return resolve_spec(model.source).reference

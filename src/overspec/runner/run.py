"""Run an experiment: plan, execute cells (skipping finished ones), store rows, export, analyse, report."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overspec.config import Experiment, load_config
from overspec.errors import ConfigError
from overspec.protocols.result import ProtocolResult
from overspec.registry import Registry
from overspec.results import ResultRow, ResultStore
from overspec.runner.plan import Cell, base_of, plan, reference_of, task_of

LOWER_IS_BETTER = ("eer", "hter", "acer", "apcer", "bpcer", "_std")


def higher_is_better(metric: str) -> bool:
    return not any(part in metric for part in LOWER_IS_BETTER)


def wilson_interval(p: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion (Wilson 1927; Brown, Cai & DasGupta 2001)."""
    if n <= 0:
        return (math.nan, math.nan)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


@dataclass
class RunSummary:
    out: Path
    planned: int
    ran: int
    skipped: int
    store: Path


class _Resources:
    """Models and datasets loaded once per run and reused by every cell that needs them."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.encoder_key, self.encoder = None, None
        self.datasets: dict[tuple, object] = {}

    def model(self, cell: Cell):
        key = cell.model.model_dump_json()
        if key != self.encoder_key:
            from overspec.models import load_model

            self.encoder = None  # free the previous model first
            encoder = load_model(cell.model.source, device=self.experiment.device or _device())
            if cell.model.base:  # the config's base overrides the spec's (zero-shot borrows its text tower)
                sources = {entry.name: entry.source for entry in self.experiment.model_entries()}
                encoder.settings["base"] = sources.get(cell.model.base, cell.model.base)
            self.encoder_key, self.encoder = key, encoder
        return self.encoder

    def dataset(self, cell: Cell):
        key = (cell.dataset, cell.location, cell.protocol == "attack_detection")
        if key not in self.datasets:
            if cell.task == "general":
                from overspec.data import load_dataset

                self.datasets[key] = load_dataset(cell.dataset, root=cell.location)
            elif cell.protocol == "attack_detection":
                from overspec.data.attack_protocol import load_attack_dataset

                bench = cell.benchmark
                self.datasets[key] = load_attack_dataset(
                    bench.path, layout=bench.layout, task=bench.task, name=bench.name
                )
            else:
                self.datasets[key] = cell.location  # face_verification / ijb read their own files
        return self.datasets[key]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def evaluate_cell(cell: Cell, resources: _Resources) -> ProtocolResult:
    from overspec.protocols import PROTOCOLS

    experiment = resources.experiment
    options = {"batch_size": experiment.batch_size, "num_workers": experiment.workers, "progress": True, **cell.options}
    return PROTOCOLS.get(cell.protocol)(resources.model(cell), resources.dataset(cell), **options)


def result_rows(
    cell: Cell, result: ProtocolResult, *, run_id: str, config_hash: str, encoder, dataset_fingerprint: str
) -> list[ResultRow]:
    metrics = result.metrics
    n = metrics.get("n_test") or metrics.get("n_pairs") or (metrics.get("n_bonafide", 0) + metrics.get("n_attack", 0))
    rows = []
    for metric, value in [*metrics.items(), ("headline", metrics[result.headline_metric])]:
        if metric.startswith("n_"):
            continue
        name = result.headline_metric if metric == "headline" else metric
        low, high = wilson_interval(value, int(n)) if name in ("acc1", "acc5") else (None, None)
        rows.append(
            ResultRow(
                run_id=run_id,
                model=cell.model.name,
                arch=encoder.arch,
                dataset=cell.dataset,
                task=cell.task,
                protocol=cell.protocol,
                metric=metric,
                value=float(value),
                ci_low=low,
                ci_high=high,
                n=int(n),
                higher_is_better=higher_is_better(name),
                config_hash=config_hash,
                model_fingerprint=encoder.fingerprint,
                dataset_fingerprint=dataset_fingerprint,
            )
        )
    return rows


EXECUTORS: Registry[Callable] = Registry("executor")


@EXECUTORS.register("local")
def local_executor(cells: list[Cell], work: Callable[[Cell], None]) -> None:
    """One cell after another in this process (models stay loaded between consecutive cells)."""
    for cell in cells:
        work(cell)


def run_experiment(
    config: str | Path | Experiment,
    *,
    out: str | Path | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    executor: str = "local",
    report: bool = True,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Run every unfinished cell of ``config`` into ``out`` (default: the config's output), then export
    ``results.csv`` and build the report. Rerunning skips finished cells; ``shard=(i, n)`` runs every n-th
    cell from the i-th, so SLURM array jobs can share one plan; stores merge in any order."""
    experiment = load_config(config) if not isinstance(config, Experiment) else config
    if not experiment.models:
        raise ConfigError(f"experiment {experiment.name} lists no models; add some under `models:`")
    out = Path(out) if out else experiment.output_dir()
    out.mkdir(parents=True, exist_ok=True)
    cells = plan(experiment)
    if shard is not None:
        index, count = shard
        if not 0 <= index < count:
            raise ConfigError(f"--shard {index}/{count}: the index must lie in 0..{count - 1}")
        cells = cells[index::count]
    store = ResultStore(out / "results.sqlite")
    done = store.finished()
    todo = [c for c in cells if c.key not in done]
    already = len(cells) - len(todo)
    if limit is not None:
        todo = todo[:limit]
    log(f"{len(cells)} cells planned, {already} already done, running {len(todo)}")
    position = {cell.key: i for i, cell in enumerate(todo, start=1)}
    resources = _Resources(experiment)
    predictions = out / "predictions"

    def work(cell: Cell) -> None:
        log(f"[{position[cell.key]}/{len(todo)}] {cell.label}")
        result = evaluate_cell(cell, resources)
        encoder = resources.encoder
        dataset = resources.dataset(cell)
        fingerprint = _dataset_fingerprint(dataset)
        rows = result_rows(
            cell,
            result,
            run_id=experiment.name,
            config_hash=experiment.config_hash,
            encoder=encoder,
            dataset_fingerprint=fingerprint,
        )
        if result.samples:
            predictions.mkdir(exist_ok=True)
            np.savez(predictions / f"{cell.key}.npz", **result.samples)
        details = {
            **{k: v for k, v in result.details.items() if _jsonable(v)},
            "headline_metric": result.headline_metric,
            "model_task": task_of(cell.model),
            "base": base_of(cell.model),
            "reference": reference_of(cell.model),
        }
        store.add_cell(
            cell.key, rows, model=cell.model.name, dataset=cell.dataset, protocol=cell.protocol, details=details
        )

    EXECUTORS.get(executor)(todo, work)
    store.export_csv(out / "results.csv")
    store.close()
    if report:
        from overspec.report import build_report

        build_report(out)
    return RunSummary(out, len(cells), len(todo), already, out / "results.sqlite")


def _dataset_fingerprint(dataset) -> str:
    from overspec._hashing import digest

    if hasattr(dataset, "splits"):
        splits = dataset.splits
        return digest({name: split.images.fingerprint for name, split in sorted(splits.items())})
    return digest(str(dataset))


def _jsonable(value) -> bool:
    return isinstance(value, str | int | float | bool | list | dict | type(None))

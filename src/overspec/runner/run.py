"""Run an experiment: plan, execute cells (skipping finished ones), store rows, export, analyse, report."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overspec._log import logger
from overspec._threads import set_torch_threads
from overspec._timing import Phases
from overspec.config import ExecutorSettings, Experiment, load_config
from overspec.errors import ConfigError, OverspecError
from overspec.metrics.conventions.base import ScoreSet
from overspec.metrics.intervals import wilson_interval
from overspec.metrics.specs import parse_metric
from overspec.protocols.result import ProtocolResult
from overspec.results import ResultRow, ResultStore
from overspec.runner.drift import run_drift_section
from overspec.runner.executors import EXECUTORS, Job
from overspec.runner.plan import Cell, plan


@dataclass
class RunSummary:
    out: Path
    planned: int
    ran: int
    skipped: int
    store: Path
    phases: dict[str, float]


class _Resources:
    """Models and datasets loaded once per run and reused by every cell that needs them."""

    def __init__(self, experiment: Experiment, cells: list[Cell], *, cores: float | None = None) -> None:
        """``cores``: what this process may use (a Ray cell's CPUs; default: its CPU affinity)."""
        self.experiment, self.cores = experiment, cores
        self.sources = {c.model.name: c.model.entry.source for c in cells}
        self.encoder_key, self.encoder = None, None
        self.datasets: dict[tuple, object] = {}
        self.phases = Phases()

    def model(self, cell: Cell):
        if (cell.model.name, cell.model.fingerprint) != self.encoder_key:
            from overspec.models import load_model

            self.encoder = None  # free the previous model first
            set_torch_threads(self.cores)
            # the device the plan put in the cell's key (a Ray worker does not choose another)
            encoder = load_model(cell.model.entry.source, device=self.experiment.device or cell.compute.device)
            if cell.model.base:  # zero-shot borrows the text tower of the base the plan resolved
                encoder.settings["base"] = self.sources.get(cell.model.base, encoder.settings.get("base"))
            self.encoder_key, self.encoder = (cell.model.name, cell.model.fingerprint), encoder
        return self.encoder

    def dataset(self, cell: Cell):
        key = (cell.dataset, cell.location, cell.protocol.name == "attack_detection")
        if key not in self.datasets:
            if cell.task == "general":
                from overspec.data import load_dataset

                dataset = load_dataset(cell.dataset, root=cell.location)
                dataset.headline_metric = self.experiment.general.headline_of(dataset.headline_metric)
                self.datasets[key] = dataset
            elif cell.protocol.name == "attack_detection":
                from overspec.data.attack_protocol import load_attack_dataset

                bench = cell.benchmark
                frames = {"frames_per_video": bench.frames_per_video} if bench.frames_per_video else {}
                self.datasets[key] = load_attack_dataset(
                    bench.path, layout=bench.layout, task=bench.task, name=bench.name, **frames
                )
            else:
                self.datasets[key] = cell.location  # face_verification / ijb read their own files
        return self.datasets[key]


def evaluate_cell(cell: Cell, resources: _Resources) -> ProtocolResult:
    from overspec.protocols import PROTOCOLS

    experiment = resources.experiment
    options = {
        "batch_size": experiment.batch_size,
        "num_workers": experiment.workers,
        "progress": True,
        **cell.protocol.options,
    }
    phases = resources.phases
    with phases("load models"):
        encoder = resources.model(cell)
    with phases("read data"):
        dataset = resources.dataset(cell)
    with phases("evaluate"):
        result = PROTOCOLS.get(cell.protocol.name)(encoder, dataset, **options)
    if result.headline_metric != cell.protocol.headline:
        raise OverspecError(
            f"{cell.label}: the protocol reported headline {result.headline_metric!r}, the plan resolved "
            f"{cell.protocol.headline!r}; protocols/specs.py and the protocol disagree"
        )
    return result


def result_rows(
    cell: Cell, result: ProtocolResult, *, run_id: str, config_hash: str, encoder, dataset_fingerprint: str
) -> list[ResultRow]:
    """One row per metric (counts excluded), plus a ``headline`` row repeating the plan's headline metric; each
    row carries the identity the plan resolved and its 95 % interval with the method that gave it. A key the data
    cannot resolve (``result.unresolved``) has no row: its reason is in the cell's details."""
    metrics = result.metrics
    n = metrics.get("n_test") or metrics.get("n_pairs") or (metrics.get("n_bonafide", 0) + metrics.get("n_attack", 0))
    headline = cell.protocol.headline
    rows = []
    for metric, value in [*metrics.items(), ("headline", metrics.get(headline))]:
        if metric.startswith("n_") or value is None:
            continue
        name = headline if metric == "headline" else metric
        low, high, method = None, None, None
        if name in ("acc1", "acc5"):
            (low, high), method = wilson_interval(value, int(n)), "Wilson score interval over test samples"
        elif name in result.intervals:
            (low, high) = result.intervals[name]
            method = result.interval_methods.get(name, result.interval_method)
        rows.append(
            ResultRow(
                run_id=run_id,
                model=cell.model.name,
                arch=encoder.arch,
                dataset=cell.dataset,
                task=cell.task,
                protocol=cell.protocol.name,
                metric=metric,
                value=float(value),
                ci_low=low,
                ci_high=high,
                n=int(n),
                higher_is_better=parse_metric(name).higher_is_better,
                config_hash=config_hash,
                model_fingerprint=cell.model.fingerprint,
                dataset_fingerprint=dataset_fingerprint,
                model_task=cell.model.task,
                base=cell.model.base,
                base_fingerprint=cell.model.base_fingerprint,
                headline_metric=headline,
                reference=cell.model.reference,
                convention=cell.protocol.convention,
                ci_method=method,
                device=cell.compute.device,
                precision=cell.compute.precision,
            )
        )
    return rows


@dataclass
class CellOutcome:
    """What evaluating a cell gives, wherever it ran; only the driver turns it into stored rows."""

    rows: list[ResultRow]
    samples: dict[str, np.ndarray]
    details: dict
    headline: float  # nan when the data cannot resolve it (details' ``unresolved`` says why)
    seconds: float
    node: str
    phases: dict[str, float]
    score_set: ScoreSet | None = None  # a biometric cell's scores, exported for `overspec score`


def compute_cell(cell: Cell, resources: _Resources, *, run_id: str, config_hash: str) -> CellOutcome:
    """Evaluate ``cell`` (models and datasets reused from ``resources``) into its rows, without touching the store."""
    import socket
    import time

    start = time.perf_counter()
    before = dict(resources.phases.seconds)
    result = evaluate_cell(cell, resources)
    rows = result_rows(
        cell,
        result,
        run_id=run_id,
        config_hash=config_hash,
        encoder=resources.encoder,
        dataset_fingerprint=dataset_fingerprint(resources.dataset(cell)),
    )
    details = {k: v for k, v in result.details.items() if _jsonable(v)}
    if result.unresolved:
        details["unresolved"] = dict(result.unresolved)
    if result.interval_method:
        details["ci_method"] = result.interval_method
    headline = result.metrics.get(cell.protocol.headline)
    return CellOutcome(
        rows,
        dict(result.samples or {}),
        details,
        math.nan if headline is None else float(headline),
        time.perf_counter() - start,
        socket.gethostname(),
        {k: v - before.get(k, 0.0) for k, v in resources.phases.seconds.items()},
        result.score_set,
    )


def run_experiment(
    config: str | Path | Experiment,
    *,
    out: str | Path | None = None,
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    executor: str | ExecutorSettings | None = None,
    report: bool = True,
    log: Callable[[str], None] = print,
    track: str | None = None,
) -> RunSummary:
    """Run every unfinished cell of ``config`` into ``out`` (default: the config's output), then export
    ``results.csv`` and build the report. Rerunning skips finished cells; ``shard=(i, n)`` runs every n-th
    cell from the i-th, so SLURM array jobs can share one plan; stores merge in any order. ``track``: log the run to
    a tracker, ``mlflow[:URI]`` (default: the config's ``track``; ``overspec/tracking``)."""
    experiment = load_config(config) if not isinstance(config, Experiment) else config
    if isinstance(executor, str):
        executor = experiment.executor.model_copy(update={"name": executor})
    executor = executor or experiment.executor
    if not experiment.models:
        raise ConfigError(f"experiment {experiment.name} lists no models; add some under `models:`")
    track = track or experiment.track
    if track:  # a tracker that cannot log fails now, not after the cells
        from overspec.tracking import check, parse

        check(parse(track))
    out = Path(out) if out else experiment.output_dir()
    out.mkdir(parents=True, exist_ok=True)
    with _one_writer(out):
        return _run(experiment, out, limit=limit, shard=shard, executor=executor, report=report, log=log, track=track)


@contextmanager
def _one_writer(out: Path):
    """One ``overspec run`` per run folder at a time: a second one stops at once instead of redoing the work."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(out / ".overspec-run.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ConfigError(
            f"{out} is in use by another `overspec run` (lock {lock.lock_file}); wait for it to finish, "
            "or give this run another --out"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _run(experiment: Experiment, out: Path, *, limit, shard, executor, report, log, track=None) -> RunSummary:
    from overspec import provenance

    started, phases = provenance.now(), Phases()
    with phases("plan"):
        cells = plan(experiment)
    resolved = provenance.write_resolved_config(experiment, out, executor=executor, track=track)
    logger(__name__).debug(f"the experiment as it runs: {resolved} (config_hash {experiment.config_hash})")
    planned = [c.key for c in cells]
    if shard is not None:
        index, count = shard
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"--shard {index}/{count}: give I/N with N >= 1 and I in 0..N-1")
        cells = cells[index::count]
    store = ResultStore(out / "results.sqlite")
    store.record_plan(planned)
    done = store.finished()
    todo = [c for c in cells if c.key not in done]
    already = len(cells) - len(todo)
    if limit is not None:
        todo = todo[:limit]
    log(f"{len(cells)} cells planned, {already} already done, running {len(todo)}")
    predictions = out / "predictions"

    def commit(cell: Cell, outcome: CellOutcome) -> None:
        """The driver's half: a cell's per-sample arrays and score set, then its rows and completion mark in one
        transaction."""
        phases.add(outcome.phases)
        if outcome.samples:
            predictions.mkdir(exist_ok=True)
            np.savez(predictions / f"{cell.key}.npz", **outcome.samples)
        if outcome.score_set is not None:
            export_score_set(out / "scores", cell, outcome)
        store.add_cell(
            cell.key,
            outcome.rows,
            model=cell.model.name,
            dataset=cell.dataset,
            protocol=cell.protocol.name,
            details=outcome.details,
        )

    job = Job(experiment, cells, todo, commit, log)
    run_drift_section(experiment, out, shard=shard, log=log, phases=phases)  # first: its pass fills the cells' cache
    EXECUTORS.get(executor.name)(job, executor)
    with phases("store and export"):
        store.export_csv(out / "results.csv")
        store.close()
    device, precision = provenance.compute_of(cells)
    records = provenance.append_record(
        out,
        provenance.record(
            device=device, precision=precision, config_hash=experiment.config_hash, started=started, cells_run=len(todo)
        ),
    )
    logger(__name__).debug(f"provenance of this run appended to {records}")
    if report:
        from overspec.report import build_report

        with phases("report"):
            build_report(out)
    if track:
        from overspec.tracking import track_run

        with phases("track"):
            track_run(track, out, experiment)
    log(phases.line())
    return RunSummary(out, len(cells), len(todo), already, out / "results.sqlite", dict(phases.seconds))


def export_score_set(folder: Path, cell: Cell, outcome: CellOutcome) -> Path:
    """``scores/CELL.csv`` (a score file ``overspec score`` reads) and ``scores/CELL.json``: the convention and
    threshold the run used, and the command that re-scores the file to the run's values."""
    from overspec._atomic import atomic_open
    from overspec._json import strict_dumps
    from overspec.score_files import write_score_file

    data = outcome.score_set
    if not isinstance(data, ScoreSet):  # a side-effect benchmark's comparisons (protocols/side_effects.py)
        from overspec.protocols.side_effects import export_comparisons

        return export_comparisons(folder, cell, outcome)
    path = write_score_file(data, folder / f"{cell.key}.csv")
    convention = cell.protocol.convention
    threshold = outcome.details.get("threshold") if outcome.details.get("threshold_from") == "dev EER" else None
    command = ["overspec", "score", data.kind, str(path), "--convention", convention]
    if threshold is not None:
        command += ["--threshold", repr(float(threshold))]
    if "ci_resamples" in outcome.details:  # the same resamples (and seed) give the run's intervals
        command += ["--bootstrap", str(outcome.details["ci_resamples"])]
    meta = {
        "cell": cell.key,
        "model": cell.model.name,
        "dataset": cell.dataset,
        "protocol": cell.protocol.name,
        "kind": data.kind,
        "convention": convention,
        "threshold": threshold,
        "command": command,
    }
    with atomic_open(path.with_suffix(".json"), "w") as f:
        f.write(strict_dumps(meta, indent=1))
    return path


def dataset_fingerprint(dataset) -> str:
    from overspec._hashing import digest

    if hasattr(dataset, "splits"):
        splits = dataset.splits
        return digest({name: split.images.fingerprint for name, split in sorted(splits.items())})
    return digest(str(dataset))


def _jsonable(value) -> bool:
    return isinstance(value, str | int | float | bool | list | dict | type(None))

"""What ``overspec browse`` shows, as data: every run's stored rows, its GELOs and biometric gains (by the report's
own code path: ``analysis/gelo.py`` on the rows the planner tagged), and the study's published trade-off points.

A run folder written by ``overspec frontier`` also holds ``frontier.json``; its numbers are carried as they are
(``load_frontier``: nothing recomputed, so the page and the run's report show one computation).

A trade-off point is one model of one run under one general protocol: its GELO with the analysis' 95 % interval
(y) against its mean gain over its own base on the benchmarks of its own task, in points (x). The gain's interval
combines the two models' own 95 % intervals as if independent (``_gain_errors``): both models are scored on the same
samples, whose errors are positively correlated, so this overstates the spread rather than hiding it. A model with
several benchmarks of its task gets the mean gain, its error the root sum of squares over the benchmarks divided by
their number.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from overspec._csv import csv_rows
from overspec.analysis.gelo import BiometricGain, GeloResult, analyse, biometric_gains
from overspec.errors import ConfigError, DataError
from overspec.protocols.specs import general_protocols
from overspec.report.build import _records, _samples
from overspec.report.published import STUDIES, arch_key, load_published
from overspec.results import ResultStore
from overspec.results.store import ResultRow


@dataclass
class RunData:
    """One run folder as the page shows it."""

    label: str  # unique among the page's runs: the folder name, with parents where names repeat
    path: Path
    rows: list[ResultRow]  # the store's rows of the current plan (what the run's report and results.csv hold)
    gelos: dict[str, list[GeloResult]] = field(default_factory=dict)  # general protocol -> one per model
    gains: list[BiometricGain] = field(default_factory=list)
    frontier: Frontier | None = None  # its frontier.json, where `overspec frontier` wrote one

    @property
    def report(self) -> Path | None:
        path = self.path / "report.html"
        return path if path.is_file() else None


@dataclass(frozen=True)
class TradeoffPoint:
    source: str  # a run's label, or the published study's name
    model: str
    arch: str
    task: str  # what the model was tuned for: fr, mad, pad
    protocol: str
    gelo: float
    gelo_ci: tuple[float, float] | None
    gain: float  # points, positive = better than the base whatever the metric's direction
    gain_errors: tuple[float, float] | None  # (minus, plus) in points, None where a benchmark has no interval
    benchmarks: tuple[str, ...]
    base: str
    published: bool = False


def load_runs(run_dirs: list[str | Path]) -> list[RunData]:
    """Each run folder's current rows, GELOs per general protocol and biometric gains."""
    if not run_dirs:
        raise ConfigError("overspec browse: give at least one run folder (one holding results.sqlite)")
    folders = [_run_folder(Path(p)) for p in run_dirs]
    seen: dict[Path, Path] = {}
    for given, folder in zip(run_dirs, folders, strict=True):
        if folder.resolve() in seen:
            raise ConfigError(f"{given}: the same run as {seen[folder.resolve()]}; give each run once")
        seen[folder.resolve()] = Path(given)
    runs = []
    for label, folder in zip(_labels(folders), folders, strict=True):
        store = ResultStore(folder / "results.sqlite", create=False)
        try:
            rows = store.rows(current=True)
        finally:
            store.close()
        run = RunData(label, folder, rows)
        records, _, _ = _records(rows)
        samples = _samples(folder, rows)
        for protocol in general_protocols():  # as build_report does: one analysis per protocol
            found = analyse(records, protocols=[protocol], samples=samples)
            if found:
                run.gelos[protocol] = found
        run.gains = biometric_gains(records)
        run.frontier = load_frontier(folder)
        runs.append(run)
    return runs


def _run_folder(path: Path) -> Path:
    """A run folder, or its results.sqlite given directly."""
    if path.is_file() and path.name == "results.sqlite":
        return path.parent
    if not (path / "results.sqlite").is_file():
        raise DataError(
            f"{path}: no results.sqlite there; give a run folder (the --out of `overspec run` or `overspec quickstart`)"
        )
    return path


def _labels(folders: list[Path]) -> list[str]:
    """Each folder's shortest trailing part of its path that no other folder ends with (``mad-b``, ``a/run``)."""
    parts = [folder.resolve().parts for folder in folders]
    labels = []
    for i, mine in enumerate(parts):
        others = [p for j, p in enumerate(parts) if j != i]
        depth = 1
        while depth < len(mine) and any(p[-depth:] == mine[-depth:] for p in others):
            depth += 1
        labels.append("/".join(mine[-depth:]))
    return labels


def tradeoff_points(runs: list[RunData]) -> list[TradeoffPoint]:
    """One point per run, specialist and general protocol where the model has both a GELO and a biometric gain."""
    points = []
    for run in runs:
        headline = {(r.model, r.dataset): r for r in run.rows if r.metric == "headline" and r.task != "general"}
        by_model: dict[str, list[BiometricGain]] = {}
        for g in run.gains:
            by_model.setdefault(g.model, []).append(g)
        for protocol, gelos in sorted(run.gelos.items()):
            for g in gelos:
                gains = by_model.get(g.model)
                if not gains:
                    continue
                errors = [
                    _gain_errors(headline[(x.model, x.benchmark)], headline[(g.baseline, x.benchmark)]) for x in gains
                ]
                points.append(
                    TradeoffPoint(
                        run.label,
                        g.model,
                        g.arch,
                        gains[0].task,
                        protocol,
                        g.gelo,
                        g.ci if all(math.isfinite(c) for c in g.ci) else None,
                        100 * float(np.mean([x.gain for x in gains])),
                        _mean_errors(errors),
                        tuple(x.benchmark for x in gains),
                        g.baseline,
                    )
                )
    return points


def _gain_errors(model: ResultRow, base: ResultRow) -> tuple[float, float] | None:
    """(minus, plus) of one benchmark's gain, in points: each side from the two rows' 95 % intervals as independent
    errors. The gain is model − base (higher is better) or base − model (lower is better)."""
    ends = (model.ci_low, model.ci_high, base.ci_low, base.ci_high)
    if any(e is None for e in ends):
        return None
    m_down, m_up = model.value - model.ci_low, model.ci_high - model.value
    b_down, b_up = base.value - base.ci_low, base.ci_high - base.value
    if not model.higher_is_better:  # the gain rises as the model's error falls
        m_down, m_up, b_down, b_up = m_up, m_down, b_up, b_down
    return 100 * math.hypot(m_down, b_up), 100 * math.hypot(m_up, b_down)


def _mean_errors(errors: list[tuple[float, float] | None]) -> tuple[float, float] | None:
    if not errors or any(e is None for e in errors):
        return None
    k = len(errors)
    return math.sqrt(sum(e[0] ** 2 for e in errors)) / k, math.sqrt(sum(e[1] ** 2 for e in errors)) / k


@dataclass(frozen=True)
class StudyBiometric:
    """How a bundled study's biometric table (``<name>_biometric.csv``: model, arch, benchmark_metric,
    value_percent) gives each specialist's gain: its base's name and, per task, the headline rows and direction."""

    base: str
    headlines: dict[str, tuple[tuple[str, ...], bool]]  # task -> (benchmark_metric names, higher is better)


# Chettaoui et al. (IJCB 2025): FR by its 10-fold accuracies and IJB TAR@FAR=1e-4, MAD by its EER, PAD by
# CelebA-Spoof HTER (the headline of each of the paper's biometric tables).
STUDY_BIOMETRICS = {
    "chettaoui2025": StudyBiometric(
        "CLIP",
        {
            "fr": (
                ("lfw", "cfp_fp", "agedb_30", "calfw", "cplfw", "ijbb_tar_at_far_1e-4", "ijbc_tar_at_far_1e-4"),
                True,
            ),
            "mad": (("mad_eer",), False),
            "pad": (("celeba_spoof_hter",), False),
        },
    )
}


def published_points(reference: str | Path | None) -> list[TradeoffPoint]:
    """The study's specialists as trade-off points: its published GELO against its published gain over its base
    of the same architecture (points; no intervals: the study gives none). Empty for ``none``."""
    study = load_published(reference)
    if study is None:
        return []
    if study.name not in STUDIES or study.name not in STUDY_BIOMETRICS:
        raise ConfigError(
            f"--reference {reference}: browse draws a bundled study's published models "
            f"({', '.join(STUDY_BIOMETRICS)}), whose biometric table it reads, or none; a CSV file holds no such table"
        )
    rules = STUDY_BIOMETRICS[study.name]
    path = Path(str(resources.files("overspec").joinpath("reference", f"{study.name}_biometric.csv")))
    values: dict[tuple[str, str, str], float] = {}
    required = ("model", "arch", "benchmark_metric", "value_percent")
    with csv_rows(path, what="published biometric table", required=required) as (_, rows):
        for line, row in rows:
            try:
                values[(row["model"], arch_key(row["arch"]), row["benchmark_metric"])] = float(row["value_percent"])
            except ValueError:
                number = row["value_percent"]
                raise DataError(f"{path}, line {line}: value_percent {number!r} is not a number") from None
    points = []
    for (task, arch, protocol), published in sorted(study.gelos.items()):
        if task not in rules.headlines:
            continue
        names, higher = rules.headlines[task]
        sign = 1 if higher else -1
        gains = [
            sign * (values[(published.model, arch, n)] - values[(rules.base, arch, n)])
            for n in names
            if (published.model, arch, n) in values and (rules.base, arch, n) in values
        ]
        if gains:
            points.append(
                TradeoffPoint(
                    study.name,
                    published.model,
                    published.arch,
                    task,
                    protocol,
                    published.gelo,
                    None,
                    float(np.mean(gains)),
                    None,
                    names,
                    rules.base,
                    published=True,
                )
            )
    return points


def report_link(run: RunData, page: Path) -> str | None:
    """The run's report.html relative to the page's folder (so the page and the runs can move together)."""
    if run.report is None:
        return None
    return Path(os.path.relpath(run.report.resolve(), page.resolve().parent)).as_posix()


@dataclass(frozen=True)
class Estimate:
    """A number of frontier.json with its 95 % interval (None where the file gives none)."""

    value: float | None  # None: not reached (a matched GELO), or not finite
    ci: tuple[float, float] | None


@dataclass(frozen=True)
class FrontierPoint:
    model: str
    biometric: Estimate  # the task's headline, higher is better (an error rate e as 1 − e)
    gelo: Estimate
    pareto: bool
    specialist: bool  # one of the experiment's own models (a specialist, a merge), not a method's point


@dataclass(frozen=True)
class FrontierCurve:
    method: str
    models: tuple[str, ...]  # in strength order from the base (the base first)
    strengths: tuple[float | None, ...]  # None: the base


@dataclass(frozen=True)
class FrontierTask:
    task: str
    error: str | None = None  # why the task has no frontier (e.g. the base has no result on its benchmark)
    base_biometric: float | None = None
    points: tuple[FrontierPoint, ...] = ()
    curves: tuple[FrontierCurve, ...] = ()
    matched_biometric: float | None = None  # the score every method is compared at
    matched_gain: float | None = None
    matched: dict[str, Estimate] = field(default_factory=dict)  # method -> its GELO at the matched score
    hypervolume: dict[str, Estimate] = field(default_factory=dict)  # "all", then each method's own curve
    # method -> (the best method, its matched GELO less the best's within the same draws)
    difference: dict[str, tuple[str, Estimate]] = field(default_factory=dict)
    reached: dict[str, float | None] = field(default_factory=dict)  # method -> share of draws reaching the gain
    excluded: dict[str, str] = field(default_factory=dict)  # model left off the plane -> why


@dataclass(frozen=True)
class Frontier:
    """A run's frontier.json (``frontier/summary.py``), as the page reads it."""

    path: Path
    base: str
    reference_gelo: float
    interval: str  # how its intervals were computed, in words
    tasks: dict[str, FrontierTask]


def load_frontier(folder: Path) -> Frontier | None:
    """The run's ``frontier.json``, or None where ``overspec frontier`` wrote none. Keys the page does not use
    are ignored; a missing key or an unreadable file is a one-line error naming it."""
    path = folder / "frontier.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not readable JSON ({e}); rerun `overspec frontier CONFIG` to rewrite it") from None
    reader = _Reader(path)
    tasks = reader.get(data, "tasks", dict, "")
    return Frontier(
        path,
        reader.get(data, "base", str, ""),
        float(reader.get(data, "reference_gelo", (int, float), "")),
        str(data.get("interval", "")),
        {task: reader.task(task, value) for task, value in tasks.items()},
    )


class _Reader:
    """Reads frontier.json's fields, naming the one that is missing or of the wrong type."""

    def __init__(self, path: Path):
        self.path = path

    def get(self, data, key: str, kind, where: str):
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise DataError(
                f"{self.path}: field {where}{key} missing or not {_kind(kind)}; "
                "rerun `overspec frontier CONFIG` to rewrite the file"
            )
        return value

    def number(self, data, key: str, where: str) -> float | None:
        value = data.get(key) if isinstance(data, dict) else None
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise DataError(f"{self.path}: field {where}{key} is {value!r}, not a number or null")
        return None if value is None or not math.isfinite(value) else float(value)

    def estimate(self, data, value_key: str, ci_key: str, where: str) -> Estimate:
        """A value and its interval, the interval None unless both ends are finite numbers."""
        value = self.number(data, value_key, where)
        ci = data.get(ci_key) if isinstance(data, dict) else None
        ok = isinstance(ci, list | tuple) and len(ci) == 2
        ends = [self.number({"end": e}, "end", f"{where}{ci_key}.") for e in ci] if ok else [None, None]
        return Estimate(value, None if None in ends else (ends[0], ends[1]))

    def task(self, task: str, data) -> FrontierTask:
        where = f"tasks.{task}."
        if isinstance(data, dict) and "error" in data:
            return FrontierTask(task, error=str(data["error"]))
        points = []
        for i, p in enumerate(self.get(data, "points", list, where)):
            at = f"{where}points[{i}]."
            points.append(
                FrontierPoint(
                    self.get(p, "model", str, at),
                    self.estimate(p, "biometric", "biometric_ci", at),
                    self.estimate(p, "gelo", "gelo_ci", at),
                    bool(self.get(p, "pareto", bool, at)),
                    bool(p.get("specialist", False)),
                )
            )
        curves = []
        for method, c in self.get(data, "curves", dict, where).items():
            at = f"{where}curves.{method}."
            models, strengths = self.get(c, "models", list, at), self.get(c, "strengths", list, at)
            if len(models) != len(strengths):
                raise DataError(f"{self.path}: {at}models and {at}strengths differ in length")
            curves.append(FrontierCurve(method, tuple(models), tuple(strengths)))
        known = {p.model for p in points}
        unknown = [m for c in curves for m in c.models if m not in known]
        if unknown:
            raise DataError(f"{self.path}: {where}curves name {unknown[0]}, which is not among {where}points")
        matched = self.get(data, "matched", dict, where)
        methods = self.get(matched, "methods", dict, f"{where}matched.")
        volumes = self.get(data, "hypervolume", dict, where)
        names = [c.method for c in curves]  # other keys (added by later versions) are not the page's
        return FrontierTask(
            task,
            base_biometric=self.number(data, "base_biometric", where),
            points=tuple(points),
            curves=tuple(curves),
            matched_biometric=self.number(matched, "biometric", f"{where}matched."),
            matched_gain=self.number(matched, "gain", f"{where}matched."),
            matched={
                m: self.estimate(methods.get(m), "gelo", "ci", f"{where}matched.methods.{m}.")
                for m in names
                if m in methods
            },
            hypervolume={
                m: self.estimate(volumes.get(m), "value", "ci", f"{where}hypervolume.{m}.")
                for m in ["all", *names]
                if m in volumes
            },
            difference={
                m: (
                    str(methods[m]["difference"].get("to")),
                    self.estimate(methods[m]["difference"], "value", "ci", f"{where}matched.methods.{m}.difference."),
                )
                for m in names
                if isinstance(methods.get(m), dict) and isinstance(methods[m].get("difference"), dict)
            },
            reached={
                m: self.number(methods[m], "reached_share", f"{where}matched.methods.{m}.")
                for m in names
                if isinstance(methods.get(m), dict)
            },
            excluded={str(m): str(why) for m, why in (data.get("excluded") or {}).items()},
        )


def _kind(kind) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}
    return names.get(kind, "a number")

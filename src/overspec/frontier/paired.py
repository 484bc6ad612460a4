"""Paired bootstrap draws of a frontier's models: every model is evaluated on the same test sets, so one draw
resamples each test set once and recomputes every model's numbers on the same indices.

- A biometric benchmark: the rows of its exported score sets (``scores/CELL.csv``, in the convention's units),
  resampled as the protocol's own bootstrap resamples them (``metrics/bootstrap.py`` ``resample_indices``: within
  each class, whole subjects or videos where the set names them), each model's headline re-scored by the function
  the run used (``scoring.score_key``, or the protocol's own figure: the face verification protocol's k-fold
  accuracy under ``iso``).
- A general dataset: its test samples (``predictions/CELL.npz``), each model's headline recomputed from its
  per-sample outcomes (``GENERAL_HEADLINES``: top-1 accuracy is the mean of ``correct``, mean per-class recall
  ``metrics.classification.recall_per_class_mean`` of ``correct`` and ``label``, which runs before labels were
  stored lack); GELO per draw by ``analysis.gelo.gelo_ratio``, the function ``analyse`` uses.

A number that cannot be recomputed so (no per-sample file: a run from before they were written; a headline the
stored outcomes do not determine; a re-scoring that does not give the stored row's value) is not paired: the
summary draws that model's coordinate from a normal matching its interval instead, and says why
(``Paired.fallback``).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from overspec.analysis.gelo import gelo_ratio
from overspec.metrics.bootstrap import resample_indices
from overspec.metrics.classification import recall_per_class_mean, recall_per_class_means
from overspec.metrics.conventions.base import ScoreSet
from overspec.metrics.conventions.scoring import _clusters, prepare, score_key
from overspec.metrics.verification import kfold_accuracy

Score = Callable[[ScoreSet], float | None]
# headlines a protocol computes beside its convention's keys: (protocol, key) -> (cell details -> scoring function)
PROTOCOL_HEADLINES: dict[tuple[str, str], Callable[[dict], Score]] = {
    ("face_verification", "accuracy"): lambda details: (
        lambda data: kfold_accuracy(data.scores, data.positive, folds=details.get("folds", 10)).mean
    ),
}


def _per_class_recall(correct: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """One test set's labels (1-D), or rows of resampled class codes (``GeneralSet.labels``: 0 .. K − 1)."""
    if np.ndim(correct) == 1:
        return np.array(recall_per_class_mean(correct, labels))
    return recall_per_class_means(correct, labels, int(labels.max()) + 1)


# a general dataset's headline from its per-sample top-1 outcomes and labels (last axis: samples), by the metric
# functions the protocols use (top-1 accuracy of the outcomes is their mean)
GENERAL_HEADLINES: dict[str, Callable[[np.ndarray, np.ndarray | None], np.ndarray]] = {
    "acc1": lambda correct, labels: correct.mean(axis=-1),
    "mean_per_class_recall": _per_class_recall,
}
NEEDS_LABELS = {"mean_per_class_recall"}
_BLOCK = 1 << 21  # indices drawn at once for a general dataset (draws x samples), to bound memory


def _rng(seed: int, name: str) -> np.random.Generator:
    """Each test set's own stream: the same draws whatever other test sets the run has."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


@dataclass(frozen=True)
class Benchmark:
    """One biometric test set: each model's score set on it (the same rows, in the convention's units) and the
    run's function for the headline."""

    name: str
    task: str
    higher_is_better: bool
    sets: dict[str, ScoreSet]
    scorers: dict[str, Score]  # model -> the run's function for its headline (one per cell: its own details)

    @property
    def unit(self) -> str:
        return _clusters(next(iter(self.sets.values())))[1]

    def indices(self, n_boot: int, seed: int) -> Iterator[np.ndarray]:
        """Each draw's rows, in file order (the order a k-fold split needs; other metrics ignore it)."""
        first = next(iter(self.sets.values()))
        clusters, _ = _clusters(first)
        for index in resample_indices(first.positive, _rng(seed, self.name), n_boot, clusters=clusters):
            yield np.sort(index)

    def draws(self, n_boot: int, seed: int) -> dict[str, np.ndarray]:
        """model -> its headline per draw, oriented so that higher is better (an error rate e as 1 − e)."""
        out = {model: np.empty(n_boot) for model in self.sets}
        for k, index in enumerate(self.indices(n_boot, seed)):
            for model, data in self.sets.items():
                value = self.scorers[model](data.subset(index))
                out[model][k] = np.nan if value is None else value
        return out if self.higher_is_better else {m: 1 - v for m, v in out.items()}


@dataclass(frozen=True)
class GeneralSet:
    """One general dataset under one protocol: each model's per-sample outcomes on its test samples."""

    name: str
    dataset: str
    protocol: str
    metric: str
    outcomes: dict[str, np.ndarray]
    labels: np.ndarray | None = None  # each sample's class code (0 .. K − 1), where the headline needs it

    def indices(self, n_boot: int, seed: int) -> Iterator[np.ndarray]:
        """Blocks of draws (draws x samples), each row one draw's samples, drawn with replacement."""
        n = len(next(iter(self.outcomes.values())))
        rng = _rng(seed, self.name)
        size = max(1, _BLOCK // max(n, 1))
        for start in range(0, n_boot, size):
            yield rng.integers(0, n, (min(size, n_boot - start), n))

    def draws(self, n_boot: int, seed: int) -> dict[str, np.ndarray]:
        headline = GENERAL_HEADLINES[self.metric]
        parts: dict[str, list[np.ndarray]] = {m: [] for m in self.outcomes}
        for block in self.indices(n_boot, seed):
            for model, correct in self.outcomes.items():
                parts[model].append(headline(correct[block], None if self.labels is None else self.labels[block]))
        return {m: np.concatenate(p) if p else np.empty(0) for m, p in parts.items()}


@dataclass(frozen=True)
class GeloSpec:
    """One model's GELO under one general protocol: against ``base`` over ``datasets`` (``analyse``'s suite)."""

    model: str
    base: str
    protocol: str
    datasets: tuple[str, ...]


@dataclass
class Paired:
    """Per-draw biometric scores ((model, task) -> draws) and GELO (model -> draws) of the models that could be
    paired; ``fallback``: model -> {"fr" | "mad" | "pad" | "gelo": why that coordinate is not paired}."""

    x: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    y: dict[str, np.ndarray] = field(default_factory=dict)
    fallback: dict[str, dict[str, str]] = field(default_factory=dict)
    test_sets: dict[str, dict] = field(default_factory=dict)


def paired_draws(
    benchmarks: list[Benchmark],
    general: list[GeneralSet],
    gelos: list[GeloSpec],
    *,
    n_boot: int,
    seed: int,
    fallback: dict[str, dict[str, str]] | None = None,
) -> Paired:
    """Every paired coordinate per draw: a model's biometric score on a task is the mean of its benchmarks'
    oriented headlines; its GELO the mean over protocols of ``gelo_ratio`` over the protocol's suite."""
    found = Paired(fallback={m: dict(w) for m, w in (fallback or {}).items()})
    per_task: dict[tuple[str, str], list[np.ndarray]] = {}
    for bench in benchmarks:
        for model, values in bench.draws(n_boot, seed).items():
            per_task.setdefault((model, bench.task), []).append(values)
        found.test_sets[bench.name] = {
            "unit": bench.unit,
            "n": len(next(iter(bench.sets.values()))),
            "models": sorted(bench.sets),
        }
    for key, parts in per_task.items():
        if key[1] in found.fallback.get(key[0], {}):  # a benchmark of it could not be paired: drawn parametrically
            continue
        found.x[key] = np.mean(np.stack(parts), axis=0)
    values: dict[tuple[str, str, str], np.ndarray] = {}
    for part in general:
        for model, draws in part.draws(n_boot, seed).items():
            values[(model, part.dataset, part.protocol)] = draws
        found.test_sets[part.name] = {
            "unit": "samples",
            "n": len(next(iter(part.outcomes.values()))),
            "models": sorted(part.outcomes),
        }
    ratios: dict[str, list[np.ndarray]] = {}
    for spec in gelos:
        if "gelo" in found.fallback.get(spec.model, {}):
            continue
        mine = [values.get((spec.model, d, spec.protocol)) for d in spec.datasets]
        base = [values.get((spec.base, d, spec.protocol)) for d in spec.datasets]
        if any(v is None for v in mine + base):
            found.fallback.setdefault(spec.model, {})["gelo"] = "a dataset of its suite has no paired outcomes"
            continue
        ratios.setdefault(spec.model, []).append(gelo_ratio(np.stack(mine, axis=-1), np.stack(base, axis=-1)))
    for model, parts in ratios.items():
        if "gelo" not in found.fallback.get(model, {}):
            found.y[model] = np.mean(np.stack(parts), axis=0)
    return found


# --- reading a run's test sets -------------------------------------------------------------------------------


def _read_set(out: Path, row) -> tuple[ScoreSet, str]:
    """A cell's exported score set in its convention's units (the run's threshold and orientation) and the
    convention."""
    from overspec.score_files import read_score_file

    meta = json.loads((out / "scores" / f"{row.cell}.json").read_text())
    data = read_score_file(out / "scores" / f"{row.cell}.csv", meta["kind"])
    command = meta.get("command") or []
    if "--higher-means" in command and command[command.index("--higher-means") + 1] not in ("genuine", "bonafide"):
        data = replace(data, scores=-data.scores, sign=-1.0)
    if meta.get("threshold") is not None:
        data = replace(data, threshold=data.sign * float(meta["threshold"]))
    return prepare(data, meta["convention"]), meta["convention"]


def _same_rows(data: ScoreSet, first: ScoreSet) -> bool:
    """The same test rows: length, labels and whatever ids the sets hold."""
    if len(data) != len(first) or not np.array_equal(data.positive, first.positive):
        return False
    return all(
        (a is None) == (b is None) and (a is None or np.array_equal(a, b))
        for a, b in (
            (data.videos, first.videos),
            (data.subjects, first.subjects),
            (data.pairs, first.pairs),
            (data.attack_types, first.attack_types),
        )
    )


def load_benchmarks(
    out: Path, rows, details: dict[str, dict], tasks: list[str], models: list[str], base: str, why: dict
) -> list[Benchmark]:
    """The biometric benchmarks of ``tasks`` with every model of ``models`` whose headline re-scores to its stored
    row; the others' reasons go into ``why`` (model -> task -> reason)."""
    groups: dict[tuple[str, str, str], list] = {}
    for r in rows:
        if r.metric == "headline" and r.task in tasks and r.model in models:
            groups.setdefault((r.task, r.dataset, r.protocol), []).append(r)
    found = []
    for (task, dataset, protocol), members in sorted(groups.items()):
        members.sort(key=lambda r: (r.model != base, r.model))  # the base's rows are the reference
        sets, scorers, first = {}, {}, None
        for r in members:
            reason, data, scorer = _scored(out, r, details.get(r.cell, {}), protocol)
            if reason is None and first is not None and not _same_rows(data, first):
                reason = f"scores/{r.cell}.csv holds other rows than {members[0].model}'s on {dataset}"
            if reason is not None:
                why.setdefault(r.model, {}).setdefault(task, reason)
                continue
            first = first if first is not None else data
            sets[r.model], scorers[r.model] = data, scorer
        if sets:
            name = f"{task}/{dataset}/{protocol}"
            found.append(Benchmark(name, task, bool(members[0].higher_is_better), sets, scorers))
    return found


def _scored(out: Path, row, details: dict, protocol: str) -> tuple[str | None, ScoreSet | None, Score | None]:
    """(why not, the cell's score set, the run's function for its headline)."""
    if not (out / "scores" / f"{row.cell}.csv").exists() or not (out / "scores" / f"{row.cell}.json").exists():
        return f"no scores/{row.cell}.csv (+ .json): a run from before score sets were exported", None, None
    data, convention = _read_set(out, row)
    key = row.headline_metric

    def by_convention(subset: ScoreSet) -> float | None:
        return score_key(subset, convention, key)

    score = by_convention
    if by_convention(data) is None and (protocol, key) in PROTOCOL_HEADLINES:
        score = PROTOCOL_HEADLINES[(protocol, key)](details)
    value = score(data)
    if value is None or value != row.value:
        return f"re-scoring scores/{row.cell}.csv gives {key} {value!r}, the stored row {row.value!r}", None, None
    return None, data, score


def load_general(out: Path, rows, specs: list[GeloSpec], base: str, why: dict) -> list[GeneralSet]:
    """The general datasets of ``specs``' suites with the outcomes of every model whose headline they reproduce;
    the others' reasons go into ``why`` (model -> "gelo" -> reason; a base that cannot be paired unpairs its
    models)."""
    wanted = {(s.model, d, s.protocol) for s in specs for d in s.datasets}
    wanted |= {(s.base, d, s.protocol) for s in specs for d in s.datasets}
    groups: dict[tuple[str, str], list] = {}
    for r in rows:
        if r.metric == "headline" and r.task == "general" and (r.model, r.dataset, r.protocol) in wanted:
            groups.setdefault((r.dataset, r.protocol), []).append(r)
    unpaired: dict[str, str] = {}
    found = []
    for (dataset, protocol), members in sorted(groups.items()):
        members.sort(key=lambda r: (r.model != base, r.model))
        outcomes, labels = {}, None
        for r in members:
            reason, correct, mine = _outcomes(out, r)
            if reason is None and labels is not None and mine is not None and not np.array_equal(mine, labels):
                reason = f"predictions/{r.cell}.npz labels other samples than {members[0].model}'s"
            first = next(iter(outcomes.values()), None)
            if reason is None and first is not None and len(correct) != len(first):
                reason = f"predictions/{r.cell}.npz has {len(correct)} samples, {members[0].model}'s {len(first)}"
            if reason is not None:
                unpaired.setdefault(r.model, reason)
                continue
            outcomes[r.model], labels = correct, labels if labels is not None else mine
        if outcomes:
            metric = members[0].headline_metric
            codes = None if labels is None else np.unique(labels, return_inverse=True)[1].ravel()
            found.append(GeneralSet(f"general/{dataset}/{protocol}", dataset, protocol, metric, outcomes, codes))
    for spec in specs:
        reason = unpaired.get(spec.model) or (unpaired.get(spec.base) and f"its base: {unpaired[spec.base]}")
        if reason:
            why.setdefault(spec.model, {}).setdefault("gelo", reason)
    return found


def _outcomes(out: Path, row) -> tuple[str | None, np.ndarray | None, np.ndarray | None]:
    """(why not, the per-sample outcomes, their labels where the headline needs them)."""
    path = out / "predictions" / f"{row.cell}.npz"
    if not path.exists():
        return f"no predictions/{row.cell}.npz: a run from before per-sample outcomes were written", None, None
    metric = row.headline_metric
    if metric not in GENERAL_HEADLINES:
        return f"{row.dataset}'s headline {metric} is not recomputable from per-sample outcomes", None, None
    with np.load(path) as data:
        if "correct" not in data:
            return f"predictions/{row.cell}.npz holds no per-sample `correct`", None, None
        if metric in NEEDS_LABELS and "label" not in data:
            why = f"{row.dataset}'s headline {metric} needs each sample's class: predictions/{row.cell}.npz has none"
            return why + " (a run from before labels were stored)", None, None
        correct = np.asarray(data["correct"], dtype=bool)
        labels = np.asarray(data["label"]) if metric in NEEDS_LABELS else None
    value = float(GENERAL_HEADLINES[metric](correct, labels))
    if value != row.value:
        return f"{metric} of predictions/{row.cell}.npz is {value!r}, the stored row {row.value!r}", None, None
    return None, correct, labels

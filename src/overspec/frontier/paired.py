"""Paired bootstrap draws of a frontier's models: every model is evaluated on the same test sets, so one draw
resamples each test set once and recomputes every model's numbers on the same indices.

- A biometric benchmark: the rows of its exported score sets (``scores/CELL.csv``, in the convention's units),
  resampled as the protocol's own bootstrap resamples them (``metrics/bootstrap.py`` ``resample_indices``: within
  each class, whole subjects or videos where the set names them), each model's headline re-scored by the function
  the run used (``scoring.score_key``, or the protocol's own figure: the face verification protocol's k-fold
  accuracy under ``iso``); above ``MAX_ROWS`` rows, one fixed subsample resampled and rescaled, as the protocol's
  bootstrap does (``Benchmark``).
- A general dataset: its test samples (``predictions/CELL.npz``; one stream per dataset, so every protocol on the
  same samples resamples the same indices), each model's headline recomputed from its per-sample outcomes
  (``GENERAL_HEADLINES``: top-1 accuracy is the mean of ``correct``, mean per-class recall
  ``metrics.classification.recall_per_class_mean`` of ``correct`` and ``label``, which runs before labels were
  stored lack); GELO per draw by ``analysis.gelo.gelo_ratio``, the function ``analyse`` uses.

A number that cannot be recomputed so (no per-sample file: a run from before they were written; a headline the
stored outcomes do not determine; a re-scoring that does not give the stored row's value; two headline rows of one
model on one benchmark; a headline a large set's subsample leaves undefined) is not paired: the summary draws that
model's coordinate from a normal matching its interval instead, and says why (``Paired.fallback``).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from overspec._log import logger
from overspec._progress import progress_bar
from overspec.analysis.gelo import gelo_ratio
from overspec.metrics.bootstrap import _PROGRESS_WORK, MAX_ROWS, _stratified_subsample, resample_indices
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
    run's function for the headline.

    Above ``max_rows`` rows (``metrics/bootstrap.py``'s ``MAX_ROWS``) it is drawn as the protocol's own bootstrap
    draws it (``bootstrap_intervals``): one stratified subsample of ``m`` rows, fixed for all draws and every model,
    is resampled within each class (rows, not clusters), and each model's draw is its full-set value plus
    sqrt(m / n) times the draw's deviation from its value on the subsample (the m-out-of-n rescaling; an affine
    map per model, so its percentiles are the protocol's rescaled ones)."""

    name: str
    task: str
    higher_is_better: bool
    sets: dict[str, ScoreSet]
    scorers: dict[str, Score]  # model -> the run's function for its headline (one per cell: its own details)
    values: dict[str, float] = field(default_factory=dict)  # model -> its headline on all rows (the stored row's)
    max_rows: int = MAX_ROWS

    @property
    def n(self) -> int:
        return len(next(iter(self.sets.values())))

    @property
    def unit(self) -> str:
        first = next(iter(self.sets.values()))
        if self.n > self.max_rows:  # the protocol's bootstrap resamples the subsample's rows
            return "pairs" if first.kind == "verification" else "samples"
        return _clusters(first)[1]

    @property
    def rows_resampled(self) -> int:
        """Rows each draw resamples (``_stratified_subsample``'s size: each class in its share, at least one row)."""
        if self.n <= self.max_rows:
            return self.n
        counts = np.unique(next(iter(self.sets.values())).positive, return_counts=True)[1]
        return int(sum(max(1, round(c * self.max_rows / self.n)) for c in counts))

    @property
    def method(self) -> str:
        if self.n <= self.max_rows:
            return "resampled whole"
        m = self.rows_resampled
        return (
            f"{self.n} rows above MAX_ROWS {self.max_rows}: a fixed stratified subsample of {m} rows resampled, "
            f"deviations rescaled by sqrt({m}/{self.n}) around each model's full-set value (the protocol's bootstrap)"
        )

    def subsample(self, rng: np.random.Generator) -> np.ndarray | None:
        """The fixed rows drawn from above ``max_rows`` (None: every row)."""
        if self.n <= self.max_rows:
            return None
        return _stratified_subsample(next(iter(self.sets.values())).positive, self.max_rows, rng)

    def resamples(self, n_boot: int, seed: int) -> tuple[np.ndarray | None, Iterator[np.ndarray]]:
        """(the fixed subsample or None, each draw's rows into the full set, in file order: the order a k-fold
        split needs; other metrics ignore it)."""
        first = next(iter(self.sets.values()))
        rng = _rng(seed, self.name)
        rows = self.subsample(rng)
        if rows is None:
            clusters, _ = _clusters(first)
            found = resample_indices(first.positive, rng, n_boot, clusters=clusters)
            return None, (np.sort(index) for index in found)
        return rows, (rows[np.sort(index)] for index in resample_indices(first.positive[rows], rng, n_boot))

    def indices(self, n_boot: int, seed: int) -> Iterator[np.ndarray]:
        return self.resamples(n_boot, seed)[1]

    def draws(self, n_boot: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """(model -> its headline per draw, oriented so that higher is better (an error rate e as 1 − e), NaN in a
        draw that leaves it undefined; model -> why it cannot be drawn so)."""
        rows, draws = self.resamples(n_boot, seed)
        shift: dict[str, tuple[float, float]] = {}  # model -> (full-set value, value on the subsample)
        unpaired: dict[str, str] = {}
        if rows is not None:
            for model, data in self.sets.items():
                full = self.values.get(model)
                full = self.scorers[model](data) if full is None else full
                local = self.scorers[model](data.subset(rows))
                if full is None or local is None:
                    unpaired[model] = f"{self.method}; its headline is undefined on the subsample"
                shift[model] = (full, local)
        scale = 1.0 if rows is None else np.sqrt(len(rows) / self.n)
        out = {model: np.full(n_boot, np.nan) for model in self.sets if model not in unpaired}
        work = (self.n if rows is None else len(rows)) * n_boot * len(out)
        with progress_bar(work > _PROGRESS_WORK, f"paired bootstrap {self.name}", n_boot) as advance:
            for k, index in enumerate(draws):
                for model in out:
                    value = self.scorers[model](self.sets[model].subset(index))
                    if value is not None:
                        out[model][k] = value if rows is None else shift[model][0] + scale * (value - shift[model][1])
                advance(1)
        return (out if self.higher_is_better else {m: 1 - v for m, v in out.items()}), unpaired


@dataclass(frozen=True)
class GeneralSet:
    """One general dataset under one protocol: each model's per-sample outcomes on its test samples. The draws'
    stream is the dataset's (``general/DATASET``), so every protocol on the same test samples gets the same
    indices (``load_general`` checks that the protocols' samples agree)."""

    name: str
    dataset: str
    protocol: str
    metric: str
    outcomes: dict[str, np.ndarray]
    labels: np.ndarray | None = None  # each sample's class code (0 .. K − 1), where the headline needs it

    def indices(self, n_boot: int, seed: int) -> Iterator[np.ndarray]:
        """Blocks of draws (draws x samples), each row one draw's samples, drawn with replacement."""
        n = len(next(iter(self.outcomes.values())))
        rng = _rng(seed, f"general/{self.dataset}")
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
    paired; ``fallback``: model -> {"fr" | "mad" | "pad" | "gelo": why that coordinate is not paired};
    ``test_sets``: name -> what was resampled (unit, rows, models, draws in which a headline was undefined)."""

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
    start = time.perf_counter()
    logger(__name__).info(
        f"paired bootstrap: {n_boot} draws of {len(benchmarks)} biometric benchmarks and "
        f"{len({g.dataset for g in general})} general test sets"
    )
    per_task: dict[tuple[str, str], list[np.ndarray]] = {}
    for bench in benchmarks:
        drawn, unpaired = bench.draws(n_boot, seed)
        for model, reason in unpaired.items():
            found.fallback.setdefault(model, {}).setdefault(bench.task, f"{bench.name}: {reason}")
        for model, values in drawn.items():
            per_task.setdefault((model, bench.task), []).append(values)
        undefined = {m: int(np.count_nonzero(np.isnan(v))) for m, v in drawn.items()}
        column = np.column_stack(list(drawn.values())) if drawn else np.zeros((n_boot, 0))
        found.test_sets[bench.name] = {
            "unit": bench.unit,
            "n": bench.n,
            "rows_resampled": bench.rows_resampled,
            "method": bench.method,
            "models": sorted(bench.sets),
            "undefined_draws": int(np.count_nonzero(np.isnan(column).any(axis=1))),
            "undefined_by_model": {m: k for m, k in undefined.items() if k},
        }
        if found.test_sets[bench.name]["undefined_draws"]:
            logger(__name__).warning(
                f"frontier: {bench.name}: a headline is undefined in {found.test_sets[bench.name]['undefined_draws']}"
                f" of {n_boot} draws ({found.test_sets[bench.name]['undefined_by_model']}): those draws' statistics "
                "that need it are undefined"
            )
    for key, parts in per_task.items():
        if key[1] in found.fallback.get(key[0], {}):  # a benchmark of it could not be paired: drawn parametrically
            continue
        found.x[key] = np.mean(np.stack(parts), axis=0)
    values: dict[tuple[str, str, str], np.ndarray] = {}
    for part in general:
        drawn = part.draws(n_boot, seed)
        for model, draws in drawn.items():
            values[(model, part.dataset, part.protocol)] = draws
        undefined = int(np.count_nonzero(np.isnan(np.column_stack(list(drawn.values()))).any(axis=1)))
        name = f"general/{part.dataset}"  # one test set, one resample per draw, whatever the protocols
        entry = found.test_sets.setdefault(
            name, {"unit": "samples", "n": len(next(iter(part.outcomes.values()))), "protocols": {}}
        )
        entry["protocols"][part.protocol] = {"models": sorted(part.outcomes), "undefined_draws": undefined}
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
    logger(__name__).info(f"paired bootstrap: {n_boot} draws in {time.perf_counter() - start:.1f} s")
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
    return _hashed(prepare(data, meta["convention"])), meta["convention"]


def _hashed(data: ScoreSet) -> ScoreSet:
    """The set with per-row string ids as 64-bit hashes where strings are not needed: pair ids only tell sets
    apart, and above ``MAX_ROWS`` subjects and videos too (the bootstrap resamples rows there); below it they stay
    strings, whose sorted order numbers the clusters as the protocol's bootstrap numbers them. An IJB-C pair list
    (15.6 M rows) as Python strings would take gigabytes per model (a hash collision, ~n² / 2⁶⁵, merges two ids)."""
    from pandas.util import hash_array

    def ids(column):
        return None if column is None else hash_array(np.asarray(column, dtype=object), categorize=False)

    if len(data) > MAX_ROWS:
        data = replace(data, videos=ids(data.videos), subjects=ids(data.subjects))
    return replace(data, pairs=ids(data.pairs))


def _same_rows(data: ScoreSet, first: ScoreSet) -> bool:
    """The same test rows: length, labels, attack types and whatever ids the sets hold."""
    if len(data) != len(first) or not np.array_equal(data.positive, first.positive):
        return False
    if (data.attack_codes is None) != (first.attack_codes is None):
        return False
    if data.attack_codes is not None and not np.array_equal(
        np.array(data.attack_names, dtype=object)[data.attack_codes[~data.positive]],
        np.array(first.attack_names, dtype=object)[first.attack_codes[~first.positive]],
    ):
        return False
    return all(
        (a is None) == (b is None) and (a is None or np.array_equal(a, b))
        for a, b in ((data.videos, first.videos), (data.subjects, first.subjects), (data.pairs, first.pairs))
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
        cells: dict[str, list] = {}
        for r in members:
            cells.setdefault(r.model, []).append(r)
        sets, scorers, values, first = {}, {}, {}, None
        for r in members:
            if len(cells[r.model]) > 1:  # its biometric score averages them; one set per model is paired
                twice = ", ".join(f"{c.cell} ({c.convention})" for c in cells[r.model])
                reason = f"{len(cells[r.model])} headline rows on {dataset} under {protocol}: {twice}"
                why.setdefault(r.model, {}).setdefault(task, reason)
                continue
            reason, data, scorer = _scored(out, r, details.get(r.cell, {}), protocol)
            if reason is None and first is not None and not _same_rows(data, first):
                reason = f"scores/{r.cell}.csv holds other rows than {members[0].model}'s on {dataset}"
            if reason is not None:
                why.setdefault(r.model, {}).setdefault(task, reason)
                continue
            first = first if first is not None else data
            sets[r.model], scorers[r.model], values[r.model] = data, scorer, r.value
        if sets:
            name = f"{task}/{dataset}/{protocol}"
            found.append(Benchmark(name, task, bool(members[0].higher_is_better), sets, scorers, values))
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
    # one test set per dataset: every protocol's outcomes must be on the same samples (count, and labels where
    # stored) as the first accepted file of the dataset, the base's under the first protocol
    reference: dict[str, tuple[str, int, np.ndarray | None]] = {}  # dataset -> (cell, samples, labels)
    for (dataset, protocol), members in sorted(groups.items()):
        members.sort(key=lambda r: (r.model != base, r.model))
        outcomes, labels = {}, None
        for r in members:
            reason, correct, mine = _outcomes(out, r)
            cell, n, known = reference.get(dataset, (None, None, None))
            if reason is None and cell is not None and len(correct) != n:
                reason = f"predictions/{r.cell}.npz has {len(correct)} samples of {dataset}, predictions/{cell}.npz {n}"
            if reason is None and known is not None and mine is not None and not np.array_equal(mine, known):
                reason = f"predictions/{r.cell}.npz labels other samples of {dataset} than predictions/{cell}.npz"
            if reason is not None:
                unpaired.setdefault(r.model, reason)
                continue
            if cell is None or (known is None and mine is not None):
                reference[dataset] = (r.cell, len(correct), mine)
            outcomes[r.model] = correct
            labels = labels if labels is not None else mine
        if outcomes:
            metric = members[0].headline_metric
            labels = labels if metric in NEEDS_LABELS else None
            codes = None if labels is None else np.unique(labels, return_inverse=True)[1].ravel()
            found.append(GeneralSet(f"general/{dataset}/{protocol}", dataset, protocol, metric, outcomes, codes))
    for spec in specs:
        reason = unpaired.get(spec.model) or (unpaired.get(spec.base) and f"its base: {unpaired[spec.base]}")
        if reason:
            why.setdefault(spec.model, {}).setdefault("gelo", reason)
    return found


def _outcomes(out: Path, row) -> tuple[str | None, np.ndarray | None, np.ndarray | None]:
    """(why not, the per-sample outcomes, their labels where the file holds them)."""
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
        labels = np.asarray(data["label"]) if "label" in data else None  # also to tell test sets apart
    value = float(GENERAL_HEADLINES[metric](correct, labels if metric in NEEDS_LABELS else None))
    if value != row.value:
        return f"{metric} of predictions/{row.cell}.npz is {value!r}, the stored row {row.value!r}", None, None
    return None, correct, labels

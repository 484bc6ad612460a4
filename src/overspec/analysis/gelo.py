"""GELO (Chettaoui et al., IJCB 2025): the mean headline metric of a fine-tuned model over a suite of
general datasets divided by the same mean for its own base model. Below 1 means general knowledge lost.

Every model is compared with *its own* base (``Record.base``: recorded by the planner in a run's rows, a
``base`` column of a typed-in table, or ``--base MODEL=BASE``), so an experiment with a ViT-B/16 and a
ViT-L/14 family has two bases and every specialist its GELO. Where a base name has rows under several
architectures (a paper's table: "CLIP" ViT-B/16 and ViT-L/14), the base's rows of the model's own architecture
are used.

The suite is the datasets both models were evaluated on (reported with each result). Uncertainty:
a paired bootstrap over the suite's datasets gives the GELO interval; below ``MIN_DATASETS`` datasets (too
few distinct resamples) it resamples each dataset's test samples instead, paired, where per-sample outcomes
of top-1 accuracy exist (``GeloResult.interval_over`` says which); a one-sided Wilcoxon signed-rank
test over the datasets asks whether the fine-tuned model is worse. Where per-sample outcomes exist
(runs of ``overspec run``), each dataset's change also gets a paired bootstrap interval and an exact
McNemar test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from overspec._csv import csv_rows
from overspec._log import logger
from overspec.errors import DataError
from overspec.metrics.specs import parse_metric


@dataclass(frozen=True)
class Record:
    """One headline number: a model (of an architecture) on a dataset under a protocol."""

    model: str
    arch: str
    dataset: str
    protocol: str
    value: float
    metric: str = "headline"
    higher_is_better: bool = True
    task: str = "general"  # the dataset's task
    base: str | None = None  # the model it was fine-tuned from
    model_task: str = "general"  # what the model was tuned for


@dataclass
class DatasetChange:
    dataset: str
    value: float
    base_value: float
    absolute: float
    relative: float
    ci: tuple[float, float] | None = None
    p_value: float | None = None


@dataclass
class GeloResult:
    model: str
    arch: str
    protocol: str
    baseline: str
    gelo: float
    mean: float
    base_mean: float
    n_datasets: int
    datasets: list[str]
    ci: tuple[float, float]
    p_value: float | None
    changes: list[DatasetChange] = field(default_factory=list)
    interval_over: str = "datasets"  # what the GELO interval's bootstrap resamples: datasets or test samples

    def as_json(self) -> dict:
        return {
            "model": self.model,
            "arch": self.arch,
            "protocol": self.protocol,
            "baseline": self.baseline,
            "gelo": self.gelo,
            **({} if np.isfinite(self.gelo) else {"gelo_undefined": "the base's mean over the suite is 0"}),
            "mean": self.mean,
            "base_mean": self.base_mean,
            "n_datasets": self.n_datasets,
            "datasets": self.datasets,
            "gelo_ci": list(self.ci),
            "gelo_ci_over": self.interval_over,
            "p_value_drop": self.p_value,
            "changes": {
                c.dataset: {
                    "absolute": c.absolute,
                    "relative": c.relative,
                    "ci": list(c.ci) if c.ci else None,
                    "p_value": c.p_value,
                }
                for c in self.changes
            },
        }


def read_table(path: str | Path) -> list[Record]:
    """Records from a CSV with columns model, dataset, protocol and value (or value_percent); optional arch,
    metric (``headline`` rows are used when present), task, higher_is_better, base and model_task."""
    path = Path(path)
    required = ("model", "dataset", "protocol", ("value", "value_percent"))
    with csv_rows(path, what="results table", required=required) as (columns, numbered):
        value_column = "value" if "value" in columns else "value_percent"
        rows = list(numbered)
    use_headline = "metric" in columns and any(r.get("metric") == "headline" for _, r in rows)
    records, seen, scales = [], {}, {}
    for line, row in rows:
        if use_headline and row.get("metric") != "headline":
            continue
        key = (row["model"], row.get("arch") or "", row["dataset"], row["protocol"], row.get("metric") or "")
        if key in seen:
            raise DataError(f"{path}, line {line}: repeats line {seen[key]} ({', '.join(k for k in key if k)})")
        seen[key] = line
        try:
            value = float(row[value_column])
        except ValueError:
            raise DataError(f"{path}, line {line}: {value_column} {row[value_column]!r} is not a number") from None
        if not math.isfinite(value):  # one NaN would make the model's GELO NaN, shown as null
            raise DataError(
                f"{path}, line {line}: {value_column} {row[value_column]!r} is not a finite number; "
                "give the measured value, or leave the row out"
            )
        metric = row.get("headline_metric") or row.get("metric") or "headline"
        hib = row.get("higher_is_better")
        if hib not in (None, ""):
            higher = hib.lower() in ("1", "true")
        elif metric == "headline":
            higher = True
        else:
            try:
                higher = parse_metric(metric).higher_is_better
            except DataError as exc:
                raise DataError(f"{path}, line {line}: {exc}; add a higher_is_better column") from None
        if value_column == "value" and (metric == "headline" or _fraction_metric(metric)):
            scales.setdefault(value > 1.0, (line, value))
        records.append(
            Record(
                row["model"],
                row.get("arch") or "",
                row["dataset"],
                row["protocol"],
                value,
                metric,
                higher,
                row.get("task") or "general",
                row.get("base") or None,
                row.get("model_task") or "general",
            )
        )
    if len(scales) == 2:
        (low_line, low), (high_line, high) = scales[False], scales[True]
        logger(__name__).warning(
            f"{path}: {value_column} mixes scales: line {high_line} has {high:g} (a percentage?) and line "
            f"{low_line} {low:g} (a fraction?); give every value in one unit, or GELO mixes them"
        )
    return records


def _fraction_metric(metric: str) -> bool:
    try:
        return parse_metric(metric).spec.unit == "fraction"
    except DataError:
        return False


def assign_bases(
    records: list[Record], *, baseline: str | None = None, pairs: list[str] = (), origin: object = "the table"
) -> list[Record]:
    """Set each model's base: ``pairs`` (``MODEL=BASE``) first, then the table's own ``base`` column, then
    ``baseline`` for every other model. A base without general-suite rows is an error naming the models."""
    explicit = {}
    for pair in pairs:
        model, sep, base = pair.partition("=")
        if not sep or not model or not base:
            raise DataError(f"--base {pair!r}: write MODEL=BASE, e.g. --base froundation=clip")
        explicit[model.strip()] = base.strip()
    general_models = sorted({r.model for r in records if r.task == "general"})
    for name in [*explicit.values(), *([baseline] if baseline else [])]:
        if name not in general_models:
            raise DataError(f"base {name!r} has no general-suite rows in {origin}; models there: {general_models}")

    def base_of(r: Record) -> str | None:
        if r.model in explicit:
            return explicit[r.model]
        if r.base:
            return r.base
        return baseline if baseline and r.model != baseline else None

    out = [replace(r, base=base_of(r)) for r in records]
    if not any(r.base for r in out):
        raise DataError(
            f"{origin}: no model has a base; add a base column, or give --base MODEL=BASE or --baseline MODEL"
        )
    return out


def _base_key(records: list[Record], base: str, arch: str) -> tuple[str, str] | None:
    """The (model, arch) of ``base`` to compare a model of ``arch`` with: the same architecture when the base has
    rows under several, else its only one."""
    archs = {r.arch for r in records if r.model == base}
    if arch in archs:
        return base, arch
    return (base, next(iter(archs))) if len(archs) == 1 else None


def analyse(
    records: list[Record],
    *,
    protocols: list[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    samples: dict | None = None,
) -> list[GeloResult]:
    """GELO of every model that has a base, against that base, per general protocol.

    ``samples`` optionally maps (model, arch, dataset, protocol) to per-sample correctness arrays, which
    adds per-dataset paired intervals and McNemar tests.
    """
    general = [r for r in records if r.task == "general"]
    table: dict[tuple, float] = {(r.model, r.arch, r.protocol, r.dataset): r.value for r in general}
    metrics = {(r.model, r.arch, r.protocol, r.dataset): r.metric for r in general}
    bases = {(r.model, r.arch): r.base for r in general if r.base}
    results = []
    for model, arch, protocol in sorted({(r.model, r.arch, r.protocol) for r in general}):
        if (model, arch) not in bases or (protocols and protocol not in protocols):
            continue
        found = _base_key(general, bases[(model, arch)], arch)
        if found is None:
            continue
        baseline, base_arch = found
        mine = {d: v for (m, a, p, d), v in table.items() if (m, a, p) == (model, arch, protocol)}
        base = {d: v for (m, a, p, d), v in table.items() if (m, a, p) == (baseline, base_arch, protocol)}
        suite = sorted(set(mine) & set(base))
        if not suite:
            logger(__name__).warning(
                f"{model}{f' ({arch})' if arch else ''} and its base {baseline} share no {protocol} dataset "
                f"({', '.join(sorted(mine)[:3])} vs {', '.join(sorted(base)[:3])}); no GELO for it"
            )
            continue
        x, b = np.array([mine[d] for d in suite]), np.array([base[d] for d in suite])
        outcomes = [
            ((samples or {}).get((model, arch, d, protocol)), (samples or {}).get((baseline, base_arch, d, protocol)))
            for d in suite
        ]
        changes = [_change(d, mine[d], base[d], *pair, seed) for d, pair in zip(suite, outcomes, strict=True)]
        headlines = [metrics[(baseline, base_arch, protocol, d)] for d in suite]
        by_samples = len(suite) < MIN_DATASETS and _per_sample(outcomes, headlines)
        interval = _bootstrap_samples(outcomes, n_boot, seed) if by_samples else _bootstrap_ratio(x, b, n_boot, seed)
        results.append(
            GeloResult(
                model,
                arch,
                protocol,
                baseline,
                float(gelo_ratio(x, b)),
                float(x.mean()),
                float(b.mean()),
                len(suite),
                suite,
                interval,
                _wilcoxon_drop(x, b),
                changes,
                "test samples" if by_samples else "datasets",
            )
        )
    return results


def gelo_ratio(values: np.ndarray, base_values: np.ndarray) -> np.ndarray:
    """GELO from headline values over the suite's datasets (the last axis; leading axes, e.g. bootstrap draws, are
    kept): the model's mean over the base's mean, NaN where the base's mean is 0."""
    mean, base = np.mean(values, axis=-1), np.mean(base_values, axis=-1)
    return np.divide(mean, base, out=np.full(np.shape(mean), np.nan), where=base != 0)


def missing_bases(records: list[Record]) -> dict[str, str]:
    """Models whose base has no general-suite rows of a shared protocol: model -> why no GELO."""
    general = [r for r in records if r.task == "general"]
    found = {(g.model, g.arch) for g in analyse(general, n_boot=0)}
    why = {}
    for r in general:
        if r.base and (r.model, r.arch) not in found:
            why[r.model] = f"its base {r.base} has no general-suite results of the same protocol"
    return why


def _bootstrap_ratio(x: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile interval of mean(x)/mean(b) over datasets resampled in pairs."""
    if len(x) < 2 or n_boot < 1:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(x), (n_boot, len(x)))
    ratios = x[index].mean(axis=1) / b[index].mean(axis=1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


MIN_DATASETS = 5  # fewer: the GELO interval resamples test samples (paired, within each dataset), not datasets


def _per_sample(outcomes: list[tuple], metrics: list[str]) -> bool:
    """Per-sample top-1 outcomes of both models on every dataset, and top-1 accuracy the headline of each."""
    return all(_paired(m, b) for m, b in outcomes) and set(metrics) <= {"acc1"}


def _paired(correct, base_correct) -> bool:
    """Both models' per-sample outcomes on one dataset, sample for sample."""
    return correct is not None and base_correct is not None and len(correct) == len(base_correct)


def _bootstrap_samples(outcomes: list[tuple], n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile interval of mean(acc)/mean(base acc) with each dataset's test samples resampled in pairs."""
    if n_boot < 1:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    mine, base = np.zeros(n_boot), np.zeros(n_boot)
    for m, b in outcomes:
        index = rng.integers(0, len(m), (n_boot, len(m)))
        mine += np.asarray(m, float)[index].mean(axis=1)
        base += np.asarray(b, float)[index].mean(axis=1)
    ratios = mine / np.where(base > 0, base, np.nan)
    return float(np.nanpercentile(ratios, 2.5)), float(np.nanpercentile(ratios, 97.5))


def _wilcoxon_drop(x: np.ndarray, b: np.ndarray) -> float | None:
    """One-sided Wilcoxon signed-rank p-value for 'the model is below its base' across datasets."""
    if len(x) < 2 or np.allclose(x, b):
        return None
    from scipy.stats import wilcoxon

    return float(wilcoxon(x, b, alternative="less").pvalue)


def _change(dataset, value, base_value, correct, base_correct, seed) -> DatasetChange:
    change = DatasetChange(
        dataset,
        value,
        base_value,
        value - base_value,
        (value - base_value) / base_value if base_value else float("nan"),
    )
    if _paired(correct, base_correct):
        change.ci, change.p_value = paired_accuracy_test(np.asarray(correct), np.asarray(base_correct), seed)
    return change


def paired_accuracy_test(a: np.ndarray, b: np.ndarray, seed: int, n_boot: int = 2000):
    """Paired bootstrap interval of acc(a) - acc(b) and the exact two-sided McNemar p-value."""
    from scipy.stats import binomtest

    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(a), (n_boot, len(a)))
    diffs = a[index].mean(axis=1) - b[index].mean(axis=1)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return (float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))), p


@dataclass
class BiometricGain:
    model: str
    arch: str
    task: str
    benchmark: str
    metric: str
    value: float
    base_value: float
    gain: float  # positive = better than the base, whatever the metric's direction


def biometric_gains(records: list[Record]) -> list[BiometricGain]:
    """Each specialist's gain over its own base on the benchmarks of its own task (fr, mad or pad)."""
    from overspec.protocols.specs import side_effect_protocols

    side = side_effect_protocols()  # what it accepts: no gain
    bio = [r for r in records if r.task != "general" and r.protocol not in side]
    by_key = {(r.model, r.arch, r.dataset, r.protocol): r for r in bio}
    gains = []
    for r in bio:
        if not r.base or r.model_task != r.task:
            continue
        found = _base_key(bio, r.base, r.arch)
        b = by_key.get((*found, r.dataset, r.protocol)) if found else None
        if b is None:
            continue
        sign = 1 if r.higher_is_better else -1
        gains.append(
            BiometricGain(r.model, r.arch, r.task, r.dataset, r.metric, r.value, b.value, sign * (r.value - b.value))
        )
    return gains

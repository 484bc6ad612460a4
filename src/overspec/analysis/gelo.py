"""GELO (Chettaoui et al., IJCB 2025): the mean headline metric of a fine-tuned model over a suite of
general datasets divided by the same mean for its base model. Below 1 means general knowledge lost.

The suite is the datasets both models were evaluated on (reported with each result). Uncertainty:
a paired bootstrap over the suite's datasets gives the GELO interval; a one-sided Wilcoxon signed-rank
test over the datasets asks whether the fine-tuned model is worse. Where per-sample outcomes exist
(runs of ``overspec run``), each dataset's change also gets a paired bootstrap interval and an exact
McNemar test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from overspec._csv import csv_rows
from overspec.errors import DataError

LOWER_IS_BETTER = ("eer", "hter", "acer", "apcer", "bpcer")


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
    task: str = "general"


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

    def as_json(self) -> dict:
        return {
            "model": self.model,
            "arch": self.arch,
            "protocol": self.protocol,
            "baseline": self.baseline,
            "gelo": self.gelo,
            "mean": self.mean,
            "base_mean": self.base_mean,
            "n_datasets": self.n_datasets,
            "datasets": self.datasets,
            "gelo_ci": list(self.ci),
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
    metric (``headline`` rows are used when present), task and higher_is_better."""
    path = Path(path)
    required = ("model", "dataset", "protocol", ("value", "value_percent"))
    with csv_rows(path, what="results table", required=required) as (columns, numbered):
        value_column = "value" if "value" in columns else "value_percent"
        rows = list(numbered)
    use_headline = "metric" in columns and any(r.get("metric") == "headline" for _, r in rows)
    records = []
    for line, row in rows:
        if use_headline and row.get("metric") != "headline":
            continue
        try:
            value = float(row[value_column])
        except ValueError:
            raise DataError(f"{path}, line {line}: {value_column} {row[value_column]!r} is not a number") from None
        metric = row.get("metric") or "headline"
        hib = row.get("higher_is_better")
        higher = (
            hib.lower() in ("1", "true") if hib not in (None, "") else not any(p in metric for p in LOWER_IS_BETTER)
        )
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
            )
        )
    return records


def analyse(
    records: list[Record],
    baseline: str,
    *,
    protocols: list[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    samples: dict | None = None,
) -> list[GeloResult]:
    """GELO of every model against ``baseline`` of the same architecture, per protocol.

    ``samples`` optionally maps (model, arch, dataset, protocol) to per-sample correctness arrays, which
    adds per-dataset paired intervals and McNemar tests.
    """
    general = [r for r in records if r.task == "general"]
    if not any(r.model == baseline for r in general):
        models = sorted({r.model for r in general})
        raise DataError(f"baseline {baseline!r} has no general-suite rows; models in the table: {models}")
    table: dict[tuple, float] = {(r.model, r.arch, r.protocol, r.dataset): r.value for r in general}
    results = []
    keys = sorted({(r.model, r.arch, r.protocol) for r in general})
    for model, arch, protocol in keys:
        if model == baseline or (protocols and protocol not in protocols):
            continue
        mine = {d: v for (m, a, p, d), v in table.items() if (m, a, p) == (model, arch, protocol)}
        base = {d: v for (m, a, p, d), v in table.items() if (m, a, p) == (baseline, arch, protocol)}
        suite = sorted(set(mine) & set(base))
        if not suite:
            continue
        x, b = np.array([mine[d] for d in suite]), np.array([base[d] for d in suite])
        changes = [
            _change(
                d,
                mine[d],
                base[d],
                (samples or {}).get((model, arch, d, protocol)),
                (samples or {}).get((baseline, arch, d, protocol)),
                seed,
            )
            for d in suite
        ]
        results.append(
            GeloResult(
                model,
                arch,
                protocol,
                baseline,
                float(x.mean() / b.mean()),
                float(x.mean()),
                float(b.mean()),
                len(suite),
                suite,
                _bootstrap_ratio(x, b, n_boot, seed),
                _wilcoxon_drop(x, b),
                changes,
            )
        )
    return results


def _bootstrap_ratio(x: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile interval of mean(x)/mean(b) over datasets resampled in pairs."""
    if len(x) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(x), (n_boot, len(x)))
    ratios = x[index].mean(axis=1) / b[index].mean(axis=1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


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
    if correct is not None and base_correct is not None and len(correct) == len(base_correct):
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


def biometric_gains(records: list[Record], baseline: str, model_tasks: dict[str, str]) -> list[BiometricGain]:
    """Each specialist's gain over its base on the benchmarks of its own task (fr, mad or pad)."""
    bio = [r for r in records if r.task != "general"]
    base = {(r.arch, r.dataset): r for r in bio if r.model == baseline}
    gains = []
    for r in bio:
        task = model_tasks.get(r.model)
        if r.model == baseline or task != r.task or (r.arch, r.dataset) not in base:
            continue
        b = base[(r.arch, r.dataset)]
        sign = 1 if r.higher_is_better else -1
        gains.append(
            BiometricGain(r.model, r.arch, r.task, r.dataset, r.metric, r.value, b.value, sign * (r.value - b.value))
        )
    return gains

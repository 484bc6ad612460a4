"""The one scoring path: a score set and a convention in, every metric key out, with intervals.

``score_set`` is what ``overspec run``'s biometric protocols and ``overspec score`` both call. It returns, under
the keys of ``overspec.metrics.specs``:

- the pooled metrics of the convention, at its one list of operating points;
- for a MAD/PAD set that names attack types, each of the convention's ``per_attack`` metrics for each type (all
  bona fide samples against that type's attacks) as ``NAME[_POINT]@TYPE``, and their ``mean_`` and ``worst_``
  over types (worst = the highest error, or the lowest AUC);
- operating points the data cannot resolve as ``None``, with the reason in ``unresolved``: a target rate below
  1/N of the class it is a rate of (TAR at FAR 1e-4 needs 10,000 impostor pairs: with fewer, the only FAR at or
  below the target is 0, and every lower target reads the same number).

``score_intervals`` bootstraps the same function: percentile 95 % intervals, resampling within each class, and
resampling whole subjects or videos where the set knows them (a cluster bootstrap).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from overspec.errors import DataError
from overspec.metrics.bootstrap import MAX_ROWS, bootstrap_intervals
from overspec.metrics.conventions import convention_for, parse_convention
from overspec.metrics.conventions.base import Convention, ScoreSet
from overspec.metrics.specs import metric_key, needed_samples, parse_metric

DECISIONS = ("eer_threshold", "threshold")  # what a convention may return beside metrics: scores, in file units
N_RESAMPLES = 1000  # `overspec score`'s default
# `overspec run`'s: a MAD cell with three attack types costs ~2-5 ms a resample (pooled and per type), so 1,000
# resamples would add seconds to every biometric cell; the exported score file's command repeats the count, so
# `overspec score` re-computes the run's intervals exactly
RUN_RESAMPLES = 200
# Per-type figures make a resample cost grow with the number of attack types (about 0.35 s per type per 1,000
# resamples); above this many types only the pooled keys get intervals, and the output says so.
MAX_INTERVAL_TYPES = 20
CLASS_NOUNS = {
    "verification": {"positive": "genuine pairs", "negative": "impostor pairs"},
    "attack": {"positive": "bona fide samples", "negative": "attack samples"},
}


@dataclass(frozen=True)
class Scored:
    """Every key of one score set under one convention (``None`` where ``unresolved`` gives the reason)."""

    convention: str
    values: dict[str, float | None]
    unresolved: dict[str, str]
    decisions: dict[str, float]  # eer_threshold, threshold: scores in the file's units, not metrics
    counts: dict[str, int]
    attack_types: tuple[str, ...] = ()

    @property
    def resolved(self) -> dict[str, float]:
        return {k: v for k, v in self.values.items() if v is not None}


@dataclass(frozen=True)
class Intervals:
    """Bootstrap intervals of a ``Scored``'s resolved keys and how they were obtained."""

    intervals: dict[str, tuple[float, float]]
    method: str
    resamples: int
    skipped: dict[str, str] = field(default_factory=dict)  # what got no interval, and why
    seconds: float = 0.0


def prepare(data: ScoreSet, convention: str = "iso") -> ScoreSet:
    """The units ``convention`` scores (e.g. one score per video for ``foundpad``)."""
    rules, options = _rules(convention, data.kind)
    return rules.prepare(data, **options) if rules.prepare is not None else data


def score_set(data: ScoreSet, convention: str = "iso", *, prepared: bool = False) -> Scored:
    """Every key of ``data`` under ``convention`` (``"iso"``, ``"madation:float32"``, ...); ``prepared``: the set
    is already in the convention's units (``prepare`` was applied)."""
    rules, options = _rules(convention, data.kind)
    units = data if prepared else prepare(data, convention)
    counts = units.counts | ({"n_rows": len(data)} if len(units) != len(data) else {})
    values, unresolved, decisions = _evaluate(units, rules, options, per_type=True)
    return Scored(convention, values, unresolved, decisions, counts, _types(units))


def score_key(data: ScoreSet, convention: str, key: str) -> float | None:
    """One key of ``score_set(data, convention, prepared=True)``, by the function ``score_intervals`` scores each
    resample with (the per-attack-type sweeps only for a per-type, ``mean_`` or ``worst_`` key): what the frontier's
    paired bootstrap recomputes per draw. ``data`` is in the convention's units (``prepare``)."""
    rules, options = _rules(convention, data.kind)
    parsed = parse_metric(key)
    values, _, _ = _evaluate(data, rules, options, per_type=bool(parsed.attack or parsed.aggregate))
    return values.get(key)


def _rules(convention: str, kind: str) -> tuple[Convention, dict]:
    rules = convention_for(convention, kind)
    return rules, parse_convention(convention)[1]


def _types(data: ScoreSet) -> tuple[str, ...]:
    if data.kind == "verification" or data.attack_codes is None:
        return ()
    present = np.unique(data.attack_codes[~data.positive])
    return tuple(data.attack_names[c] for c in present)


def _evaluate(data: ScoreSet, rules: Convention, options: dict, *, per_type: bool):
    raw = rules.metrics(data, **options)
    decisions = {k: raw.pop(k) for k in DECISIONS if k in raw}
    values: dict[str, float | None] = dict(raw)
    unresolved: dict[str, str] = {}
    _resolve(values, unresolved, data, "")
    if per_type and rules.per_attack and data.kind != "verification" and data.attack_codes is not None:
        # the per-type figures at the pooled decision threshold (an HTER per type means one system's threshold)
        threshold = decisions["threshold"] * data.sign if "threshold" in decisions else None
        per: dict[str, dict[str, float | None]] = {}
        for code in np.unique(data.attack_codes[~data.positive]):
            name = data.attack_names[code]
            keep = np.flatnonzero(data.positive | (data.attack_codes == code))
            subset = replace(data.subset(keep), attack_codes=None, attack_names=(), threshold=threshold)
            found = {k: v for k, v in rules.metrics(subset, **options).items() if _name(k) in rules.per_attack}
            reasons: dict[str, str] = {}
            _resolve(found, reasons, subset, name)
            per[name] = found
            values |= {f"{k}@{name}": v for k, v in found.items()}
            unresolved |= {f"{k}@{name}": r for k, r in reasons.items()}
        _aggregate(per, values, unresolved)
    return values, unresolved, decisions


def _name(key: str) -> str | None:
    try:
        return parse_metric(key).spec.name
    except DataError:
        return None


def _resolve(values: dict, unresolved: dict, data: ScoreSet, attack: str) -> None:
    """``None`` (and the reason) for every operating point below 1/N of the class it is a rate of."""
    nouns = CLASS_NOUNS["verification" if data.kind == "verification" else "attack"]
    n = {"positive": int(np.count_nonzero(data.positive))}
    n["negative"] = len(data.positive) - n["positive"]
    for key in values:
        parsed = parse_metric(key)
        side = parsed.spec.resolved_by
        if side is None or parsed.point is None:
            continue
        needed = needed_samples(parsed.point)
        if n[side] < needed:
            noun = nouns[side] if side == "positive" or not attack else f"{attack} {nouns[side]}"
            values[key] = None
            unresolved[key] = f"needs >= {needed} {noun}, has {n[side]}"


def _aggregate(per: dict[str, dict], values: dict, unresolved: dict) -> None:
    """``mean_KEY`` and ``worst_KEY`` over the types; unresolved where any type's value is."""
    keys = list(next(iter(per.values()))) if per else []
    for key in keys:
        parsed = parse_metric(key)
        column = {t: found.get(key) for t, found in per.items()}
        missing = [t for t, v in column.items() if v is None]
        names = {a: metric_key(parsed.spec.name, point=parsed.point, aggregate=a) for a in ("mean", "worst")}
        if missing:
            reason = unresolved.get(f"{key}@{missing[0]}", f"{missing[0]} has no value")
            for name in names.values():
                values[name] = None
                unresolved[name] = f"needs every attack type resolved; {reason}"
            continue
        numbers = list(column.values())
        values[names["mean"]] = float(np.mean(numbers))
        values[names["worst"]] = float(min(numbers) if parsed.higher_is_better else max(numbers))


def score_intervals(
    data: ScoreSet,
    scored: Scored,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    max_rows: int = MAX_ROWS,
    max_types: int = MAX_INTERVAL_TYPES,
    progress: bool = False,
) -> Intervals:
    """95 % percentile intervals of every resolved key of ``scored`` (from ``score_set(data, ...)``), each
    resample scored by the same function. ``data`` is the set in the convention's units (``prepare``)."""
    if n_resamples < 0:
        raise DataError(f"bootstrap resamples must be 0 or more, got {n_resamples}")
    if n_resamples == 0:
        return Intervals({}, "none (0 resamples)", 0)
    start = time.perf_counter()
    rules, options = _rules(scored.convention, data.kind)
    per_type = len(scored.attack_types) <= max_types
    skipped = {}
    if not per_type:
        skipped["per_attack_type"] = (
            f"no intervals for @TYPE, mean_ and worst_ keys: {len(scored.attack_types)} attack types, above the "
            f"bound of {max_types} (each type costs a sweep per resample)"
        )
    order = np.arange(len(data)) if rules.file_order else np.argsort(-data.scores, kind="stable")
    wanted = set(scored.resolved)

    def statistic(index: np.ndarray) -> dict[str, float]:
        values, _, _ = _evaluate(data.subset(index), rules, options, per_type=per_type)
        return {k: v for k, v in values.items() if v is not None and k in wanted}

    clusters, unit = _clusters(data)
    found = bootstrap_intervals(
        statistic,
        data.positive,
        n_resamples=n_resamples,
        seed=seed,
        order=order,
        max_rows=max_rows,
        estimate=scored.resolved,
        clusters=clusters,
        progress=progress,
    )
    unit = unit if found.rows == found.n else "samples"
    method = f"{found.method} over {unit} ({n_resamples} resamples, seed {seed})"
    return Intervals(found.intervals, method, n_resamples, skipped, time.perf_counter() - start)


def _clusters(data: ScoreSet) -> tuple[np.ndarray | None, str]:
    """Per-row cluster codes for a cluster bootstrap (subjects, else videos with several rows), and the unit."""
    default = "pairs" if data.kind == "verification" else "samples"
    for ids, unit in ((data.subjects, "subjects"), (data.videos, "videos")):
        if ids is not None:
            _, codes = np.unique(ids, return_inverse=True)
            if codes.max() + 1 < len(codes):  # some cluster holds several rows
                return codes.ravel(), unit
    return None, default

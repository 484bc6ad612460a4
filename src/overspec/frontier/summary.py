"""From a frontier run's stored rows to each task's frontier: points, Pareto set, hypervolume and the GELO each
method keeps at a matched biometric score, each with its interval (``analysis/frontier.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overspec.analysis.frontier import draw, hypervolume, interval, pareto_mask, sd_of, value_at
from overspec.config import Experiment
from overspec.frontier.points import PointFile


@dataclass
class Measured:
    value: float
    sd: float
    ci: tuple[float, float] | None


def _mean(parts: list[Measured]) -> Measured | None:
    """The mean of independent measurements: its sd is sqrt(Σ sd²) / n, its interval ±1.96 sd."""
    if not parts:
        return None
    value = float(np.mean([p.value for p in parts]))
    sd = float(np.sqrt(sum(p.sd**2 for p in parts)) / len(parts))
    if len(parts) == 1:
        return parts[0]
    return Measured(value, sd, (value - 1.959963984540054 * sd, value + 1.959963984540054 * sd))


def biometric_scores(rows) -> dict[tuple[str, str], Measured]:
    """(model, task) -> mean headline over the task's benchmarks, oriented so that higher is better (an error
    rate e counts as 1 − e), with the interval the rows carry."""
    parts: dict[tuple[str, str], list[Measured]] = {}
    for r in rows:
        if r.metric != "headline" or r.task == "general":
            continue
        low, high = r.ci_low, r.ci_high
        if r.higher_is_better:
            value, ci = r.value, (low, high)
        else:
            value, ci = 1 - r.value, (None if high is None else 1 - high, None if low is None else 1 - low)
        ok = ci[0] is not None and ci[1] is not None
        parts.setdefault((r.model, r.task), []).append(Measured(value, sd_of(ci), ci if ok else None))
    return {key: _mean(values) for key, values in parts.items()}


def gelo_scores(out: Path, rows, protocols: list[str] | None) -> dict[str, Measured]:
    """model -> GELO against its base, averaged over the general protocols, with its bootstrap interval."""
    from overspec.analysis.gelo import analyse
    from overspec.report.build import _records, _samples

    records, _, _ = _records(rows)
    parts: dict[str, list[Measured]] = {}
    for g in analyse(records, samples=_samples(out, rows), protocols=protocols):
        parts.setdefault(g.model, []).append(Measured(g.gelo, sd_of(g.ci), g.ci))
    return {model: _mean(values) for model, values in parts.items()}


def _json(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _ci(pair) -> list | None:
    return None if pair is None else [_json(pair[0]), _json(pair[1])]


def summarise(out: Path, experiment: Experiment, points: list[PointFile]) -> dict:
    from overspec.results import ResultStore

    settings = experiment.frontier
    store = ResultStore(out / "results.sqlite", create=False)
    rows = store.rows(current=True)
    store.close()
    bio, gelo = biometric_scores(rows), gelo_scores(out, rows, settings.gelo_protocols)
    gelo[settings.base] = Measured(1.0, 0.0, (1.0, 1.0))  # the base against itself
    point_names = {p.name for p in points}
    tasks = sorted({m.task for m in settings.methods})
    models = [e.name for e in experiment.model_entries()]
    return {
        "base": settings.base,
        "reference_gelo": settings.reference_gelo,
        "gelo_protocols": settings.gelo_protocols,
        "interval": "parametric bootstrap: each point's biometric score and GELO drawn from normals matching "
        f"their 95% intervals, independently, {settings.n_boot} draws",
        "tasks": {task: _task(task, settings, points, bio, gelo, models, point_names) for task in tasks},
        "models": {
            m: {
                "gelo": _json(gelo[m].value) if m in gelo else None,
                "gelo_ci": _ci(gelo[m].ci) if m in gelo else None,
                **{
                    task: {"biometric": _json(bio[(m, task)].value), "ci": _ci(bio[(m, task)].ci)}
                    for task in ("fr", "mad", "pad")
                    if (m, task) in bio
                },
            }
            for m in models
        },
    }


def _task(task, settings, points, bio, gelo, models, point_names) -> dict:
    base = settings.base
    if (base, task) not in bio:
        return {"error": f"the base {base} has no {task} benchmark result"}
    names = [base]  # every model placed on this task's plane, the base first
    curves = {}
    for method in (m for m in settings.methods if m.task == task):
        mine = sorted((p for p in points if p.method == method.name), key=lambda p: p.strength)
        if method.toward_base:  # a regulariser: the strongest is nearest the base
            mine = mine[::-1]
        mine = [p for p in mine if (p.name, task) in bio and p.name in gelo]
        curve = [base] + [p.name for p in mine]
        curves[method.name] = {"strengths": [None] + [p.strength for p in mine], "models": curve}
        names += [n for n in curve[1:] if n not in names]
    specialists = [m for m in models if m not in point_names and m != base and (m, task) in bio and m in gelo]
    names += [m for m in specialists if m not in names]
    index = {n: i for i, n in enumerate(names)}
    x = np.array([bio[(n, task)].value for n in names])
    y = np.array([gelo[n].value for n in names])
    draws = draw(
        x,
        y,
        np.array([bio[(n, task)].sd for n in names]),
        np.array([gelo[n].sd for n in names]),
        n=settings.n_boot,
        seed=settings.seed,
    )
    floor = settings.reference_gelo

    def hv(members: list[str]) -> dict:
        rows = [index[n] for n in members]
        value = hypervolume(x[rows], y[rows], (x[0], floor))
        per_draw = [hypervolume(dx[rows], dy[rows], (dx[0], floor)) for dx, dy in zip(draws.x, draws.y, strict=True)]
        return {"value": value, "ci": _ci(interval(np.array(per_draw)))}

    # the default matched score: the highest every method that gains at all reaches (one that never beats the base
    # is "not reached" there, rather than pulling the comparison down to no gain)
    reach = {name: float(max(x[index[n]] for n in c["models"])) for name, c in curves.items()}
    gaining = [r for r in reach.values() if r > x[0]]
    target = settings.match.get(task, min(gaining) if gaining else float("nan"))
    matched = {}
    for name, c in curves.items():
        rows = [index[n] for n in c["models"]]
        value = value_at(x[rows], y[rows], target)
        per_draw = [value_at(dx[rows], dy[rows], target) for dx, dy in zip(draws.x, draws.y, strict=True)]
        matched[name] = {"gelo": _json(value), "ci": _ci(interval(np.array(per_draw)))}
    front = pareto_mask(x, y)
    return {
        "base_biometric": _json(x[0]),
        "points": [
            {
                "model": n,
                "biometric": _json(x[i]),
                "biometric_ci": _ci(bio[(n, task)].ci),
                "gelo": _json(y[i]),
                "gelo_ci": _ci(gelo[n].ci),
                "pareto": bool(front[i]),
                "specialist": n in specialists,
            }
            for n, i in index.items()
        ],
        "curves": curves,
        "hypervolume": {"all": hv(names), **{name: hv(c["models"]) for name, c in curves.items()}},
        "matched": {"biometric": _json(target), "gain": _json(target - x[0]), "methods": matched},
    }

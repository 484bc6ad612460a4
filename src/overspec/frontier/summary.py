"""From a frontier run's stored rows to each task's frontier: points, Pareto set, hypervolume and the GELO each
method keeps at a matched biometric score, each with its interval (``analysis/frontier.py``), and what paired draws
allow: how often each point is on the frontier, each method's difference to the best one.

Intervals come from a paired bootstrap over the shared test sets (``frontier/paired.py``); a model whose numbers
cannot be recomputed per draw is drawn from normals matching its intervals instead (``parametric_fallback``). Every
interval on a plane, the points' included, is the 2.5 / 97.5 percentiles of these draws."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overspec._log import logger
from overspec.analysis.frontier import Draws, draw, hypervolume, interval, pareto_mask, sd_of, value_at
from overspec.config import Experiment
from overspec.frontier.paired import GeloSpec, Paired, load_benchmarks, load_general, paired_draws
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


def performance_rows(rows) -> list:
    """The headline rows a task's biometric score is made of: its benchmarks' (verification, MAD, PAD), never a
    side effect's (morph or attack acceptance, identification: what a face model accepts is not its gain)."""
    from overspec.protocols.specs import side_effect_protocols

    side = side_effect_protocols()
    return [r for r in rows if r.metric == "headline" and r.task != "general" and r.protocol not in side]


def benchmark_sets(rows) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(model, task) -> the (dataset, protocol) benchmarks its biometric score averages over."""
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for r in performance_rows(rows):
        found.setdefault((r.model, r.task), set()).add((r.dataset, r.protocol))
    return found


def biometric_scores(rows) -> dict[tuple[str, str], Measured]:
    """(model, task) -> mean headline over the task's benchmarks, oriented so that higher is better (an error
    rate e counts as 1 − e), with the interval the rows carry."""
    parts: dict[tuple[str, str], list[Measured]] = {}
    for r in performance_rows(rows):
        low, high = r.ci_low, r.ci_high
        if r.higher_is_better:
            value, ci = r.value, (low, high)
        else:
            value, ci = 1 - r.value, (None if high is None else 1 - high, None if low is None else 1 - low)
        ok = ci[0] is not None and ci[1] is not None
        parts.setdefault((r.model, r.task), []).append(Measured(value, sd_of(ci), ci if ok else None))
    return {key: _mean(values) for key, values in parts.items()}


def gelo_results(out: Path, rows, protocols: list[str] | None) -> list:
    """Each model's ``GeloResult`` per general protocol (``analysis/gelo.py``), against its own base."""
    from overspec.analysis.gelo import analyse
    from overspec.report.build import _records, _samples

    records, _, _ = _records(rows)
    return analyse(records, samples=_samples(out, rows), protocols=protocols)


def gelo_scores(results: list) -> dict[str, Measured]:
    """model -> GELO against its base, averaged over the general protocols, with its bootstrap interval."""
    parts: dict[str, list[Measured]] = {}
    for g in results:
        parts.setdefault(g.model, []).append(Measured(g.gelo, sd_of(g.ci), g.ci))
    return {model: _mean(values) for model, values in parts.items()}


def paired_of(out: Path, rows, details: dict, settings, tasks: list[str], models: list[str], results: list) -> Paired:
    """The paired draws of every model's biometric scores on ``tasks`` and GELO (``frontier/paired.py``)."""
    why: dict[str, dict[str, str]] = {}
    benchmarks = load_benchmarks(out, performance_rows(rows), details, tasks, models, settings.base, why)
    specs = [GeloSpec(g.model, g.baseline, g.protocol, tuple(g.datasets)) for g in results if g.model in models]
    general = load_general(out, rows, specs, settings.base, why)
    return paired_draws(benchmarks, general, specs, n_boot=settings.n_boot, seed=settings.seed, fallback=why)


def _json(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _ci(pair) -> list | None:
    return None if pair is None else [_json(pair[0]), _json(pair[1])]


def summarise(out: Path, experiment: Experiment, points: list[PointFile], *, pair: bool = True) -> dict:
    """frontier.json's content; ``pair=False``: every model drawn parametrically (the bench's comparison)."""
    from overspec.results import ResultStore

    settings = experiment.frontier
    store = ResultStore(out / "results.sqlite", create=False)
    rows = store.rows(current=True)
    details = store.details()
    store.close()
    results = gelo_results(out, rows, settings.gelo_protocols)
    bio, gelo = biometric_scores(rows), gelo_scores(results)
    gelo[settings.base] = Measured(1.0, 0.0, (1.0, 1.0))  # the base against itself
    tasks = sorted({m.task for m in settings.methods})
    entries = experiment.model_entries()
    models = [e.name for e in entries]
    names = [*models, *(p.name for p in points)]
    draws = paired_of(out, rows, details, settings, tasks, names, results) if pair else Paired()
    plane = Plane(bio, gelo, benchmark_sets(rows), {e.name: e.base for e in entries}, draws)
    return {
        "base": settings.base,
        "reference_gelo": settings.reference_gelo,
        "gelo_protocols": settings.gelo_protocols,
        "interval": _interval_text(settings, pair),
        "paired": {"test_sets": draws.test_sets, "parametric_fallback": draws.fallback},
        "tasks": {task: _task(task, settings, points, plane, models) for task in tasks},
        "models": {
            m: {
                "base": plane.bases[m],  # GELO is against this model's own base
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


def _interval_text(settings, pair: bool) -> str:
    if not pair:
        return (
            "parametric bootstrap: each point's biometric score and GELO drawn from normals matching their 95% "
            f"intervals, independently, {settings.n_boot} draws"
        )
    return (
        f"paired percentile bootstrap, {settings.n_boot} draws (seed {settings.seed}): each draw resamples every "
        "test set once (a biometric benchmark's comparisons as its protocol's bootstrap does: within each class, "
        "whole subjects or videos where known; a general dataset's test samples), with the same indices for every "
        "model, and recomputes every model's biometric score, GELO, the Pareto set, the hypervolumes and the "
        "matched GELO; every interval, each point's included, is the 2.5/97.5 percentiles of these draws; models "
        "in paired.parametric_fallback are drawn instead from normals matching their 95% intervals (a point's "
        "`intervals` says which). Conditional on the suite's datasets: test-sample uncertainty, not the sampling "
        "of datasets (the rows' own intervals: biometric_ci_rows, gelo_ci_rows)"
    )


@dataclass
class Plane:
    """What every model measured: biometric score per (model, task), GELO, benchmarks, base, paired draws."""

    bio: dict[tuple[str, str], Measured]
    gelo: dict[str, Measured]
    benchmarks: dict[tuple[str, str], set[tuple[str, str]]]
    bases: dict[str, str | None]  # the experiment's models -> their base (points: the frontier's base)
    paired: Paired

    def why_not(self, model: str, task: str, base: str) -> str | None:
        """Why ``model`` cannot stand on ``task``'s plane beside ``base`` (None: it can)."""
        if (model, task) not in self.bio:
            return f"no {task} benchmark result"
        if model not in self.gelo:
            return "no GELO (no general result against its base)"
        if self.bases.get(model, base) != base:
            return f"its GELO is against {self.bases[model]}, not the frontier's base {base}"
        missing = self.benchmarks[(base, task)] - self.benchmarks[(model, task)]
        extra = self.benchmarks[(model, task)] - self.benchmarks[(base, task)]
        if missing:  # its score would average over other benchmarks than the base's: not comparable
            return f"no result on the base's {task} benchmarks {', '.join(sorted(d for d, _ in missing))}"
        if extra:
            return f"{task} benchmarks the base lacks: {', '.join(sorted(d for d, _ in extra))}"
        return None


SURE = 0.975  # the share of draws in which a method's best point must beat the base for it to count as gaining
MATCH_RULE = (
    "half the smallest best gain over the base among the methods whose best point (highest biometric score) beats "
    f"the base in at least {100 * SURE:g} % of the draws (a one-sided 97.5 % bootstrap test: a noise-level gain "
    "does not drag the matched score to the base's)"
)


def matched_gain(task: str, settings, x0: float, best: dict[str, tuple[float, float]]) -> float:
    """The biometric gain over the base every method is compared at: ``match`` (a score) less the base's, or half
    the smallest best gain of the methods that gain for sure (``best``: method -> (its best point's score, the
    share of draws in which that point beats the base); at least ``SURE``), so that the limiting method's curve
    reaches it inside (its own best point would be reached in only about half of the draws, leaving it without an
    interval)."""
    if task in settings.match:
        return settings.match[task] - x0
    gains = [score - x0 for score, share in best.values() if score > x0 and share >= SURE]
    return 0.5 * min(gains) if gains else float("nan")


def _best_points(curves: dict, index: dict[str, int], x: np.ndarray, draws: Draws) -> dict[str, tuple[float, float]]:
    """method -> (its best point's score, the share of draws in which that point beats the base: the draws'
    columns, best point minus base; an undefined draw does not beat it)."""
    found = {}
    for name, c in curves.items():
        rows = [index[n] for n in c["models"][1:]]
        if rows:
            i = max(rows, key=lambda r: x[r])
            with np.errstate(invalid="ignore"):
                found[name] = (float(x[i]), float(np.mean(draws.x[:, i] - draws.x[:, 0] > 0)))
    return found


def _task(task, settings, points, plane: Plane, models: list[str]) -> dict:
    base = settings.base
    if (base, task) not in plane.bio:
        return {"error": f"the base {base} has no {task} benchmark result"}
    names = [base]  # every model placed on this task's plane, the base first
    excluded: dict[str, str] = {}
    curves = {}
    for method in (m for m in settings.methods if m.task == task):
        mine = sorted((p for p in points if p.method == method.name), key=lambda p: p.strength)
        if method.toward_base:  # a regulariser: the strongest is nearest the base
            mine = mine[::-1]
        for p in mine:
            why = plane.why_not(p.name, task, base)
            if why is not None:
                excluded[p.name] = why
        mine = [p for p in mine if p.name not in excluded]
        curve = [base] + [p.name for p in mine]
        curves[method.name] = {"strengths": [None] + [p.strength for p in mine], "models": curve}
        names += [n for n in curve[1:] if n not in names]
    point_names = {p.name for p in points}
    specialists = []
    for m in models:
        if m in point_names or m == base or (m, task) not in plane.bio:
            continue  # a model with no result on this task is simply not on its plane
        why = plane.why_not(m, task, base)
        if why is None:
            specialists.append(m)
        else:
            excluded[m] = why
    for model, why in excluded.items():
        logger(__name__).warning(f"frontier {task}: {model} left off the plane: {why}")
    names += [m for m in specialists if m not in names]
    index = {n: i for i, n in enumerate(names)}
    x = np.array([plane.bio[(n, task)].value for n in names])
    y = np.array([plane.gelo[n].value for n in names])
    draws = draw(
        x,
        y,
        np.array([plane.bio[(n, task)].sd for n in names]),
        np.array([plane.gelo[n].sd for n in names]),
        n=settings.n_boot,
        seed=settings.seed,
    )
    _pair(draws, names, task, plane.paired)
    floor = settings.reference_gelo

    def hv(members: list[str]) -> tuple[float, np.ndarray]:
        rows = [index[n] for n in members]
        value = hypervolume(x[rows], y[rows], (x[0], floor))
        per_draw = [hypervolume(dx[rows], dy[rows], (dx[0], floor)) for dx, dy in zip(draws.x, draws.y, strict=True)]
        return value, np.array(per_draw)

    # matched at an equal GAIN over the base: in each draw, that draw's base score plus the gain
    best = _best_points(curves, index, x, draws)
    gain = matched_gain(task, settings, x[0], best)
    match = {"rule": MATCH_RULE, "beats_base_share": {m: _json(share) for m, (_, share) in best.items()}}
    if task in settings.match:
        match["rule"] = f"the configured match {settings.match[task]:g} less the base's score"
        if gain < 0:
            match["warning"] = (
                f"match {settings.match[task]:g} is below the base's {task} score {x[0]:.4g}: methods are compared "
                f"at a loss of {-gain:.4g}"
            )
            logger(__name__).warning(f"frontier {task}: {match['warning']}")
    matched = {}
    for name, c in curves.items():
        rows = [index[n] for n in c["models"]]
        value = value_at(x[rows], y[rows], x[0] + gain)
        per_draw = [value_at(dx[rows], dy[rows], dx[0] + gain) for dx, dy in zip(draws.x, draws.y, strict=True)]
        matched[name] = (value, np.array(per_draw))
    volumes = {"all": hv(names), **{name: hv(c["models"]) for name, c in curves.items()}}
    front = pareto_mask(x, y)
    on_front = np.mean([pareto_mask(dx, dy) for dx, dy in zip(draws.x, draws.y, strict=True)], axis=0)
    methods = _compared(matched, "gelo")
    for name, (_, per_draw) in matched.items():
        methods[name]["reached_share"] = _json(np.mean(np.isfinite(per_draw)))
    return {
        "base_biometric": _json(x[0]),
        "points": [
            {
                "model": n,
                "biometric": _json(x[i]),
                "biometric_ci": _ci(interval(draws.x[:, i])),  # the same draws as every other interval
                "gelo": _json(y[i]),
                "gelo_ci": _ci(interval(draws.y[:, i])),
                "intervals": _kinds(n, task, base, plane.paired),
                "biometric_ci_rows": _ci(plane.bio[(n, task)].ci),  # the stored rows' (Wilson, protocol bootstrap)
                "gelo_ci_rows": _ci(plane.gelo[n].ci),  # analyse's (resampling datasets when the suite has >= 5)
                "pareto": bool(front[i]),
                "pareto_share": _json(on_front[i]),
                "specialist": n in specialists,
            }
            for n, i in index.items()
        ],
        "excluded": excluded,
        "curves": curves,
        "hypervolume": {
            "all": {"value": volumes["all"][0], "ci": _ci(interval(volumes["all"][1]))},
            **_compared({name: volumes[name] for name in curves}, "value"),
        },
        "matched": {"biometric": _json(x[0] + gain), "gain": _json(gain), **match, "methods": methods},
    }


def _kinds(name: str, task: str, base: str, found: Paired) -> dict[str, str]:
    """Which draws a point's intervals are the percentiles of: its paired column, or (a model in
    ``paired.parametric_fallback``, or an unpaired summary) the normal one matching its rows' interval."""
    gelo = "paired" if name in found.y else "parametric"
    return {
        "biometric": "paired" if (name, task) in found.x else "parametric",
        "gelo": "exact (the base against itself)" if name == base else gelo,
    }


def _pair(draws: Draws, names: list[str], task: str, found: Paired) -> None:
    """Replace the parametric columns of the models that could be paired by their paired draws (the base's GELO
    is 1 in every draw either way)."""
    for i, name in enumerate(names):
        if (name, task) in found.x:
            draws.x[:, i] = found.x[(name, task)]
        if name in found.y:
            draws.y[:, i] = found.y[name]


def _compared(found: dict[str, tuple[float, np.ndarray]], label: str) -> dict:
    """Each method's value (under ``label``) and interval, its difference to the best method's value in the same
    draws (paired: the same test samples), and the share of draws in which it is the best (ties: each)."""
    finite = {m: v for m, (v, _) in found.items() if np.isfinite(v)}
    best = max(finite, key=finite.get) if finite else None
    values = np.column_stack([d for _, d in found.values()]) if found else np.empty((0, 0))
    with np.errstate(invalid="ignore"):
        top = np.nanmax(np.where(np.isfinite(values), values, -np.inf), axis=1) if found else None
    out = {}
    for k, (method, (value, per_draw)) in enumerate(found.items()):
        entry = {label: _json(value), "ci": _ci(interval(per_draw))}
        if best is not None:
            best_value, best_draws = found[best]
            entry["difference"] = {
                "to": best,
                "value": _json(value - best_value),
                "ci": _ci(interval(per_draw - best_draws)),
            }
            entry["best_share"] = _json(np.mean(np.isfinite(values[:, k]) & (values[:, k] >= top)))
        out[method] = entry
    return out

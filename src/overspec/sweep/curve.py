"""Trade-off curves between a base model and its specialist without retraining.

Each point scales the fine-tuning update by s in [0, 1] (s = 0 is the base, s = 1 the specialist):
W0 + s·ΔW = (1 − s)·W0 + s·(W0 + ΔW), weight-space interpolation (WiSE-FT, Wortsman et al. 2022).
LoRA adapters and the study's checkpoints scale their low-rank update; full fine-tunes (family
``finetuned``) their saved tensors; with ``base`` given, any two models of one architecture are mixed
tensor by tensor (family ``interpolate``). Every point is a model spec file others can use; each is
evaluated with the experiment's protocols; the report gives per point the general score (GELO against
s = 0) and the biometric score, the Pareto front and the knee point.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from overspec.config import ModelEntry, load_config
from overspec.errors import ConfigError
from overspec.models import resolve_spec


@dataclass
class SweepPoint:
    scale: float
    spec: str
    gelo: float
    biometric: float
    pareto: bool = False
    knee: bool = False
    gelo_low: float = float("nan")  # the GELO's 95 % interval (the envelope of its protocols' intervals)
    gelo_high: float = float("nan")


def point_spec(spec, scale: float, *, model: str | None = None, base: str | None = None) -> dict:
    """The spec of the point at ``scale``: the specialist's own update scaled, or, with ``base``, a WiSE-FT
    mix of ``base`` and ``model`` (a zoo name or spec file)."""
    if base is not None:
        return {
            "family": "interpolate",
            "name": f"{spec.label}@{scale:g}",
            "base": base,
            "target": model,
            "adapter_scale": scale,
        }
    from overspec.models import FAMILIES

    data = spec.model_dump(exclude_none=True)
    update = FAMILIES.get(spec.family).update
    if update == "adapter_scale":
        data["adapter_scale"] = scale
    elif update == "lora.scale":
        lora = data.get("lora") or {}
        if "r" not in lora:
            raise ConfigError(f"{spec.label}: give `lora: {{r, alpha}}` in the spec to sweep it")
        data["lora"] = {**lora, "scale": scale}
    else:
        raise ConfigError(
            f"{spec.label}: family {spec.family} has no fine-tuning update to scale; give the model it was "
            "fine-tuned from (sweep --base) to interpolate weights between the two (WiSE-FT)"
        )
    data["name"] = f"{spec.label}@{scale:g}"
    return data


def _reference(model: str | Path) -> str:
    """A zoo name as is, a spec file as an absolute path (points live in another folder)."""
    return str(Path(model).resolve()) if Path(str(model)).is_file() else str(model)


def pareto_front(points: list[SweepPoint]) -> None:
    """Mark the points no other point beats on both the general and the biometric score."""
    for p in points:
        p.pareto = not any(
            q.gelo >= p.gelo and q.biometric >= p.biometric and (q.gelo, q.biometric) != (p.gelo, p.biometric)
            for q in points
        )


def knee(points: list[SweepPoint]) -> None:
    """Mark the point farthest from the straight line between the two ends (both axes scaled to [0, 1]), but only
    where the curve bends beyond the noise: the line's GELO at that point's biometric score must lie outside the
    point's GELO interval (a point without an interval gets no knee)."""
    if len(points) < 3:
        return
    xy = np.array([[p.biometric, p.gelo] for p in points])
    span = np.ptp(xy, axis=0)
    xy = (xy - xy.min(axis=0)) / np.where(span > 0, span, 1)
    a, b = xy[0], xy[-1]
    direction = (b - a) / (np.linalg.norm(b - a) or 1)
    distance = np.abs((xy - a) @ np.array([-direction[1], direction[0]]))
    best = points[int(np.argmax(distance))]
    first, last = points[0], points[-1]
    if last.biometric == first.biometric:
        return
    chord = first.gelo + (best.biometric - first.biometric) * (last.gelo - first.gelo) / (
        last.biometric - first.biometric
    )
    bounded = bool(np.isfinite([best.gelo_low, best.gelo_high]).all())
    best.knee = bounded and not best.gelo_low <= chord <= best.gelo_high  # a plain bool: sweep.json holds it


def check_scales(scales: list[float], *, extrapolate: bool = False) -> None:
    """Every scale finite, and in [0, 1] unless extrapolation is asked for explicitly."""
    for s in scales:
        if not math.isfinite(s):
            raise ConfigError(f"--scales: {s} is not a finite number; give scales such as 0,0.5,1")
        if not extrapolate and not 0 <= s <= 1:
            raise ConfigError(
                f"--scales: {s:g} is outside [0, 1] (0 = the base, 1 = the specialist); "
                "pass --extrapolate to evaluate beyond them"
            )


def run_sweep(
    model: str | Path,
    experiment: str | Path,
    *,
    scales: list[float],
    out: str | Path,
    task: str | None = None,
    base: str | Path | None = None,
    extrapolate: bool = False,
    log=print,
) -> list[SweepPoint]:
    """``extrapolate`` allows scales outside [0, 1] (WiSE-FT-style extrapolation past the base or the
    specialist); without it such a scale is a mistyped value and refused."""
    check_scales(scales, extrapolate=extrapolate)
    from overspec.analysis.gelo import Record, analyse
    from overspec.models import FAMILIES
    from overspec.results import ResultStore
    from overspec.runner import run_experiment

    out = Path(out)
    config = load_config(experiment)
    if config.general is None:
        raise ConfigError(
            f"{experiment}: the sweep's suite has no `general:` datasets, so no point has a GELO; add some"
        )
    spec = resolve_spec(str(model))
    scales = sorted(set([0.0, 1.0, *scales]))
    (out / "points").mkdir(parents=True, exist_ok=True)
    paths = []
    for s in scales:
        path = out / "points" / f"scale_{s:g}.yaml"
        data = point_spec(spec, s, model=_reference(model), base=_reference(base) if base is not None else None)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        paths.append(path)
    family_task = FAMILIES.get(spec.family).task
    task = task or (family_task if family_task != "general" else "fr")
    names = [f"s={s:g}" for s in scales]
    config.models = [
        ModelEntry(name=n, spec=str(p), base=None if n == names[0] else names[0], task=task)
        for n, p in zip(names, paths, strict=True)
    ]
    run_experiment(config, out=out / "run", log=log)

    store = ResultStore(out / "run" / "results.sqlite", create=False)
    rows = [r for r in store.rows(current=True) if r.metric == "headline"]
    store.close()
    records = [
        Record(r.model, "", r.dataset, r.protocol, r.value, r.metric, r.higher_is_better, r.task, r.base, r.model_task)
        for r in rows
    ]
    gelos = {names[0]: [1.0]}  # the base against itself
    intervals = {names[0]: [(1.0, 1.0)]}
    for result in analyse(records):
        gelos.setdefault(result.model, []).append(result.gelo)
        intervals.setdefault(result.model, []).append(result.ci)
    points = []
    for name, s, path in zip(names, scales, paths, strict=True):
        if name not in gelos:
            raise ConfigError(f"{experiment}: point {name} has no general-suite result to compute its GELO from")
        own = [r for r in rows if r.model == name and r.task == task]
        bio = [r.value if r.higher_is_better else 1 - r.value for r in own]
        low, high = min(c[0] for c in intervals[name]), max(c[1] for c in intervals[name])
        biometric = float(np.mean(bio)) if bio else float("nan")
        points.append(SweepPoint(s, str(path), float(np.mean(gelos[name])), biometric, gelo_low=low, gelo_high=high))
    pareto_front(points)
    knee(points)
    (out / "sweep.json").write_text(json.dumps([asdict(p) for p in points], indent=1))
    _plot(points, out, task)
    return points


def _plot(points: list[SweepPoint], out: Path, task: str) -> None:
    from overspec.report.style import styled

    styled(_draw)(points, out, task)


def _draw(points: list[SweepPoint], out: Path, task: str) -> None:
    from overspec.report.style import PALETTE, pyplot, save

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.8))
    x = [p.biometric for p in points]
    axis.fill_between(
        x,
        [p.gelo_low for p in points],
        [p.gelo_high for p in points],
        color=PALETTE[0],
        alpha=0.2,
        linewidth=0,
        label="GELO 95% interval",
    )
    axis.plot(x, [p.gelo for p in points], "-o", color=PALETTE[0])
    for p in points:
        label = f"s={p.scale:g}" + (" (knee)" if p.knee else "")
        axis.annotate(label, (p.biometric, p.gelo), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if p.pareto:
            axis.scatter([p.biometric], [p.gelo], s=90, facecolors="none", edgecolors=PALETTE[1])
    axis.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    low = min([1.0, *(p.gelo_low for p in points if np.isfinite(p.gelo_low))])
    high = max([1.0, *(p.gelo_high for p in points if np.isfinite(p.gelo_high))])
    pad = max(0.01, 0.1 * (high - low))  # never zoom below +-1 %: a 0.998-1.010 axis magnifies noise
    axis.set_ylim(low - pad, high + pad)
    axis.set_xlabel(f"biometric score ({task}, higher is better)")
    axis.set_ylabel("GELO against s = 0 (the base)")
    axis.set_title("Base-to-specialist trade-off")
    axis.legend(loc="best")
    knees = [p for p in points if p.knee]
    caption = (
        f"Weight-space interpolation from the base (s = 0) to the {task} specialist (s = 1): mean biometric headline "
        f"on the {task} benchmarks (x, point estimates) against GELO (y); band: the GELO's 95% bootstrap interval "
        "(the envelope over protocols); circled: Pareto front; "
        + (
            f"knee at s = {knees[0].scale:g}: its GELO interval excludes the straight line between the ends."
            if knees
            else "no knee: no point bends away from the straight line between the ends beyond its interval."
        )
    )
    save(figure, out, "sweep", caption)

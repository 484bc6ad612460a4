"""Figures a biometrics paper uses, drawn from a run's stored score sets (``scores/CELL.csv`` + ``CELL.json``):
ROC (log FAR axis) and DET (normal-deviate axes) per benchmark, pooled and per attack type, every model of the run
overlaid with its base, the convention's operating points marked; and the score distributions per class.

The scores are read back with ``read_score_file`` and put in the convention's units (``prepare``: e.g. one score
per video for ``foundpad``), so each curve is the one the stored metrics were computed on.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from overspec.metrics.conventions import ScoreSet, convention_for
from overspec.metrics.conventions.scoring import prepare
from overspec.metrics.iso30107 import OPERATING_POINTS
from overspec.report.curves import Curve, det, operating_points, probit, roc
from overspec.report.style import PALETTE, Figure, caption_of, pyplot, save, styled

SCORE_KINDS = ("verification", "mad", "pad")  # the score sets `overspec score` reads

FR_TARGETS = (1e-4, 1e-3)  # the FAR operating points face recognition papers report (IJB-B/C, the study)
MAX_TYPE_PANELS = 8  # above this many attack types only the pooled panel is drawn (the caption says so)
AXES = {  # x: negatives accepted, y (DET): positives rejected, y (ROC): positives accepted
    "verification": ("FAR", "FRR", "TAR", "genuine", "impostor"),
    "mad": ("APCER", "BPCER", "1 - BPCER", "bona fide", "morph"),
    "pad": ("APCER", "BPCER", "1 - BPCER", "bona fide", "attack"),
}
DET_TICKS = (1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Entry:
    """One model's score set on one benchmark, in its convention's units."""

    model: str
    label: str  # the model and its role: "clip (base)", "fr (fine-tuned from clip)"
    data: ScoreSet
    convention: str


def stored_sets(out: Path) -> dict[str, list[tuple[Path, dict]]]:
    """Benchmark -> the (score file, its metadata) of each model, from ``out/scores``."""
    found: dict[str, list[tuple[Path, dict]]] = defaultdict(list)
    for meta_path in sorted((out / "scores").glob("*.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") not in SCORE_KINDS:  # a side-effect benchmark's comparisons (report/side_effects.py)
            continue
        found[meta["dataset"]].append((meta_path.with_suffix(".csv"), meta))
    return dict(found)


def read_entries(stored: list[tuple[Path, dict]], bases: dict[str, str]) -> list[Entry]:
    """One benchmark's score sets in their conventions' units, bases first; ``bases``: model -> its base."""
    from overspec.score_files import read_score_file

    entries = []
    for path, meta in stored:
        command = meta.get("command") or []
        given = command[command.index("--higher-means") + 1] if "--higher-means" in command else "genuine"
        data = read_score_file(path, meta["kind"])
        if given not in ("genuine", "bonafide"):  # the run's own files never say so: higher is genuine / bona fide
            data = replace(data, scores=-data.scores, sign=-1.0)
        model = meta["model"]
        role = f"fine-tuned from {bases[model]}" if model in bases else "base" if model in bases.values() else ""
        label = f"{model} ({role})" if role else model
        entries.append(Entry(model, label, prepare(data, meta["convention"]), meta["convention"]))
    return sorted(entries, key=lambda e: (e.model not in bases.values(), e.model in bases, e.model))


def read_score_sets(out: Path, bases: dict[str, str]) -> dict[str, list[Entry]]:
    """Benchmark -> its models' score sets (bases first), from ``out/scores``."""
    return {dataset: read_entries(stored, bases) for dataset, stored in stored_sets(out).items()}


def targets(kind: str, convention: str) -> tuple[float, ...]:
    """The operating points marked: FAR 1e-4 and 1e-3 for face recognition; the convention's APCER points
    (BPCER at APCER = 1, 5, 10, 20 % under ``iso``) for MAD/PAD."""
    points = convention_for(convention, kind).points
    if kind == "verification":
        return FR_TARGETS
    return tuple(points.get("bpcer_at_apcer", OPERATING_POINTS))


def panels(data: ScoreSet) -> list[tuple[str, ScoreSet]]:
    """("all", the set) then, for a MAD/PAD set naming several attack types, each type against every bona fide."""
    found = [("all attacks" if data.kind != "verification" else "all pairs", data)]
    if data.attack_codes is None:
        return found
    codes = np.unique(data.attack_codes[~data.positive])
    if 1 < len(codes) <= MAX_TYPE_PANELS:
        for code in codes:
            keep = np.flatnonzero(data.positive | (data.attack_codes == code))
            found.append((data.attack_names[code], replace(data.subset(keep), attack_codes=None, attack_names=())))
    return found


def _file_name(dataset: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", dataset)


def _counts(entries: list[Entry]) -> str:
    kind = entries[0].data.kind
    _, _, _, positive, negative = AXES[kind]
    sizes = {(int(e.data.positive.sum()), int((~e.data.positive).sum())) for e in entries}
    if len(sizes) == 1:
        ((p, n),) = sizes
        unit = "pairs" if kind == "verification" else "presentations"
        return f"{p} {positive} and {n} {negative} {unit}"
    return "sizes differ between models (per-video units)"


def _grid(plt, n: int, width: float = 3.4, height: float = 3.1):
    columns = 2 if n == 4 else min(n, 3)
    rows = -(-n // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for axis in axes.ravel()[n:]:
        axis.set_visible(False)
    return figure, axes.ravel()


def _floor(entries: list[Entry]) -> float:
    """The smallest rate drawn: half of 1/N of the larger class, so that every measured point is on the axes."""
    n = max(max(int(e.data.positive.sum()), int((~e.data.positive).sum())) for e in entries)
    return max(1e-7, 0.5 / n)


@styled
def det_figure(dataset: str, entries: list[Entry], folder: Path) -> Figure:
    plt = pyplot()
    kind = entries[0].data.kind
    x_name, y_name, *_ = AXES[kind]
    marks = targets(kind, entries[0].convention)
    named = [(e, [det(s.scores, s.positive) for _, s in panels(e.data)], panels(e.data)) for e in entries]
    titles = [title for title, _ in panels(entries[0].data)]
    floor = _floor(entries)
    # one range for every panel: up to twice the largest equal-error rate, at least 50 %
    eers = [np.max(np.minimum(c.far, c.frr)) for _, curves, _ in named for c in curves]
    high = float(np.clip(2 * max(eers), 0.5, 0.99))
    shown = [t for t in DET_TICKS if floor <= t <= high]
    limits = probit([floor, high])
    figure, axes = _grid(plt, len(titles))
    for p, (axis, title) in enumerate(zip(axes, titles, strict=False)):
        for colour, (entry, curves, sets) in zip(_colours(), named, strict=False):
            if p < len(curves):
                x, y = probit(curves[p].far, floor=floor), probit(curves[p].frr, floor=floor)
                keep = thin(x, y)
                axis.plot(x[keep], y[keep], color=colour, label=entry.label)
                _mark(axis, roc(sets[p][1].scores, sets[p][1].positive), marks, colour, probit_axes=True, floor=floor)
        for set_ticks, set_limits in ((axis.set_xticks, axis.set_xlim), (axis.set_yticks, axis.set_ylim)):
            set_ticks(probit(shown), [_percent(t) for t in shown])
            set_limits(*limits)
        axis.plot(limits, limits, color="#999999", linewidth=0.6, linestyle=":")  # where FAR = FRR (the EER)
        axis.set_xlabel(f"{x_name} (%)")
        axis.set_ylabel(f"{y_name} (%)")
        if len(titles) > 1:
            axis.set_title(title)
    _finish(figure, axes[0], f"DET, {dataset}", len(entries))
    caption = (
        f"DET curves on {dataset} ({_counts(entries)}): {x_name} against {y_name} on normal-deviate axes, "
        f"{_models(entries)}; {_panels_text(titles)}. Markers: the lowest {y_name} at {x_name} at or below "
        f"{_targets_text(marks)} (only where the data resolve the rate); dotted: {x_name} = {y_name}. Rates measured "
        f"at every threshold; no interval drawn; rates of 0 are drawn at the axis edge ({_percent(floor)})."
    )
    return save(figure, folder, f"det_{_file_name(dataset)}", caption)


def _finish(figure, axis, title: str, n: int) -> None:
    """The title, and one legend for every panel, below them."""
    handles, labels = axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(n, 3))
    figure.suptitle(title)


@styled
def roc_figure(dataset: str, entries: list[Entry], folder: Path) -> Figure:
    plt = pyplot()
    kind = entries[0].data.kind
    x_name, _, tar_name, *_ = AXES[kind]
    marks = targets(kind, entries[0].convention)
    named = [(e, panels(e.data)) for e in entries]
    titles = [title for title, _ in named[0][1]]
    floor = _floor(entries)
    figure, axes = _grid(plt, len(titles))
    for p, (axis, title) in enumerate(zip(axes, titles, strict=False)):
        for colour, (entry, sets) in zip(_colours(), named, strict=False):
            if p >= len(sets):
                continue
            curve = roc(sets[p][1].scores, sets[p][1].positive)
            x = np.maximum(curve.far, floor)
            keep = thin(np.log10(x), curve.tar)
            axis.plot(x[keep], curve.tar[keep], color=colour, label=entry.label)
            _mark(axis, curve, marks, colour, probit_axes=False, floor=floor)
        axis.set_xscale("log")
        axis.set_xlim(floor, 1)
        axis.set_ylim(0, 1.01)
        axis.set_xlabel(f"{x_name} (log scale)")
        axis.set_ylabel(tar_name)
        if len(titles) > 1:
            axis.set_title(title)
    _finish(figure, axes[0], f"ROC, {dataset}", len(entries))
    caption = (
        f"ROC curves on {dataset} ({_counts(entries)}): {tar_name} against {x_name} (log axis), "
        f"{_models(entries)}; {_panels_text(titles)}. Markers: {_targets_text(marks)} {x_name} operating points "
        f"(where resolved). No interval drawn; {x_name} 0 is drawn at {floor:.2g}."
    )
    return save(figure, folder, f"roc_{_file_name(dataset)}", caption)


@styled
def distribution_figure(dataset: str, entries: list[Entry], folder: Path) -> Figure:
    """One panel per model: a histogram of each class's scores (each attack type apart for MAD/PAD)."""
    plt = pyplot()
    kind = entries[0].data.kind
    *_, positive_name, negative_name = AXES[kind]
    figure, axes = _grid(plt, len(entries), height=2.6)
    for axis, entry in zip(axes, entries, strict=False):
        data = entry.data
        bins = np.histogram_bin_edges(data.scores, bins=int(np.clip(np.sqrt(len(data)), 10, 40)))
        groups = [(positive_name, data.scores[data.positive])]
        types = data.attack_types
        if types is not None and len(set(types[~data.positive])) > 1:
            groups += [(name, data.scores[types == name]) for name in sorted(set(types[~data.positive]))]
        else:
            groups.append((negative_name, data.scores[~data.positive]))
        for colour, (name, values) in zip(_colours(), groups, strict=False):
            axis.hist(values, bins=bins, density=True, histtype="step", color=colour, label=name)
        axis.set_title(entry.label)
        axis.set_xlabel("score (higher: more genuine)" if kind == "verification" else "score (higher: more bona fide)")
        axis.set_ylabel("density")
    _finish(figure, axes[0], f"Score distributions, {dataset}", len(groups))
    caption = (
        f"Score distributions on {dataset}, one panel per model ({', '.join(e.label for e in entries)}): "
        f"histograms of each class's scores (density; {_counts(entries)}), in the "
        f"{entries[0].convention} convention's units."
    )
    return save(figure, folder, f"scores_{_file_name(dataset)}", caption)


DRAWERS = {"det": det_figure, "roc": roc_figure, "scores": distribution_figure}  # file prefix -> drawing
VERSION = 1  # of the drawings: a change to them must redraw the figures a rebuilt report reuses


def biometric_figures(out: Path, bases: dict[str, str], folder: Path) -> list[Figure]:
    """DET, ROC and score distributions for every benchmark with stored score sets in ``out``. A benchmark whose
    score files, models and roles are those its figures were drawn from keeps them (a rerun or ``overspec report``
    does not redraw them)."""
    from overspec import __version__
    from overspec._hashing import digest

    figures = []
    for dataset, stored in sorted(stored_sets(out).items()):
        names = [f"{prefix}_{_file_name(dataset)}" for prefix in DRAWERS]
        key = digest(
            [
                VERSION,
                __version__,
                bases,
                [(meta, path.stat().st_size, path.stat().st_mtime_ns) for path, meta in stored],
            ]
        )
        stamp = folder / f".{_file_name(dataset)}.drawn"
        if stamp.exists() and stamp.read_text() == key and all((folder / f"{n}.png").exists() for n in names):
            figures += [Figure(folder / f"{n}.png", caption_of(folder / f"{n}.png")) for n in names]
            continue
        entries = read_entries(stored, bases)
        figures += [draw(dataset, entries, folder) for draw in DRAWERS.values()]
        stamp.write_text(key)
    return figures


def thin(x: np.ndarray, y: np.ndarray, *, cells: int = 2000) -> np.ndarray:
    """Indices of the points to draw: the first point in each cell of a ``cells`` x ``cells`` grid over the drawn
    range that the curve enters, and the last point. A curve of millions of pairs (IJB-C) draws as it looks, in a
    vector file of a few hundred kB; a curve of at most ``cells`` points is drawn whole."""
    if len(x) <= cells:
        return np.arange(len(x))
    grid = [np.floor((v - v.min()) / ((np.ptp(v) or 1) / cells)) for v in (x, y)]
    moves = np.r_[True, (np.diff(grid[0]) != 0) | (np.diff(grid[1]) != 0)]
    moves[-1] = True
    return np.flatnonzero(moves)


def _mark(axis, curve: Curve, marks, colour, *, probit_axes: bool, floor: float) -> None:
    points = operating_points(curve, marks)
    if not points:
        return
    far = np.array([max(p.far, floor) for p in points])
    if probit_axes:
        axis.scatter(probit(far), probit([p.frr for p in points], floor=floor), s=18, color=colour, zorder=3)
    else:
        axis.scatter(far, [1 - p.frr for p in points], s=18, color=colour, zorder=3)


def _colours():
    return iter(PALETTE)


def _models(entries: list[Entry]) -> str:
    return "models " + ", ".join(e.label for e in entries)


def _panels_text(titles: list[str]) -> str:
    return "one panel" if len(titles) == 1 else f"panels: {', '.join(titles)} (each type against every bona fide)"


def _targets_text(marks) -> str:
    return ", ".join(_percent(t) for t in marks)


def _percent(rate: float) -> str:
    return f"{100 * rate:.2g}%"

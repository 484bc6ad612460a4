"""The frontier in the report (from ``frontier.json``, written by ``overspec frontier``): per task a plot of every
method's curve with its interval bands, the Pareto frontier highlighted and the other models (specialists, merges)
as points; the matched-performance table; and what every model keeps on each task."""

from __future__ import annotations

import json
from pathlib import Path

from overspec.report.style import styled
from overspec.report.tables import Table

TASK_NAMES = {"fr": "FR", "mad": "MAD", "pad": "PAD"}


def _f(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _with_ci(value, ci, digits: int = 3) -> str:
    if value is None:
        return "not reached"
    if not ci or ci[0] is None:
        return _f(value, digits)
    return f"{_f(value, digits)} [{_f(ci[0], digits)}, {_f(ci[1], digits)}]"


def _difference(difference: dict | None) -> str:
    """A method's matched GELO less the best method's, within the same draws (paired)."""
    if not difference or difference["value"] is None:
        return ""
    if difference["value"] == 0 and difference["ci"] == [0.0, 0.0]:
        return "best"
    return f"{_with_ci(difference['value'], difference['ci'])} vs {difference['to']}"


def _share(share: float | None) -> str:
    return "" if share is None else f"{100 * share:.0f} %"


def matched_rows(summary: dict) -> dict[str, list[dict]]:
    """Per task, one row per method: GELO at the matched biometric score and the hypervolume of its own curve."""
    found = {}
    for task, data in summary["tasks"].items():
        if "error" in data:
            continue
        matched = data["matched"]
        rows = []
        for method, value in matched["methods"].items():
            volume = data["hypervolume"][method]
            difference = value.get("difference")
            rows.append(
                {
                    "method": method,
                    f"GELO at {TASK_NAMES[task]} {_f(matched['biometric'])}": _with_ci(value["gelo"], value["ci"]),
                    "vs best method": _difference(difference),
                    "reached in draws": _share(value.get("reached_share")),
                    "hypervolume": _with_ci(volume["value"], volume["ci"], 4),
                }
            )
        volume = data["hypervolume"]["all"]
        every = {"method": "all points (frontier)", "hypervolume": _with_ci(volume["value"], volume["ci"], 4)}
        rows.append({k: "" for k in rows[0]} | every)
        found[task] = rows
    return found


def frontier_sections(out: Path) -> tuple[list[tuple[str, Table]], list]:
    """The report's frontier tables and figures (figures go to ``out/figures``); nothing without frontier.json."""
    path = out / "frontier.json"
    if not path.exists():
        return [], []
    summary = json.loads(path.read_text())
    sections, figures = [], []
    for task, data in summary["tasks"].items():
        if "error" in data:  # said, not skipped
            table = Table(f"Trade-off frontier, {TASK_NAMES[task]}", ["no frontier"], [[data["error"]]], [])
            sections.append((f"frontier_{task}", table))
    for task, rows in matched_rows(summary).items():
        data = summary["tasks"][task]
        columns = list(rows[0])
        notes = [
            f"Biometric score: the {TASK_NAMES[task]} benchmarks' headline, higher is better (error rates as 1 − e); "
            f"the base scores {_f(data['base_biometric'])}. Matched at {_f(data['matched']['biometric'])} (an equal "
            f"gain of {_f(data['matched']['gain'])} over the base in every draw), interpolated along each curve from "
            "the base; 'vs best method': the difference to the method keeping most GELO there, within the same "
            "draws; 'reached in draws': how often the curve gets to the matched gain at all; hypervolume: the area "
            f"the points dominate right of the base and above GELO {summary['reference_gelo']:g}. Intervals: "
            f"{summary['interval']}.",
            *(f"Left off this plane: {m} ({why})." for m, why in data.get("excluded", {}).items()),
        ]
        table = Table(f"Trade-off frontier, {TASK_NAMES[task]}", columns, [list(r.values()) for r in rows], notes)
        sections.append((f"frontier_{task}", table))
        figures.append(plot(summary, task, out / "figures"))
    sections.append(("frontier_models", models_table(summary)))
    return sections, figures


def models_table(summary: dict) -> Table:
    """What every model keeps: its biometric score on each task and its GELO."""
    tasks = [t for t in ("fr", "mad", "pad") if any(t in m for m in summary["models"].values())]
    rows = []
    for model, data in summary["models"].items():  # the experiment's own models (points are in the frontier tables)
        cells = [_with_ci(data[t]["biometric"], data[t]["ci"]) if t in data else "" for t in tasks]
        rows.append([model, *cells, _with_ci(data["gelo"], data["gelo_ci"])])
    columns = ["model", *(TASK_NAMES[t] for t in tasks), "GELO"]
    note = f"GELO against {summary['base']}; biometric scores oriented so that higher is better, with 95% intervals."
    return Table("Every model on every task", columns, rows, [note])


@styled
def plot(summary: dict, task: str, folder: Path):
    import numpy as np

    from overspec.report.plots import pyplot, save

    plt = pyplot()
    data = summary["tasks"][task]
    points = {p["model"]: p for p in data["points"]}
    figure, axis = plt.subplots(figsize=(6.4, 4.6))
    colours = plt.get_cmap("tab10")

    def defined(p) -> bool:  # a point whose score or GELO is undefined (an unresolved operating point) is not drawn
        return p["biometric"] is not None and p["gelo"] is not None

    for k, (method, curve) in enumerate(data["curves"].items()):
        kept = [(points[m], s) for m, s in zip(curve["models"], curve["strengths"], strict=True) if defined(points[m])]
        members = [p for p, _ in kept]
        if not members:
            continue
        x = np.array([p["biometric"] for p in members], float)
        y = np.array([p["gelo"] for p in members], float)
        low = np.array([(p["gelo_ci"] or [p["gelo"]] * 2)[0] for p in members], float)
        high = np.array([(p["gelo_ci"] or [p["gelo"]] * 2)[1] for p in members], float)
        xerr = np.array(
            [
                [p["biometric"] - (p["biometric_ci"] or [p["biometric"]] * 2)[0] for p in members],
                [(p["biometric_ci"] or [p["biometric"]] * 2)[1] - p["biometric"] for p in members],
            ]
        )
        colour = colours(k % 10)
        axis.plot(x, y, "-o", color=colour, label=method, markersize=4)
        order = np.argsort(x)
        axis.fill_between(x[order], low[order], high[order], color=colour, alpha=0.15, linewidth=0)
        axis.errorbar(x, y, xerr=np.abs(xerr), fmt="none", ecolor=colour, alpha=0.4, linewidth=0.8)
        for p, s in kept:
            if s is not None:  # the base carries no strength
                axis.annotate(
                    f"{s:g}", (p["biometric"], p["gelo"]), textcoords="offset points", xytext=(3, 3), fontsize=7
                )
    others = [p for p in data["points"] if p["specialist"] and defined(p)]
    for p in others:
        axis.scatter([p["biometric"]], [p["gelo"]], marker="*", s=120, color="black", zorder=5)
        axis.annotate(p["model"], (p["biometric"], p["gelo"]), textcoords="offset points", xytext=(5, -10), fontsize=8)
    base = points[summary["base"]]
    if defined(base):
        axis.scatter(
            [base["biometric"]], [1.0], marker="s", s=60, color="grey", zorder=5, label=f"base ({summary['base']})"
        )
    front = sorted((p for p in data["points"] if p["pareto"] and defined(p)), key=lambda p: p["biometric"])
    axis.plot(
        [p["biometric"] for p in front],
        [p["gelo"] for p in front],
        color="red",
        linewidth=2.2,
        alpha=0.45,
        zorder=1,
        label="Pareto frontier",
    )
    matched = data["matched"]["biometric"]
    if matched is not None:
        axis.axvline(matched, color="grey", linestyle=":", linewidth=1)
    axis.axhline(1.0, color="black", linestyle="--", linewidth=0.7)
    axis.set_xlabel(f"{TASK_NAMES[task]} score (higher is better)")
    axis.set_ylabel(f"GELO against {summary['base']}")
    axis.set_title(f"Trade-off frontier, {TASK_NAMES[task]} (bands: 95% intervals; dotted: matched score)")
    axis.legend(fontsize=8, loc="best")
    caption = (
        f"Trade-off frontier for {TASK_NAMES[task]}: each forgetting-control method's curve of biometric score against "
        f"GELO (relative to {summary['base']}) over its strength grid, bands and whiskers 95 % intervals; red: the "
        "Pareto frontier; stars: the specialists; dotted: the matched biometric score."
    )
    return save(figure, folder, f"frontier_{task}", caption)

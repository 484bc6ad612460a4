"""The browse page's frontier view: for each run with ``frontier.json`` (``overspec frontier``) and each of its tasks,
every method's curve with its intervals, the Pareto frontier, the experiment's other models and the base, the
matched biometric score; below, each method's GELO at that score and the hypervolumes. The numbers are the file's
(``browse_data.load_frontier``), drawn as they are. A run/task is chosen from a list; a few lines of JavaScript
(``FRONTIER_JS``) show its pane and hide the others."""

from __future__ import annotations

import html

from overspec.report.browse_data import Estimate, Frontier, FrontierPoint, FrontierTask, RunData

TASK_NAMES = {"fr": "FR", "mad": "MAD", "pad": "PAD"}
# tab10, as the report's matplotlib frontier plot; the Pareto frontier is drawn apart (a wide translucent red band)
METHOD_COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#d62728",
]
PARETO_COLOUR = "rgba(214, 39, 40, 0.35)"


def _name(task: str) -> str:
    return TASK_NAMES.get(task, task)


def _text(estimate: Estimate, digits: int = 3) -> str:
    """``0.912 [0.870, 0.940]``; ``not reached`` without a value; no brackets without an interval."""
    if estimate.value is None:
        return "not reached"
    shown = f"{estimate.value:.{digits}f}"
    if estimate.ci is None:
        return f"{shown} (no interval)"
    return f"{shown} [{estimate.ci[0]:.{digits}f}, {estimate.ci[1]:.{digits}f}]"


def _bars(estimates: list[Estimate]) -> list[tuple[float, float] | None]:
    """(minus, plus) of each interval around its value, for Plotly's error bars."""
    return [
        None if e.value is None or e.ci is None else (max(e.value - e.ci[0], 0.0), max(e.ci[1] - e.value, 0.0))
        for e in estimates
    ]


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _hover(points: list[FrontierPoint], labels: list[str]) -> dict:
    return {
        "customdata": [
            [p.model, label, _text(p.biometric), _text(p.gelo)] for p, label in zip(points, labels, strict=True)
        ],
        "hovertemplate": "<b>%{customdata[0]}</b> (%{customdata[1]})<br>biometric %{customdata[2]}<br>"
        "GELO %{customdata[3]}<extra></extra>",
    }


def frontier_figure(frontier: Frontier, data: FrontierTask):
    """One task's plane: biometric score (x) against GELO (y). Traces, in order: the Pareto frontier; per method
    its GELO band then its curve (the base first, then its points in strength order); the other models as stars;
    the base. Each trace's ``meta`` says its role (``pareto``, ``band``, ``curve``, ``others``, ``base``)."""
    import plotly.graph_objects as go

    from overspec.report.browse import _errors

    points = {p.model: p for p in data.points}
    figure = go.Figure()
    front = sorted((p for p in data.points if p.pareto), key=lambda p: (p.biometric.value, p.gelo.value))
    figure.add_trace(
        go.Scatter(
            x=[p.biometric.value for p in front],
            y=[p.gelo.value for p in front],
            mode="lines+markers",
            line={"color": PARETO_COLOUR, "width": 9},
            marker={"color": PARETO_COLOUR, "size": 16},
            name="Pareto frontier",
            meta={"role": "pareto"},
            **_hover(front, ["on the Pareto frontier"] * len(front)),
        )
    )
    for k, curve in enumerate(data.curves):
        colour = METHOD_COLOURS[k % len(METHOD_COLOURS)]
        members = [points[m] for m in curve.models]
        x = [p.biometric.value for p in members]
        low = [p.gelo.value if p.gelo.ci is None else p.gelo.ci[0] for p in members]
        high = [p.gelo.value if p.gelo.ci is None else p.gelo.ci[1] for p in members]
        figure.add_trace(  # the band: along the curve on the upper ends, back on the lower ones
            go.Scatter(
                x=x + x[::-1],
                y=high + low[::-1],
                mode="lines",
                fill="toself",
                fillcolor=_rgba(colour, 0.15),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=curve.method,
                name=f"{curve.method} (GELO interval)",
                meta={"role": "band", "method": curve.method},
            )
        )
        strengths = ["base" if s is None else f"{curve.method} {s:g}" for s in curve.strengths]
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[p.gelo.value for p in members],
                mode="lines+markers+text",
                text=["" if s is None else f"{s:g}" for s in curve.strengths],
                textposition="top right",
                textfont={"size": 10, "color": colour},
                line={"color": colour, "width": 2},
                marker={"color": colour, "size": 8},
                error_x=_errors(_bars([p.biometric for p in members])) | {"color": colour},
                error_y=_errors(_bars([p.gelo for p in members])) | {"color": colour},
                name=curve.method,
                legendgroup=curve.method,
                meta={"role": "curve", "method": curve.method},
                **_hover(members, strengths),
            )
        )
    others = [p for p in data.points if p.specialist]
    if others:
        figure.add_trace(
            go.Scatter(
                x=[p.biometric.value for p in others],
                y=[p.gelo.value for p in others],
                mode="markers+text",
                text=[p.model for p in others],
                textposition="bottom right",
                marker={"symbol": "star", "size": 17, "color": "black"},
                error_x=_errors(_bars([p.biometric for p in others])),
                error_y=_errors(_bars([p.gelo for p in others])),
                name="other models (specialists, merges)",
                meta={"role": "others"},
                **_hover(others, ["a model of the experiment"] * len(others)),
            )
        )
    base = points.get(frontier.base)
    if base is not None:
        figure.add_trace(
            go.Scatter(
                x=[base.biometric.value],
                y=[base.gelo.value],
                mode="markers",
                marker={"symbol": "square", "size": 12, "color": "#555"},
                error_x=_errors(_bars([base.biometric])),
                name=f"base ({frontier.base})",
                meta={"role": "base"},
                **_hover([base], ["the base: every curve's start"]),
            )
        )
    figure.add_hline(y=1.0, line_dash="dash", line_color="grey", line_width=1)
    if data.matched_biometric is not None:
        figure.add_vline(
            x=data.matched_biometric,
            line_dash="dot",
            line_color="#333",
            line_width=1.5,
            annotation_text=f"matched {data.matched_biometric:.3f}",
            annotation_position="bottom right",
        )
    figure.update_layout(
        template="plotly_white",
        height=560,
        margin={"t": 30},
        xaxis_title=f"{_name(data.task)} score (higher is better; an error rate e as 1 − e)",
        yaxis_title=f"GELO against {frontier.base}",
        legend_title_text="method",
    )
    return figure


def _cell(estimate: Estimate, digits: int) -> str:
    """A table cell shown rounded, with the file's exact value and interval in data attributes (for reading back)."""
    exact = "" if estimate.value is None else f" data-v='{estimate.value!r}'"
    if estimate.ci is not None:
        exact += f" data-lo='{estimate.ci[0]!r}' data-hi='{estimate.ci[1]!r}'"
    return f"<td class='num'{exact}>{html.escape(_text(estimate, digits))}</td>"


def _share(share: float | None) -> str:
    if share is None:
        return "<td class='num'></td>"
    return f"<td class='num' data-v='{share!r}'>{100 * share:.0f} %</td>"


def matched_table(frontier: Frontier, data: FrontierTask, table_id: str) -> str:
    """Per method: its GELO at the matched biometric score and its curve's hypervolume; then all points'."""
    target = "—" if data.matched_biometric is None else f"{data.matched_biometric:.3f}"
    gain = "" if data.matched_gain is None else f" (gain {data.matched_gain:+.3f})"
    missing = Estimate(None, None)
    rows = []
    for c in data.curves:
        best, difference = data.difference.get(c.method, ("", missing))
        reached = data.reached.get(c.method)
        rows.append(
            f"<tr data-method='{html.escape(c.method)}'><td>{html.escape(c.method)}</td>"
            f"{_cell(data.matched.get(c.method, missing), 3)}{_cell(difference, 3)}"
            f"<td>{html.escape(best)}</td>{_share(reached)}"
            f"{_cell(data.hypervolume.get(c.method, missing), 4)}</tr>"
        )
    if "all" in data.hypervolume:
        rows.append(
            "<tr data-method=''><td>all points (the frontier)</td><td></td><td></td><td></td><td></td>"
            f"{_cell(data.hypervolume['all'], 4)}</tr>"
        )
    left_off = "".join(f"<li>{html.escape(m)}: {html.escape(why)}</li>" for m, why in sorted(data.excluded.items()))
    return (
        f"<table class='frontier' id='{table_id}'><thead><tr><th>method</th>"
        f"<th>GELO at {_name(data.task)} {html.escape(target)}{html.escape(gain)} [95 % interval]</th>"
        "<th>less the best method's, same draws [95 % interval]</th><th>best method</th>"
        "<th>draws reaching the gain</th>"
        f"<th>hypervolume [95 % interval]</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        + (f"<p class='note'>Left off this plane:</p><ul class='note'>{left_off}</ul>" if left_off else "")
    )


def _pane(k: int, run: RunData, data: FrontierTask) -> str:
    frontier = run.frontier
    head = f"<div class='frontier-pane' id='frontier-pane-{k}' data-run='{html.escape(run.label)}' "
    head += f"data-task='{html.escape(data.task)}'>"
    if data.error is not None:
        why = html.escape(data.error)
        return f"{head}<p class='note'>No frontier for {_name(data.task)} in this run: {why}.</p></div>"
    body = frontier_figure(frontier, data).to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"frontier-{k}",
        config={"displaylogo": False, "responsive": True},
    )
    caption = (
        f"{_name(data.task)} score (the task's benchmark headlines, higher is better) against GELO relative to "
        f"{frontier.base}. Each method's curve runs from the base through its points in strength order (labels: "
        "the strength), with GELO's 95 % interval as its band and both intervals as whiskers; the wide red line is "
        "the Pareto frontier; stars: the experiment's other models (specialists, merges); grey square: the base; "
        "dotted: the matched score the table compares methods at; dashed: GELO 1. Hypervolume: the area the points "
        f"dominate right of the base's score and above GELO {frontier.reference_gelo:g}. Intervals: "
        f"{frontier.interval or 'as frontier.json gives them'}. From {frontier.path.name}, as written."
    )
    return (
        f"{head}<figure>{body}<figcaption>{html.escape(caption)}</figcaption></figure>"
        f"{matched_table(frontier, data, f'frontier-{k}-table')}</div>"
    )


def frontier_section(runs: list[RunData]) -> str | None:
    """The view, or None where no run has frontier.json (the page then has no frontier view at all)."""
    choices = [(run, data) for run in runs if run.frontier for data in run.frontier.tasks.values()]
    if not choices:
        return None
    options = "".join(
        f"<option value='frontier-pane-{k}'>{html.escape(run.label)} · {_name(data.task)}"
        f"{' (no frontier)' if data.error else ''}</option>"
        for k, (run, data) in enumerate(choices)
    )
    without = [run.label for run in runs if run.frontier is None]
    note = (
        f"<p class='note'>No frontier.json (written by <code>overspec frontier CONFIG</code>) in: "
        f"{html.escape(', '.join(without))}.</p>"
        if without
        else ""
    )
    panes = "".join(_pane(k, run, data) for k, (run, data) in enumerate(choices))
    return (
        "<section id='frontier-view'><h2>Trade-off frontier</h2><p><label>run · task "
        f"<select id='frontier-choice'>{options}</select></label></p>{note}{panes}"
        f"<script>{FRONTIER_JS}</script></section>"
    )


# Shows the chosen run/task's pane; Plotly sizes a figure drawn while hidden to nothing, hence the resize.
FRONTIER_JS = """
(function () {
  var choice = document.getElementById('frontier-choice');
  function show() {
    document.querySelectorAll('.frontier-pane').forEach(function (pane) {
      var on = pane.id === choice.value;
      pane.style.display = on ? '' : 'none';
      var plot = pane.querySelector('.js-plotly-plot');
      if (on && plot) { Plotly.Plots.resize(plot); }
    });
  }
  choice.addEventListener('change', show);
  show();
})();
"""

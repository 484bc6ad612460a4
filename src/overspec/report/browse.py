"""``overspec browse``: one self-contained HTML page across runs and models, readable offline.

Figures are Plotly's (plotly.js inlined once, no CDN, nothing fetched): the trade-off space (GELO against biometric
gain, with intervals, the study's published points as a layer), GELO per model with its interval, per-dataset
changes against the base, and the frontier of runs holding frontier.json (``browse_frontier.py``). Every stored row
is in one table with its interval, convention and provenance, sortable and filterable by a few lines of plain
JavaScript (``TABLE_JS``), because no maintained table library works offline without a CDN and Plotly's own table
cannot filter. The data comes from ``browse_data.py``.
"""

from __future__ import annotations

import html
from pathlib import Path

from overspec._atomic import atomic_open
from overspec.errors import OverspecError
from overspec.report.browse_data import (
    RunData,
    TradeoffPoint,
    load_runs,
    published_points,
    report_link,
    tradeoff_points,
)
from overspec.report.browse_frontier import frontier_section
from overspec.report.published import DEFAULT, arch_key
from overspec.results.store import ResultRow

# the table's columns: (header, ResultRow field)
COLUMNS = [
    ("run", None),
    ("model", "model"),
    ("arch", "arch"),
    ("base", "base"),
    ("tuned for", "model_task"),
    ("task", "task"),
    ("protocol", "protocol"),
    ("dataset", "dataset"),
    ("metric", "metric"),
    ("value", "value"),
    ("CI low", "ci_low"),
    ("CI high", "ci_high"),
    ("n", "n"),
    ("higher is better", "higher_is_better"),
    ("convention", "convention"),
    ("interval", "ci_method"),
    ("device", "device"),
    ("precision", "precision"),
    ("overspec", "overspec_version"),
    ("created", "created_at"),
]
NUMERIC = {"value", "ci_low", "ci_high", "n"}
TASK_COLOURS = {"fr": "#1f77b4", "mad": "#d62728", "pad": "#2ca02c", "general": "#7f7f7f"}
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "star", "hexagon", "pentagon"]
PROTOCOL_TITLES = {"zeroshot": "zero-shot", "linear_probe": "linear probe"}  # also the panels' order


def _ordered(protocols) -> list[str]:
    """Zero-shot first (the study's first table), then the linear probe, then any other general protocol."""
    order = list(PROTOCOL_TITLES)
    return sorted(set(protocols), key=lambda p: (order.index(p) if p in order else len(order), p))


def build_browse(run_dirs: list[str | Path], out: str | Path = "compare.html", *, reference=DEFAULT) -> Path:
    """Write the page comparing ``run_dirs`` to ``out``; ``reference``: the study whose published points are drawn
    (a bundled study's name, or ``none``)."""
    _plotly()  # before any work: a missing extra is one line
    out = Path(out)
    published = published_points(reference)  # a bad --reference fails before any store is read
    runs = load_runs(run_dirs)
    points = tradeoff_points(runs)
    sections = [
        _runs_section(runs, out),
        _figure_section(
            "tradeoff",
            "Trade-off: generality against specialisation",
            tradeoff_figure(points, published),
            "Each run's specialist: its GELO (y, with the analysis' 95 % interval) against its mean gain over its own "
            "base on the benchmarks of its own task (x, points; interval: the two models' 95 % intervals combined as "
            "independent, which overstates the spread of a paired difference). Colour: the task the model was tuned "
            "for; marker: architecture; open markers: the study's published models (no intervals published). "
            "Dashed lines: no change (GELO 1, gain 0).",
        ),
        _figure_section(
            "gelo",
            "GELO per model",
            gelo_figure(runs),
            "GELO (mean headline over the general suite / the same mean for the model's own base) per model and run, "
            "with its 95 % interval (paired bootstrap over datasets, or over test samples below 5 datasets: hover for "
            "which). Dashed line: no change.",
        ),
    ]
    for protocol in _ordered(p for run in runs for p in run.gelos):
        sections.append(
            _figure_section(
                f"changes-{protocol}",
                f"Per-dataset change, {PROTOCOL_TITLES.get(protocol, protocol)}",
                changes_figure(runs, protocol),
                "Relative change (%) of each dataset's headline metric against the model's own base; hover for the "
                "absolute change in points, its paired bootstrap 95 % interval and the exact McNemar p where "
                "per-sample outcomes were stored.",
            )
        )
    frontier = frontier_section(runs)  # runs with frontier.json (overspec frontier): browse_frontier.py
    if frontier:
        sections.append(frontier)
    sections.append(_table_section(runs))
    names = ", ".join(r.label for r in runs) if len(runs) <= 4 else f"{len(runs)} runs"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out, "w", encoding="utf-8") as f:
        f.write(_page(f"overspec browse: {names}", sections))
    return out


def _plotly():
    try:
        import plotly
    except ModuleNotFoundError:
        raise OverspecError(
            "overspec browse draws with plotly, which is not installed; pip install 'overspec[browse]'"
        ) from None
    return plotly


def tradeoff_figure(points: list[TradeoffPoint], published: list[TradeoffPoint]):
    """GELO (y) against biometric gain (x), one panel per general protocol; one trace per (source kind, task,
    architecture) so the legend reads colour = task, marker = architecture."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    protocols = _ordered(p.protocol for p in points) or _ordered(p.protocol for p in published) or ["zeroshot"]
    figure = make_subplots(
        rows=1,
        cols=len(protocols),
        shared_yaxes=True,
        subplot_titles=[f"GELO, {PROTOCOL_TITLES.get(p, p)}" for p in protocols],
    )
    archs = sorted({arch_key(p.arch) for p in [*points, *published]})
    symbol = {a: SYMBOLS[i % len(SYMBOLS)] for i, a in enumerate(archs)}
    shown = set()
    for column, protocol in enumerate(protocols, start=1):
        groups: dict[tuple, list[TradeoffPoint]] = {}
        for p in [*points, *(q for q in published if q.protocol == protocol)]:
            if p.protocol == protocol:
                groups.setdefault((p.published, p.task, arch_key(p.arch)), []).append(p)
        for (is_published, task, arch), members in sorted(groups.items()):
            name = f"{task} · {members[0].arch}" + (" (published)" if is_published else "")
            figure.add_trace(
                go.Scatter(
                    x=[p.gain for p in members],
                    y=[p.gelo for p in members],
                    mode="markers+text",
                    text=[p.model if p.published else f"{p.model} ({p.source})" for p in members],
                    textposition="top center",
                    textfont={"size": 10},
                    marker={
                        "color": TASK_COLOURS.get(task, "#7f7f7f"),
                        "symbol": symbol[arch] + ("-open" if is_published else ""),
                        "size": 11,
                        "line": {"width": 2 if is_published else 0.5},
                    },
                    error_y=_errors([p.gelo_ci and (p.gelo - p.gelo_ci[0], p.gelo_ci[1] - p.gelo) for p in members]),
                    error_x=_errors([p.gain_errors for p in members]),
                    customdata=[
                        [p.source, p.arch, p.base, ", ".join(p.benchmarks), _interval(p.gelo_ci), _pm(p.gain_errors)]
                        for p in members
                    ],
                    hovertemplate="<b>%{text}</b><br>%{customdata[0]} · %{customdata[1]}<br>GELO %{y:.3f} "
                    "%{customdata[4]}<br>gain over %{customdata[2]}: %{x:+.2f} points %{customdata[5]}<br>"
                    "on %{customdata[3]}<extra></extra>",
                    name=name,
                    legendgroup=name,
                    showlegend=name not in shown,
                ),
                row=1,
                col=column,
            )
            shown.add(name)
        figure.add_hline(y=1.0, line_dash="dash", line_color="grey", line_width=1, row=1, col=column)
        figure.add_vline(x=0.0, line_dash="dash", line_color="grey", line_width=1, row=1, col=column)
        figure.update_xaxes(title_text="biometric gain over the base (points, own task)", row=1, col=column)
    if not points:
        _say(figure, "no specialist of these runs has both a GELO and a benchmark of its own task")
    figure.update_yaxes(title_text="GELO (fine-tuned / base)", row=1, col=1)
    figure.update_layout(template="plotly_white", height=520, margin={"t": 40}, legend_title_text="task · architecture")
    return figure


def _say(figure, text: str) -> None:
    """A figure with nothing to plot says why, in its middle."""
    figure.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14})


def _errors(pairs: list[tuple[float, float] | None]) -> dict:
    """Plotly's asymmetric error bars; a point without an interval gets none (NaN), not a zero-width bar."""
    nan = float("nan")
    return {
        "type": "data",
        "symmetric": False,
        "array": [nan if p is None else p[1] for p in pairs],
        "arrayminus": [nan if p is None else p[0] for p in pairs],
        "visible": any(p is not None for p in pairs),
        "thickness": 1.2,
    }


def _interval(ci: tuple[float, float] | None) -> str:
    return "(no interval)" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _pm(errors: tuple[float, float] | None) -> str:
    return "(no interval)" if errors is None else f"(−{errors[0]:.2f} / +{errors[1]:.2f})"


def gelo_figure(runs: list[RunData]):
    """A forest plot: one row per (run, model), GELO with its interval, one colour per protocol."""
    import plotly.graph_objects as go

    figure = go.Figure()
    labels = []
    for protocol in _ordered(p for run in runs for p in run.gelos):
        found = [(run, g) for run in runs for g in run.gelos.get(protocol, [])]
        label = [f"{g.model} ({run.label})" for run, g in found]
        labels += label
        figure.add_trace(
            go.Scatter(
                x=[g.gelo for _, g in found],
                y=label,
                mode="markers",
                name=PROTOCOL_TITLES.get(protocol, protocol),
                marker={"size": 10},
                error_x=_errors([(g.gelo - g.ci[0], g.ci[1] - g.gelo) if _finite(g.ci) else None for _, g in found]),
                customdata=[
                    [g.baseline, _interval(g.ci if _finite(g.ci) else None), g.interval_over, g.n_datasets]
                    for _, g in found
                ],
                hovertemplate="%{y}: GELO %{x:.3f} %{customdata[1]}<br>against %{customdata[0]} over "
                "%{customdata[3]} dataset(s); interval over %{customdata[2]}<extra></extra>",
            )
        )
    figure.add_vline(x=1.0, line_dash="dash", line_color="grey", line_width=1)
    if not labels:
        _say(figure, "no model of these runs has a base with general-suite results: no GELO")
    rows = len(dict.fromkeys(labels))
    figure.update_layout(
        template="plotly_white",
        height=max(220, 90 + 34 * rows),
        margin={"t": 20},
        xaxis_title="GELO (fine-tuned / base)",
        yaxis={"categoryorder": "array", "categoryarray": list(dict.fromkeys(labels)), "autorange": "reversed"},
        legend_title_text="protocol",
    )
    return figure


def _finite(ci) -> bool:
    return ci is not None and all(c == c for c in ci)  # NaN: too few datasets and no per-sample outcomes


def changes_figure(runs: list[RunData], protocol: str):
    """Heatmap of the relative change per (model, run) and dataset under ``protocol``, diverging around 0."""
    import plotly.graph_objects as go

    found = [(run, g) for run in runs for g in run.gelos.get(protocol, [])]
    datasets = sorted({c.dataset for _, g in found for c in g.changes})
    z, custom, labels = [], [], []
    for run, g in found:
        by = {c.dataset: c for c in g.changes}
        labels.append(f"{g.model} ({run.label})")
        z.append([100 * by[d].relative if d in by else None for d in datasets])
        custom.append([_change_text(by.get(d), g.baseline) for d in datasets])
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=datasets,
            y=labels,
            customdata=custom,
            colorscale="RdBu",
            zmid=0,
            texttemplate="%{z:+.1f}",
            hovertemplate="%{y} on %{x}: %{z:+.2f} % relative<br>%{customdata}<extra></extra>",
            colorbar={"title": {"text": "relative change (%)"}},
        )
    )
    figure.update_layout(
        template="plotly_white",
        height=max(260, 130 + 45 * len(labels)),
        margin={"t": 20},
        xaxis_title="dataset",
        yaxis={"autorange": "reversed"},  # the runs top to bottom in the order given, as in the GELO figure
    )
    return figure


def _change_text(change, baseline: str) -> str:
    if change is None:
        return "not evaluated"
    text = f"{100 * change.absolute:+.2f} points against {baseline} ({100 * change.base_value:.2f} %)"
    if change.ci:
        text += f", 95 % interval [{100 * change.ci[0]:+.2f}, {100 * change.ci[1]:+.2f}]"
    if change.p_value is not None:
        text += f", McNemar p {change.p_value:.3g}"
    return text


def _figure_section(div_id: str, title: str, figure, caption: str) -> str:
    body = figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False, "responsive": True}
    )
    return (
        f"<section><h2>{html.escape(title)}</h2><figure>{body}"
        f"<figcaption>{html.escape(caption)}</figcaption></figure></section>"
    )


def _runs_section(runs: list[RunData], out: Path) -> str:
    items = []
    for run in runs:
        link = report_link(run, out)
        report = (
            f"<a href='{html.escape(link)}'>report</a>"
            if link
            else f"no report yet (<code>overspec report {html.escape(str(run.path))}</code>)"
        )
        models = sorted({r.model for r in run.rows})
        items.append(
            f"<tr><td>{html.escape(run.label)}</td><td>{report}</td><td>{len(run.rows)}</td>"
            f"<td>{html.escape(', '.join(models))}</td><td><code>{html.escape(str(run.path))}</code></td></tr>"
        )
    return (
        "<section><h2>Runs</h2><table class='runs'><thead><tr><th>run</th><th>report</th><th>rows</th><th>models</th>"
        f"<th>folder</th></tr></thead><tbody>{''.join(items)}</tbody></table></section>"
    )


def _cell(run: RunData, row: ResultRow, field: str | None) -> str:
    value = run.label if field is None else getattr(row, field)
    if value is None:
        return "<td></td>"
    if field in NUMERIC:  # shown rounded; data-v holds the stored value exactly, for sorting and for reading back
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f"<td class='num' data-v='{value!r}' title='{value!r}'>{shown}</td>"
    if field == "higher_is_better":
        return f"<td>{'yes' if value else 'no'}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _table_section(runs: list[RunData]) -> str:
    head = "".join(f"<th data-col='{i}' tabindex='0'>{html.escape(h)}</th>" for i, (h, _) in enumerate(COLUMNS))
    filters = "".join(
        f"<th><input data-col='{i}' placeholder='filter' aria-label='filter {html.escape(h)}'></th>"
        for i, (h, _) in enumerate(COLUMNS)
    )
    body = "".join(
        "<tr>" + "".join(_cell(run, row, f) for _, f in COLUMNS) + "</tr>" for run in runs for row in run.rows
    )
    total = sum(len(run.rows) for run in runs)
    return (
        "<section><h2>Every result</h2><p class='note'>Values as stored (fractions; unrounded in the cell's tooltip). "
        "Click a header to sort; type in a column's box to filter (all boxes must match, case-insensitive).</p>"
        f"<p id='row-count'>{total} of {total} rows</p><div class='scroll'><table id='results'><thead><tr>{head}</tr>"
        f"<tr class='filters'>{filters}</tr></thead><tbody>{body}</tbody></table></div></section>"
    )


# Sorting and filtering of the results table: plain DOM code, kept this small on purpose (see the module docstring).
TABLE_JS = """
(function () {
  var table = document.getElementById('results');
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var inputs = table.querySelectorAll('tr.filters input');
  var count = document.getElementById('row-count');
  function key(row, col) {
    var cell = row.cells[col];
    return cell.hasAttribute('data-v') ? parseFloat(cell.getAttribute('data-v')) : cell.textContent.toLowerCase();
  }
  function filter() {
    var terms = Array.prototype.map.call(inputs, function (i) { return i.value.trim().toLowerCase(); });
    var shown = 0;
    rows.forEach(function (row) {
      var ok = terms.every(function (t, col) {
        return !t || row.cells[col].textContent.toLowerCase().indexOf(t) >= 0;
      });
      row.style.display = ok ? '' : 'none';
      if (ok) { shown += 1; }
    });
    count.textContent = shown + ' of ' + rows.length + ' rows';
  }
  function sort(th) {
    var col = +th.getAttribute('data-col');
    var ascending = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th[aria-sort]').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      var order = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  inputs.forEach(function (i) { i.addEventListener('input', filter); });
  table.querySelectorAll('thead tr:first-child th').forEach(function (th) {
    th.addEventListener('click', function () { sort(th); });
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') { sort(th); } });
  });
})();
"""

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1300px;padding:0 1rem;color:#222;
line-height:1.45}h1,h2{line-height:1.2}code{background:#f4f4f4;padding:0 3px;border-radius:3px;font-size:90%}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;
white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}thead{background:#f2f2f2}
#results thead tr:first-child th{cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:' ▲'}
th[aria-sort=descending]::after{content:' ▼'}tr.filters input{width:100%;min-width:4em;box-sizing:border-box;
font-size:11px}.scroll{overflow:auto;max-height:80vh}.note,figcaption{font-size:13px;color:#555}
figure{margin:0.5rem 0 2rem}"""


def _page(title: str, sections: list[str]) -> str:
    from plotly.offline import get_plotlyjs

    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body><h1>{html.escape(title)}</h1>"
        f"{''.join(sections)}<script>{TABLE_JS}</script></body></html>"
    )

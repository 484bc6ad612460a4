"""Build ``report.md``, ``report.html`` (self-contained), table exports and figures from a run's store."""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overspec._json import strict_dumps
from overspec.analysis.gelo import GeloResult, Record, analyse, biometric_gains, missing_bases, read_table
from overspec.errors import DataError
from overspec.protocols.specs import general_protocols
from overspec.provenance import markdown_lines, read_records
from overspec.report import plots
from overspec.report.findings import Chance, chance_levels, findings
from overspec.report.published import DEFAULT, load_published
from overspec.report.side_effects import side_effect_sections
from overspec.report.style import Figure, caption_of
from overspec.report.tables import Table, format_value
from overspec.results import ResultStore
from overspec.results.store import SCHEMA_VERSION

# summary.json: its JSON Schema is schemas/summary.schema.json; the version goes up when a field is added, removed or
# changes meaning (docs/reference/results.md)
SUMMARY_SCHEMA, SUMMARY_SCHEMA_VERSION = "overspec.summary", 1

TITLES = {"zeroshot": "Zero-shot classification (%)", "linear_probe": "Linear probe (%)"}


def _records(rows) -> tuple[list[Record], dict[str, str], dict[str, str]]:
    """Headline records with the identity the planner stored in each row, plus each model's task and
    published name."""
    records, tasks, references = [], {}, {}
    for row in rows:
        if row.metric != "headline":
            continue
        records.append(
            Record(
                row.model,
                row.arch,
                row.dataset,
                row.protocol,
                row.value,
                row.headline_metric or "headline",
                row.higher_is_better,
                row.task,
                row.base,
                row.model_task,
            )
        )
        tasks[row.model] = row.model_task
        if row.reference:
            references[row.model] = row.reference
    return records, tasks, references


def _samples(out: Path, rows) -> dict:
    found = {}
    for row in rows:
        if row.metric == "headline" and (out / "predictions" / f"{row.cell}.npz").exists():
            with np.load(out / "predictions" / f"{row.cell}.npz") as data:
                if "correct" in data:
                    found[(row.model, row.arch, row.dataset, row.protocol)] = data["correct"]
    return found


def _percent(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else f"{100 * value:.2f}"


def general_table(
    records, protocol, gelos: dict[str, GeloResult], reference: dict, chance: Chance | None = None
) -> Table | None:
    from overspec.data.catalog import canonical_dataset

    chosen = [r for r in records if r.task == "general" and r.protocol == protocol]
    if not chosen:
        return None
    models = sorted({r.model for r in chosen}, key=lambda m: (m in gelos, m))
    datasets = sorted({r.dataset for r in chosen})
    value = {(r.model, r.dataset): r.value for r in chosen}
    chance = chance or Chance({}, set())
    columns = ["dataset", "chance"] + [
        m for model in models for m in ([model, f"{model} (published)"] if (model, protocol) in reference else [model])
    ]
    rows = []
    for dataset in datasets:
        row = [dataset, _percent(chance.level.get((dataset, protocol)))]
        for model in models:
            row.append(_percent(value.get((model, dataset))))
            if (model, protocol) in reference:
                published = reference[(model, protocol)].get(canonical_dataset(dataset))
                row.append("" if published is None else f"{published:.2f}")
        rows.append(row)
    average = ["average", ""]
    gelo_row = ["GELO", ""]
    for model in models:
        values = [value[(model, d)] for d in datasets if (model, d) in value]
        average.append(_percent(float(np.mean(values))) if values else "")
        g = gelos.get(model)
        flag = " ⚠" if g is not None and chance.flagged(g) else ""
        gelo_row.append("" if g is None else f"{g.gelo:.3f} [{g.ci[0]:.3f}, {g.ci[1]:.3f}]{flag}")
        if (model, protocol) in reference:
            average.append("")
            gelo_row.append("")
    notes = [
        f"GELO of {m}: over the {g.n_datasets} dataset{'s' * (g.n_datasets != 1)} it shares with {g.baseline} "
        f"({', '.join(g.datasets)}); 95% interval from a paired bootstrap over {g.interval_over}; "
        f"one-sided Wilcoxon signed-rank p for a drop: {_p(g.p_value)}"
        for m, g in gelos.items()
    ]
    if any(chance.flagged(g) for g in gelos.values()):
        notes.append("⚠ computed from results within chance (95% interval reaching the chance column): not a finding")
    return Table(TITLES[protocol], columns, rows + [average, gelo_row], notes)


def _p(value: float | None) -> str:
    return "n/a (too few datasets or no difference)" if value is None else f"{value:.3g}"


def changes_table(protocol: str, gelos: dict[str, GeloResult]) -> Table | None:
    """Per model and dataset: absolute and relative change against the base, with the paired bootstrap
    interval and exact McNemar p of the accuracy difference where per-sample outcomes were stored."""
    rows = []
    for model, g in sorted(gelos.items()):
        for c in g.changes:
            interval = f"[{100 * c.ci[0]:+.2f}, {100 * c.ci[1]:+.2f}]" if c.ci else ""
            rows.append(
                [
                    model,
                    c.dataset,
                    f"{100 * c.absolute:+.2f}",
                    f"{100 * c.relative:+.1f}%",
                    interval,
                    "" if c.p_value is None else f"{c.p_value:.3g}",
                ]
            )
    if not rows:
        return None
    return Table(
        f"Change against the base, {protocol} (points)",
        ["model", "dataset", "change", "relative", "95% interval", "McNemar p"],
        rows,
        ["Intervals: paired bootstrap over test samples; p: exact two-sided McNemar test."],
    )


def biometric_table(records, tasks, unresolved: dict | None = None) -> Table | None:
    """Headline of each biometric benchmark per model; ``unresolved`` ((model, dataset) -> reason) marks a headline
    the data cannot resolve as ``n/a (needs ≥ N …)``."""
    chosen = [r for r in records if r.task != "general"]
    reasons = {(model, dataset): reason for (model, dataset, *_), reason in (unresolved or {}).items()}
    if not chosen and not reasons:
        return None
    models = sorted({r.model for r in chosen} | {model for model, _ in reasons})
    benchmarks = sorted(
        {(r.task, r.dataset, r.metric, r.higher_is_better) for r in chosen}
        | {(t, d, m, h) for (_, d, t, m, h) in (unresolved or {})}
    )
    value = {(r.model, r.dataset): r.value for r in chosen}
    rows = [
        [f"{d} ({t})", f"{m} {'↑' if h else '↓'}"]
        + [
            format_value(None, reasons[(model, d)]) if (model, d) in reasons else _percent(value.get((model, d)))
            for model in models
        ]
        for t, d, m, h in benchmarks
    ]
    columns = ["benchmark", "metric"] + [f"{m} [{tasks.get(m, 'general')}]" for m in models]
    return Table(
        "Biometric benchmarks (%)",
        columns,
        rows,
        ["↑ higher is better, ↓ lower is better; cross-task cells use the scorer recorded in results."],
    )


def unresolved_headlines(rows, details: dict[str, dict]) -> dict[tuple, str]:
    """(model, dataset, task, headline metric, higher is better) -> why the cell's headline has no value (the
    cell's details' ``unresolved``: the data cannot resolve its operating point)."""
    found = {}
    for r in rows:
        reason = ((details.get(r.cell) or {}).get("unresolved") or {}).get(r.headline_metric)
        if reason:
            found[(r.model, r.dataset, r.task, r.headline_metric, r.higher_is_better)] = reason
    return found


def _reference(path: Path | None, references: dict[str, str]) -> dict:
    """Published values keyed by (our model, protocol) -> {catalog dataset: percent}; a model is matched by the
    published name its spec gives (``reference:``)."""
    if path is None:
        return {}
    from overspec.data.catalog import canonical_dataset

    table = defaultdict(dict)
    ours_by_name = {name: model for model, name in references.items()}
    scale = _percent_scale(path)
    for r in read_table(path):
        model = ours_by_name.get(f"{r.model} {r.arch}".strip()) or ours_by_name.get(r.model)
        if model is not None:
            table[(model, r.protocol)][canonical_dataset(r.dataset)] = r.value * scale
    return dict(table)


def _percent_scale(path: Path) -> float:
    """A published table states its unit by its column: ``value_percent`` (e.g. 88.22) or ``value`` (0.8822)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = f.readline().strip().split(",")
    return 1.0 if "value_percent" in header else 100.0


def build_report(out: str | Path, *, reference: str | Path | None = DEFAULT) -> Path:
    """Write the report of the run in ``out`` from its store; returns the HTML path. ``reference``: the published
    numbers to read the run against: a bundled study's name (default ``chettaoui2025``), a CSV file, or ``none``
    (``report/published.py``)."""
    out = Path(out)
    study = load_published(reference)  # a bad name or file fails before anything is written
    if not (out / "results.sqlite").exists():
        raise DataError(f"{out} holds no results.sqlite: run `overspec run CONFIG --out {out}` first")
    store = ResultStore(out / "results.sqlite", create=False)
    rows, superseded = store.rows(current=True), store.superseded()
    store.export_csv(out / "results.csv", rows=rows)
    chance = chance_levels(rows, store.details())
    unresolved = unresolved_headlines(rows, store.details())
    if superseded:
        store.export_csv(out / "superseded.csv", rows=superseded)
    store.close()
    records, tasks, references = _records(rows)
    figures, tables = out / "figures", out / "tables"
    published = _reference(study.general if study else None, references)
    samples = _samples(out, rows)
    no_gelo = missing_bases(records)

    sections, figure_files, gelo_by_protocol, gelo_results = [], [], {}, {}
    for protocol in general_protocols():
        results = analyse(records, protocols=[protocol], samples=samples)
        gelos = {g.model: g for g in results}
        gelo_by_protocol[protocol] = {m: g.gelo for m, g in gelos.items()}
        gelo_results[protocol] = gelos
        table = general_table(records, protocol, gelos, published, chance)
        if table is not None:
            sections.append((protocol, table))
            change_table = changes_table(protocol, gelos)
            if change_table is not None:
                sections.append((f"{protocol}_changes", change_table))
            changes = {m: {c.dataset: c.relative for c in g.changes} for m, g in gelos.items()}
            if plots.heatmap_fits(changes):  # below 2 x 2 the changes table above says it all
                figure_files.append(plots.change_heatmap(changes, protocol, figures))
    bio = biometric_table(records, tasks, unresolved)
    if bio is not None:
        sections.append(("biometric", bio))
    sections += side_effect_sections(rows)  # report/side_effects.py
    if any(gelo_results.values()):
        figure_files.insert(0, plots.gelo_chart({p: g for p, g in gelo_results.items() if g}, figures))
    gains = biometric_gains(records)
    points = _tradeoff_points(gains, gelo_results)
    if points:
        figure_files.append(plots.tradeoff_scatter(points, figures, "GELO (zero-shot)"))
    bases = {r.model: r.base for r in records if r.base}
    context = Context(out, figures, rows, records, bases, gelo_results)
    for builder in SECTIONS:
        more_tables, more_figures = builder(context)
        sections += more_tables
        figure_files += more_figures

    tables.mkdir(parents=True, exist_ok=True)
    for name, table in sections:
        for suffix, text in (("md", table.markdown()), ("tex", table.latex(name)), ("csv", table.csv())):
            (tables / f"{name}.{suffix}").write_text(text)
    conventions = sorted({(r.dataset, r.protocol, r.convention) for r in rows if r.convention})
    runs = read_records(out)  # provenance of every `overspec run` into this folder
    summary = {
        "schema": SUMMARY_SCHEMA,
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "results_schema_version": SCHEMA_VERSION,  # results.sqlite / results.csv beside it
        "conventions": {f"{dataset}/{protocol}": convention for dataset, protocol, convention in conventions},
        "bases": bases,
        "gelo": gelo_by_protocol,
        "gelo_ci": {p: {m: list(g.ci) for m, g in gelos.items()} for p, gelos in gelo_results.items()},
        "gelo_within_chance": {
            p: sorted(m for m, g in gelos.items() if chance.flagged(g)) for p, gelos in gelo_results.items()
        },
        "chance": {f"{d}/{p}": level for (d, p), level in sorted(chance.level.items())},
        "no_gelo": no_gelo,
        "unresolved": {f"{m}/{d}/{metric}": reason for (m, d, _, metric, _), reason in unresolved.items()},
        "biometric_gains": [g.__dict__ for g in gains],
        "reference": study.name if study else None,
        "provenance": runs,  # oldest first (provenance.py)
    }
    (out / "summary.json").write_text(strict_dumps(summary, indent=1, default=str))
    drawn = {f.path for f in figure_files}  # and any other figure drawn into the folder, e.g. a sweep's curve
    figure_files += [Figure(p, caption_of(p)) for p in sorted(figures.glob("*.png")) if p not in drawn]
    notes = (out / "NOTES.md").read_text().splitlines() if (out / "NOTES.md").exists() else []
    intro = (
        findings(gelo_results, tasks, chance, study) + _intro(bases, no_gelo, gains) + _conventions_line(conventions)
    )
    footer = markdown_lines(runs)
    _write_markdown(out, sections, figure_files, intro, notes, footer)
    return _write_html(out, sections, figure_files, intro, notes, footer)


def _tradeoff_points(gains, gelo_results) -> list[tuple[str, float, float, tuple[float, float]]]:
    by_model = defaultdict(list)
    for g in gains:
        by_model[g.model].append(g.gain * 100)
    zeroshot = gelo_results.get("zeroshot") or gelo_results.get("linear_probe") or {}
    return [
        (m, float(np.mean(v)), zeroshot[m].gelo, tuple(zeroshot[m].ci))
        for m, v in sorted(by_model.items())
        if m in zeroshot
    ]


@dataclass(frozen=True)
class Context:
    """What a report section builder reads: the run folder, the figures folder, the stored rows and the analysis."""

    out: Path
    figures: Path
    rows: list
    records: list[Record]
    bases: dict[str, str]  # model -> its base
    gelos: dict[str, dict[str, GeloResult]]  # protocol -> model -> GELO


def biometric_section(context: Context) -> tuple[list[tuple[str, Table]], list[Figure]]:
    """DET, ROC and score distributions of every benchmark whose cells stored their scores."""
    from overspec.report.biometric import biometric_figures

    return [], biometric_figures(context.out, context.bases, context.figures)


# Sections after the general and biometric tables: each builder returns (named tables, figures), in page order.
def drift_section(context: Context) -> tuple[list[tuple[str, Table]], list[Figure]]:
    """The run's layer-wise drift documents, if any (report/drift.py)."""
    from overspec.report.drift import drift_section as build

    return build(context.out, context.records, context.figures)


def frontier_section(context: Context) -> tuple[list[tuple[str, Table]], list[Figure]]:
    """`overspec frontier`'s tables and figures, when the run has frontier.json (report/frontier.py)."""
    from overspec.report.frontier import frontier_sections

    return frontier_sections(context.out)


SECTIONS: list[Callable[[Context], tuple[list[tuple[str, Table]], list[Figure]]]] = [
    biometric_section,
    drift_section,
    frontier_section,
]


def _intro(bases: dict[str, str], no_gelo: dict[str, str], gains) -> list[str]:
    lines = [
        "Each model is compared with its own base: "
        + (", ".join(f"{m} with **{b}**" for m, b in sorted(bases.items())) or "no model has a base")
        + ".",
        "Values are percentages of fractions stored unrounded in results.sqlite / results.csv.",
    ]
    lines += [f"- no GELO for {m}: {why}" for m, why in sorted(no_gelo.items())]
    for g in gains:
        lines.append(
            f"- {g.model} on {g.benchmark} ({g.task}, {g.metric}): {100 * g.value:.2f} vs "
            f"{100 * g.base_value:.2f} for its base: gain {100 * g.gain:+.2f} points"
        )
    return lines


def _conventions_line(conventions: list[tuple[str, str, str]]) -> list[str]:
    """Which rules the numbers follow (docs/conventions.md), by protocol and convention."""
    by_rule: dict[tuple[str, str], list[str]] = defaultdict(list)
    for dataset, protocol, convention in conventions:
        by_rule[(protocol, convention)].append(dataset)
    parts = [f"{protocol} `{rule}` ({', '.join(sets)})" for (protocol, rule), sets in sorted(by_rule.items())]
    return ["", "Conventions (the rules each number follows): " + "; ".join(parts) + "."] if parts else []


def _write_markdown(
    out: Path, sections, figure_files: list[Figure], intro: list[str], notes, footer: list[str]
) -> Path:
    parts = ["# overspec report", "", *intro, "", *notes, ""]
    parts += [table.markdown() for _, table in sections]
    parts += [f"![{f.name}](figures/{f.path.name})\n\n_{f.caption}_\n" for f in figure_files]
    parts += ["", *footer]
    path = out / "report.md"
    path.write_text("\n".join(parts) + "\n")
    return path


STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222;
line-height:1.45}
h1,h2,h3{line-height:1.2}code{background:#f4f4f4;padding:0 3px;border-radius:3px;font-size:90%}
table{border-collapse:collapse;margin:1rem 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}thead{background:#f2f2f2}.note{font-size:12px;color:#555}
figure{margin:1.5rem 0}figcaption{font-size:13px;color:#555}img{max-width:100%;border:1px solid #eee}
@media print{body{margin:0;max-width:none;font-size:11pt}table,figure{break-inside:avoid}
h2,h3{break-after:avoid}}"""


def render_markdown(text: str) -> str:
    """CommonMark (with tables) to HTML by markdown-it-py; raw HTML in the text is shown, not run."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def _write_html(out: Path, sections, figure_files: list[Figure], intro: list[str], notes, footer: list[str]) -> Path:
    images = "".join(
        f"<figure id='fig-{html.escape(f.name)}'><img alt='{html.escape(f.caption)}' src='data:image/png;base64,"
        f"{base64.b64encode(f.path.read_bytes()).decode()}'/><figcaption>{html.escape(f.caption)}"
        "</figcaption></figure>"
        for f in figure_files
    )
    intro = render_markdown("\n".join([*intro, "", *notes]))
    body = "".join(table.html() for _, table in sections)
    footer = f"<footer class='note'>{render_markdown(chr(10).join(footer))}</footer>"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>overspec report</title><style>{STYLE}</style>"
        f"</head><body><h1>overspec report</h1>{intro}{body}{images}{footer}</body></html>"
    )
    path = out / "report.html"
    path.write_text(page)
    return path

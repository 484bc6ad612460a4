"""The results table ``overspec run`` ends with: each model's headline per dataset and its GELO per protocol,
read from the run's store through the report's own path (``build._records``, ``analyse`` with the stored
per-sample outcomes), so the numbers are the report's."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def results_table(out: str | Path):
    """A rich ``Table``: one row per (dataset, protocol), one column per model (headline, %, with its metric and
    direction), then one GELO row per protocol with the 95 % interval."""
    from rich.table import Table
    from rich.text import Text

    from overspec.analysis.gelo import analyse
    from overspec.report.build import _records, _samples
    from overspec.results import ResultStore

    store = ResultStore(Path(out) / "results.sqlite", create=False)
    rows = store.rows(current=True)
    store.close()
    records, tasks, _ = _records(rows)
    models = sorted({r.model for r in records}, key=lambda m: (tasks.get(m, "general") != "general", m))
    table = Table(title=Text(f"Headline results ({Path(out)})"), title_justify="left")
    table.add_column("dataset")
    table.add_column("protocol")
    table.add_column("metric")
    for model in models:
        table.add_column(Text(f"{model}\n({tasks.get(model, 'general')})"), justify="right")  # Text: no markup
    value = {(r.model, r.dataset, r.protocol): r.value for r in records}
    keys = sorted({(r.task != "general", r.dataset, r.protocol, r.metric, r.higher_is_better) for r in records})
    for _, dataset, protocol, metric, higher in keys:
        cells = [_percent(value.get((m, dataset, protocol))) for m in models]
        table.add_row(*map(Text, (dataset, protocol, f"{metric} {'↑' if higher else '↓'}", *cells)))
    gelos = analyse(records, samples=_samples(Path(out), rows))  # as the report computes them
    for protocol in sorted({g.protocol for g in gelos}):
        by_model = {g.model: g for g in gelos if g.protocol == protocol}
        cells = [
            f"{by_model[m].gelo:.3f}\n[{by_model[m].ci[0]:.3f}, {by_model[m].ci[1]:.3f}]" if m in by_model else ""
            for m in models
        ]
        table.add_row(*map(Text, ("GELO", protocol, "95% interval", *cells)), style="bold")
    table.caption = "values in %; GELO: fine-tuned mean over the general suite / its base's, with its 95% interval"
    return table


def _percent(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else f"{100 * value:.2f}"

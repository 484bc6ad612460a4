"""The report's side-effect section: for each face model, its verification result and gain over its base beside
what it now accepts (MMPMR, IAPMR) and how it searches (rank-1, TPIR at FPIR), each with its interval and its change
against the same base (``protocols/side_effects.py``). ``report/build.py`` calls ``side_effect_sections`` once."""

from __future__ import annotations

from overspec.metrics.specs import parse_metric
from overspec.report.tables import Table

VERIFICATION = ("face_verification", "ijb")
SHOWN = {  # protocol -> the keys shown, in order (those a run has)
    "morph_acceptance": ("mmpmr", "prodavg_mmpmr", "rmmr"),
    "attack_acceptance": ("iapmr", "worst_iapmr"),
    "identification": ("cmc_1", "cmc_5", "tpir_at_fpir_0.01", "tpir_at_fpir_0.1"),
}
TITLE = "What each face model now accepts (%)"


def side_effect_sections(rows) -> list[tuple[str, Table]]:
    """``[("side_effects", table)]`` when the run has side-effect rows, else ``[]``. ``rows``: the store's rows."""
    mine = [r for r in rows if r.protocol in SHOWN and r.metric in SHOWN[r.protocol]]
    if not mine:
        return []
    models = sorted({r.model for r in mine})
    verification = [r for r in rows if r.protocol in VERIFICATION and r.metric == "headline" and r.model in models]
    value = {(r.model, r.dataset, r.protocol, r.metric): r for r in [*mine, *verification]}
    columns_of = sorted({(r.dataset, r.protocol, r.headline_metric or "headline") for r in verification})
    columns_of += [
        (d, p, m)
        for d, p in sorted({(r.dataset, r.protocol) for r in mine})
        for m in SHOWN[p]
        if any((x.dataset, x.protocol, x.metric) == (d, p, m) for x in mine)
    ]
    base_of = {r.model: r.base for r in rows if r.model in models}
    table_rows = []
    for model in models:
        row = [f"{model}" + (f" (base {base_of[model]})" if base_of.get(model) else "")]
        for dataset, protocol, metric in columns_of:
            key = "headline" if protocol in VERIFICATION else metric
            row.append(
                _cell(
                    value.get((model, dataset, protocol, key)), value.get((base_of.get(model), dataset, protocol, key))
                )
            )
        table_rows.append(row)
    header = ["model"] + [
        f"{dataset}: {metric} {'↑' if parse_metric(metric).higher_is_better else '↓'}"
        for dataset, _, metric in columns_of
    ]
    notes = [
        "Each cell: value [95 % interval] (change against the model's base, in points). Acceptance rates are read at "
        "the threshold each benchmark fixes at its FAR on its verification set (score > threshold is a match); "
        "a rise in MMPMR or IAPMR means the model now accepts more morphs or attacks. See docs: Side effects."
    ]
    return [("side_effects", Table(TITLE, header, table_rows, notes))]


def _cell(row, base) -> str:
    if row is None:
        return "–"
    text = f"{100 * row.value:.1f}"
    if row.ci_low is not None and row.ci_high is not None:
        text += f" [{100 * row.ci_low:.1f}, {100 * row.ci_high:.1f}]"
    if base is not None:
        text += f" ({100 * (row.value - base.value):+.1f})"
    return text

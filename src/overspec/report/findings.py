"""The report's opening: each specialist's GELO with its interval, read against chance and against the
study's model of the same task and architecture (``report/published.py``).

A GELO whose suite holds a result within chance (its 95 % interval reaches the dataset's chance level) is
flagged and not headlined: a ratio of chance-level accuracies measures noise, not lost generality.
"""

from __future__ import annotations

from dataclasses import dataclass

from overspec.analysis.gelo import GeloResult
from overspec.report.published import Published

TITLES = {"zeroshot": "zero-shot", "linear_probe": "linear probe"}


@dataclass(frozen=True)
class Chance:
    """Chance level of each (dataset, protocol) and the (model, dataset, protocol) results within it."""

    level: dict[tuple[str, str], float]
    within: set[tuple[str, str, str]]

    def flagged(self, g: GeloResult) -> list[str]:
        """Datasets of ``g``'s suite where it or its base is within chance."""
        return [d for d in g.datasets if {(g.model, d, g.protocol), (g.baseline, d, g.protocol)} & self.within]


def chance_levels(rows, details: dict[str, dict]) -> Chance:
    """From the stored rows (headline, with Wilson intervals for top-1) and each cell's ``n_classes``."""
    level, within = {}, set()
    for row in rows:
        classes = details.get(row.cell, {}).get("n_classes")
        if row.task != "general" or row.metric != "headline" or not classes:
            continue
        chance = 1.0 / classes
        level[(row.dataset, row.protocol)] = chance
        if (row.ci_low if row.ci_low is not None else row.value) <= chance:
            within.add((row.model, row.dataset, row.protocol))
    return Chance(level, within)


KEPT = 0.01  # a published GELO within 1 % of 1 counts as generality kept (the study's MAD/PAD values mostly)


def reading(g: GeloResult, task: str | None, published: Published | None) -> str:
    """Whether the interval says lost, kept or gained generality, and whether the study's model of the same task
    and architecture saw the same (its GELO below 1 - ``KEPT``: lost; within ``KEPT`` of 1: kept). A model the
    study has no counterpart for gets no verdict."""
    low, high = g.ci
    ours = "lost" if high < 1 else "gained" if low > 1 else "kept" if low <= 1 <= high else None
    verdict = {
        "lost": "below 1: the specialist lost general performance",
        "gained": "above 1: the specialist gained general performance",
        "kept": "its interval holds 1: no measurable change",
        None: "no interval",
    }[ours]
    if published is None or ours is None:
        return verdict
    theirs = published.counterpart(task, g.arch, g.protocol)
    if theirs is None:
        arch = g.arch or "unknown"
        return f"{verdict}; the study has no {task or 'general'} model of architecture {arch} to compare with"
    outcome = "lost" if theirs.gelo < 1 - KEPT else "gained" if theirs.gelo > 1 + KEPT else "kept"
    same = "agrees with" if ours == outcome else "differs from"
    return f"{verdict}; {same} the study, whose {theirs.label} {outcome} ({theirs.gelo:.3f})"


def findings(
    gelos: dict[str, dict[str, GeloResult]], tasks: dict[str, str], chance: Chance, published: Published | None
) -> list[str]:
    """Markdown lines: headlined GELOs first, then those flagged as resting on results within chance; each read
    against ``published`` (None: no comparison)."""
    headline, flagged = [], []
    for protocol, by_model in gelos.items():
        for model, g in sorted(by_model.items()):
            interval = f"[{g.ci[0]:.3f}, {g.ci[1]:.3f}]"
            line = (
                f"{model}, {TITLES.get(protocol, protocol)}: GELO **{g.gelo:.3f}** {interval} "
                f"(95 % bootstrap over {g.interval_over}; {g.n_datasets} dataset{'s' * (g.n_datasets != 1)}): "
                f"{reading(g, tasks.get(model), published)}."
            )
            at_chance = chance.flagged(g)
            if at_chance:
                flagged.append(
                    f"- ⚠ not a finding: {model}, {TITLES.get(protocol, protocol)}: GELO {g.gelo:.3f} {interval} "
                    f"rests on results within chance on {', '.join(at_chance)}."
                )
            else:
                headline.append(f"- {line}")
    if not headline and not flagged:
        return []
    return ["## Findings", "", *headline, *flagged, ""]

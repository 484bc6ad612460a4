"""The report's opening: each specialist's GELO with its interval, read against chance and against the study.

A GELO whose suite holds a result within chance (its 95 % interval reaches the dataset's chance level) is
flagged and not headlined: a ratio of chance-level accuracies measures noise, not lost generality.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

from overspec.analysis.gelo import GeloResult

STUDY_MODELS = {"fr": "FRoundation", "mad": "MADation", "pad": "FoundPAD"}  # the study's specialist per task
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


def study_gelos() -> dict[tuple[str, str], float]:
    """The study's ViT-B/16 GELO per (task, protocol) (src/overspec/reference/chettaoui2025_summary.csv)."""
    text = resources.files("overspec").joinpath("reference", "chettaoui2025_summary.csv").read_text()
    by_model = {v: k for k, v in STUDY_MODELS.items()}
    return {
        (by_model[r["model"]], r["protocol"]): float(r["gelo"])
        for r in csv.DictReader(text.splitlines())
        if r["gelo"] and r["arch"] == "ViT-B/16" and r["model"] in by_model
    }


KEPT = 0.01  # a published GELO within 1 % of 1 counts as generality kept (the study's MAD/PAD values mostly)


def reading(g: GeloResult, task: str | None, study: dict) -> str:
    """Whether the interval says lost, kept or gained generality, and whether the study's specialist for the
    same task saw the same (its GELO below 1 - ``KEPT``: lost; within ``KEPT`` of 1: kept)."""
    low, high = g.ci
    ours = "lost" if high < 1 else "gained" if low > 1 else "kept" if low <= 1 <= high else None
    verdict = {
        "lost": "below 1: the specialist lost general performance",
        "gained": "above 1: the specialist gained general performance",
        "kept": "its interval holds 1: no measurable change",
        None: "no interval",
    }[ours]
    published = study.get((task, g.protocol))
    if published is None or ours is None:
        return verdict
    theirs = "lost" if published < 1 - KEPT else "gained" if published > 1 + KEPT else "kept"
    same = "agrees with" if ours == theirs else "differs from"
    return f"{verdict}; {same} the study, whose {STUDY_MODELS[task]} ViT-B/16 {theirs} ({published:.3f})"


def findings(gelos: dict[str, dict[str, GeloResult]], tasks: dict[str, str], chance: Chance) -> list[str]:
    """Markdown lines: headlined GELOs first, then those flagged as resting on results within chance."""
    study = study_gelos()
    headline, flagged = [], []
    for protocol, by_model in gelos.items():
        for model, g in sorted(by_model.items()):
            interval = f"[{g.ci[0]:.3f}, {g.ci[1]:.3f}]"
            line = (
                f"{model}, {TITLES.get(protocol, protocol)}: GELO **{g.gelo:.3f}** {interval} "
                f"(95 % bootstrap over {g.interval_over}; {g.n_datasets} dataset{'s' * (g.n_datasets != 1)}): "
                f"{reading(g, tasks.get(model), study)}."
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

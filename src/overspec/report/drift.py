"""The report's drift section, from the run's ``drift/*.json`` documents (``runner/drift.py``).

- A table: per model and dataset (face images and general images side by side), the embedding's debiased CKA
  against its permutation null, its mutual k-NN overlap against chance, and the layer where similarity drops most
  (where the drift arises). Every layer's values go to ``tables/drift_layers.csv``.
- ``figures/drift_layers.png``: per dataset (face images first), CKA (top) and mutual k-NN (bottom) layer by layer,
  one line per model, with the null band (permutation mean ± 2 sd) and the k-NN chance level.
- ``figures/drift_vs_accuracy.png``: per general-suite protocol, each model's last-layer drift (1 - calibrated CKA
  of the embedding) on a dataset against its change in headline accuracy there, with Spearman's ρ and a 95 %
  percentile-bootstrap interval over the (model, dataset) points.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from overspec.report import plots
from overspec.report.style import styled
from overspec.report.tables import Table

BOOTSTRAP = 2000
MIN_INTERVAL_POINTS = 5


def drift_section(out: Path, records, figures: Path) -> tuple[list, list]:
    """The drift table and figures when the run has drift documents (the report's one hook): (tables, figures)."""
    from overspec.runner.drift import read_drift

    documents = sorted(read_drift(out), key=lambda d: (d.get("images") != "face", d["dataset"], d["model"]))
    if not documents:
        return [], []
    (out / "tables").mkdir(parents=True, exist_ok=True)
    _layers_csv(documents, out / "tables" / "drift_layers.csv")
    drawn = [layers_figure(documents, figures)]
    points = accuracy_points(documents, records)
    if points:
        drawn.append(accuracy_figure(points, figures))
    return [("drift", summary_table(documents))], drawn


def _drop(layers: list[dict]) -> str:
    """The layer whose CKA falls most below the previous layer's (the input counts as 1)."""
    previous, best, where = 1.0, 0.0, ""
    for x in layers:
        if np.isfinite(x["cka"]) and previous - x["cka"] > best:
            best, where = previous - x["cka"], x["layer"]
        previous = x["cka"] if np.isfinite(x["cka"]) else previous
    return f"{where} (-{best:.3f})" if where else "none"


def summary_table(documents: list[dict]) -> Table:
    rows = []
    for d in documents:
        last = d["layers"][-1]
        rows.append(
            [
                d["model"],
                d["base"],
                d["dataset"],
                d.get("images", "general"),
                str(d["n"]),
                f"{last['cka']:.3f}",
                f"{last['null_mean']:+.3f} ± {last['null_std']:.3f}",
                f"{last['calibrated']:.3f}",
                f"{last['mutual_knn']:.3f} ({last['knn_chance']:.3f})",
                _drop(d["layers"]),
            ]
        )
    k = documents[0]["k"]
    return Table(
        "Layer-wise drift from the base",
        ["model", "base", "dataset", "images", "n", "CKA", "null", "calibrated", f"mutual {k}-NN (chance)",
         "largest drop at"],
        rows,
        [
            f"Last layer ({documents[0]['layers'][-1]['layer']}): debiased linear CKA (unbiased HSIC, Song et al. "
            "2012) of base and fine-tuned features of the same images, 1 = the same representation; null: mean ± sd "
            f"over {documents[0]['permutations']} shuffled pairings; calibrated = (CKA - null mean) / (1 - null "
            "mean). Mutual k-NN (Huh et al. 2024) with its chance level k/(n-1). Largest drop: the layer whose CKA "
            "falls most below the layer before it. Every layer: tables/drift_layers.csv and figures/drift_layers.",
        ],
    )  # fmt: skip


def _layers_csv(documents: list[dict], path: Path) -> None:
    columns = ["model", "base", "dataset", "images", "n", "layer", "token", "cka", "null_mean", "null_std",
               "calibrated", "mutual_knn", "knn_chance"]  # fmt: skip
    rows = [
        [d["model"], d["base"], d["dataset"], d.get("images", "general"), str(d["n"])]
        + [repr(x[c]) if isinstance(x[c], float) else str(x[c]) for c in columns[5:]]
        for d in documents
        for x in d["layers"]
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(Table("drift layers", columns, rows).csv())


@styled
def layers_figure(documents: list[dict], folder: Path) -> plots.Figure:
    plt = plots.pyplot()
    datasets = list(dict.fromkeys((d["dataset"], d.get("images", "general")) for d in documents))
    models = sorted({d["model"] for d in documents})
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    figure, axes = plt.subplots(2, len(datasets), figsize=(3.4 * len(datasets) + 1, 6), squeeze=False, sharey="row")
    for column, (dataset, kind) in enumerate(datasets):
        top, bottom = axes[0][column], axes[1][column]
        for d in (d for d in documents if d["dataset"] == dataset):
            layers = d["layers"]
            x = np.arange(len(layers))
            cka = np.array([v["cka"] for v in layers])
            mean = np.array([v["null_mean"] for v in layers])
            spread = 2 * np.array([v["null_std"] for v in layers])
            top.fill_between(x, mean - spread, mean + spread, color=colours[d["model"]], alpha=0.15, linewidth=0)
            top.plot(x, cka, marker="o", markersize=3, color=colours[d["model"]], label=d["model"])
            bottom.plot(x, [v["mutual_knn"] for v in layers], marker="o", markersize=3, color=colours[d["model"]])
            bottom.axhline(layers[0]["knn_chance"], color="grey", linewidth=0.8, linestyle=":")
            names = [
                v["layer"].replace("block ", "b").replace("stage ", "s").replace("embedding", "emb") for v in layers
            ]
            bottom.set_xticks(x, names, rotation=90, fontsize=7)
            top.set_xticks(x, [])
        top.set_title(f"{kind} images: {dataset}", fontsize=9)
        top.axhline(1.0, color="black", linewidth=0.6, linestyle="--")
        top.set_ylim(min(-0.05, top.get_ylim()[0]), 1.05)
        bottom.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("debiased CKA\n(band: null mean ± 2 sd)")
    axes[1][0].set_ylabel(f"mutual {documents[0]['k']}-NN\n(dotted: chance)")
    shown = {}
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            shown.setdefault(label, handle)
    figure.legend(list(shown.values()), list(shown), fontsize=8, loc="upper right", ncol=len(shown))
    figure.suptitle("Layer-wise similarity to the base (1 = no drift)", fontsize=10, x=0.3)
    caption = (
        "Layer-wise drift of each fine-tuned model from its base, per dataset: debiased linear CKA (top; band: the "
        "permutation null's mean ± 2 sd) and mutual k-NN overlap (bottom; dotted: chance), block by block."
    )
    return plots.save(figure, folder, "drift_layers", caption)


def _short(layer: str) -> str:
    return layer.replace("block ", "b").replace("stage ", "s").replace("embedding", "emb")


def accuracy_points(documents: list[dict], records) -> dict[str, list[tuple[str, str, float, float]]]:
    """Per protocol: (model, dataset, last-layer drift, change in headline points) for every model with a base
    evaluated on a general dataset it was also compared on."""
    value = {(r.model, r.dataset, r.protocol): r.value for r in records if r.task == "general"}
    points = defaultdict(list)
    for d in documents:
        drift = 1.0 - d["layers"][-1]["calibrated"]
        for (model, dataset, protocol), tuned in value.items():
            base = value.get((d["base"], dataset, protocol))
            if model == d["model"] and dataset == d["dataset"] and base is not None:
                points[protocol].append((model, dataset, drift, 100 * (tuned - base)))
    return dict(points)


def spearman_interval(x: np.ndarray, y: np.ndarray, *, resamples: int = BOOTSTRAP, seed: int = 0):
    """Spearman's ρ of the points and its 95 % percentile-bootstrap interval (points resampled with replacement;
    resamples where either side is constant have no ρ and are left out). ρ is NaN under 3 points, the interval
    under ``MIN_INTERVAL_POINTS``."""
    from scipy.stats import spearmanr

    if len(x) < 3:
        return float("nan"), (float("nan"), float("nan"))
    rho = float(spearmanr(x, y).statistic)
    if len(x) < MIN_INTERVAL_POINTS:  # resamples of 3-4 points hold 2-3 distinct ones: every ρ is ±1 or undefined
        return rho, (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        i = rng.integers(0, len(x), len(x))
        if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0:
            draws.append(spearmanr(x[i], y[i]).statistic)
    if not draws:
        return rho, (float("nan"), float("nan"))
    low, high = np.percentile(draws, [2.5, 97.5])
    return rho, (float(low), float(high))


@styled
def accuracy_figure(points: dict[str, list], folder: Path) -> plots.Figure:
    plt = plots.pyplot()
    protocols = sorted(points)
    figure, axes = plt.subplots(1, len(protocols), figsize=(4.6 * len(protocols), 3.8), squeeze=False)
    for axis, protocol in zip(axes[0], protocols, strict=True):
        chosen = points[protocol]
        x, y = np.array([p[2] for p in chosen]), np.array([p[3] for p in chosen])
        rho, (low, high) = spearman_interval(x, y)
        models = sorted({p[0] for p in chosen})
        for i, model in enumerate(models):
            mine = [p for p in chosen if p[0] == model]
            axis.scatter([p[2] for p in mine], [p[3] for p in mine], s=30, color=plt.get_cmap("tab10")(i), label=model)
            for p in mine:
                axis.annotate(p[1], (p[2], p[3]), textcoords="offset points", xytext=(3, 3), fontsize=7)
        axis.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
        axis.set_xlabel("last-layer drift (1 - calibrated CKA)")
        axis.set_ylabel("change in headline accuracy (points)")
        if not np.isfinite(rho):
            stated = "n/a (< 3 points)"
        elif not np.isfinite(low):
            stated = f"{rho:+.2f} (no interval under {MIN_INTERVAL_POINTS} points)"
        else:
            stated = f"{rho:+.2f} [{low:+.2f}, {high:+.2f}]"
        axis.set_title(f"{protocol}: Spearman ρ {stated}, n={len(x)}", fontsize=9)
        axis.legend(fontsize=7)
    caption = (
        "Last-layer drift (1 - calibrated CKA) against the change in headline accuracy over the base, per model and "
        "dataset; Spearman's ρ with its 95 % percentile-bootstrap interval (none under 5 points)."
    )
    return plots.save(figure, folder, "drift_vs_accuracy", caption)

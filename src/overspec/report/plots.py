"""The report's figures, each saved as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    figure.savefig(folder / f"{name}.svg", bbox_inches="tight")
    figure.savefig(folder / f"{name}.png", dpi=130, bbox_inches="tight")
    pyplot().close(figure)
    return folder / f"{name}.png"


def gelo_chart(gelos: dict[str, dict[str, float]], folder: Path) -> Path:
    """Grouped bars: GELO per model (x) and protocol (colour), with the no-loss line at 1."""
    plt = pyplot()
    models = sorted({m for values in gelos.values() for m in values})
    protocols = sorted(gelos)
    figure, axis = plt.subplots(figsize=(max(5, 1.1 * len(models) + 2), 3.6))
    width = 0.8 / max(1, len(protocols))
    for i, protocol in enumerate(protocols):
        values = [gelos[protocol].get(m, np.nan) for m in models]
        axis.bar(np.arange(len(models)) + i * width - 0.4 + width / 2, values, width, label=protocol)
    axis.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    axis.set_xticks(np.arange(len(models)), models, rotation=30, ha="right")
    axis.set_ylabel("GELO (fine-tuned / base)")
    axis.set_title("General-knowledge retention (GELO)")
    axis.legend()
    return save(figure, folder, "gelo")


def change_heatmap(changes: dict[str, dict[str, float]], protocol: str, folder: Path) -> Path:
    """Models x datasets, coloured by the relative change of the headline metric against the base."""
    plt = pyplot()
    models = sorted(changes)
    datasets = sorted({d for row in changes.values() for d in row})
    grid = np.array([[changes[m].get(d, np.nan) * 100 for d in datasets] for m in models])
    limit = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1
    figure, axis = plt.subplots(figsize=(max(5, 0.6 * len(datasets) + 2), 0.5 * len(models) + 1.8))
    image = axis.imshow(grid, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    axis.set_xticks(range(len(datasets)), datasets, rotation=45, ha="right")
    axis.set_yticks(range(len(models)), models)
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            axis.text(j, i, f"{value:+.0f}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axis, label="relative change vs base (%)")
    axis.set_title(f"Per-dataset change, {protocol}")
    return save(figure, folder, f"change_{protocol}")


def tradeoff_scatter(points: list[tuple[str, float, float]], folder: Path, ylabel: str) -> Path:
    """One point per model: biometric gain on its own task (x) against GELO (y)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.8))
    for name, gain, gelo in points:
        axis.scatter(gain, gelo, s=40)
        axis.annotate(name, (gain, gelo), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axis.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axis.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    axis.set_xlabel("biometric gain over the base (points, own task)")
    axis.set_ylabel(ylabel)
    axis.set_title("Trade-off: specialisation vs generality")
    return save(figure, folder, "tradeoff")

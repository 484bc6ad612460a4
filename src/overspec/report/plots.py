"""The report's general figures, each drawn in the report's style (``style.py``), saved as PNG, SVG and PDF, and
captioned with what is plotted, on what, and with which interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overspec.report.style import DIVERGING, Figure, pyplot, save, styled

# kept for callers that drew with the report's helpers before style.py (e.g. sweep/curve.py)
__all__ = ["Figure", "change_heatmap", "gelo_chart", "luminance", "pyplot", "save", "text_colour", "tradeoff_scatter"]


@styled
def gelo_chart(gelos: dict, folder: Path) -> Figure:
    """Grouped bars from the no-change line at 1: GELO per model (x) and protocol (colour), whiskers its 95 % interval.
    ``gelos``: protocol -> model -> ``GeloResult``."""
    plt = pyplot()
    models = sorted({m for values in gelos.values() for m in values})
    protocols = sorted(gelos)
    figure, axis = plt.subplots(figsize=(max(4.5, 1.0 * len(models) + 2), 3.4))
    width = 0.8 / max(1, len(protocols))
    over = set()
    for i, protocol in enumerate(protocols):
        results = [gelos[protocol].get(m) for m in models]
        values = np.array([np.nan if r is None else r.gelo for r in results])
        low = np.array([np.nan if r is None else r.ci[0] for r in results])
        high = np.array([np.nan if r is None else r.ci[1] for r in results])
        over |= {r.interval_over for r in results if r is not None}
        x = np.arange(len(models)) + i * width - 0.4 + width / 2
        errors = np.abs(np.vstack([values - low, high - values]))
        # bars grow from the no-change line (1), so a zoomed axis does not exaggerate them
        axis.bar(
            x, values - 1, width, bottom=1, label=protocol.replace("_", " "), yerr=errors, capsize=3, ecolor="#333"
        )
    axis.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    axis.set_xticks(np.arange(len(models)), models, rotation=30, ha="right")
    axis.set_ylabel("GELO (fine-tuned / base)")
    axis.set_title("General-knowledge retention (GELO)")
    finite = [v for p in gelos.values() for r in p.values() for v in (r.ci[0], r.ci[1], r.gelo) if np.isfinite(v)]
    if finite:
        low, high = min(finite + [1.0]), max(finite + [1.0])
        pad = max(0.01, 0.1 * (high - low))
        axis.set_ylim(low - pad, high + pad)
    axis.legend()
    caption = (
        f"GELO per model and protocol ({', '.join(p.replace('_', ' ') for p in protocols)}): the fine-tuned model's "
        "mean headline metric over the general suite divided by its base's; whiskers: 95% interval, paired "
        f"bootstrap over {' or '.join(sorted(over)) or 'datasets'}; bars start at the no-change line (1)."
    )
    return save(figure, folder, "gelo", caption)


def luminance(rgb) -> float:
    """Relative luminance of an sRGB colour (WCAG 2.x / ITU-R BT.709 weights on linearised channels)."""
    channels = np.asarray(rgb[:3], dtype=float)
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def text_colour(rgb) -> str:
    """Black or white, whichever contrasts more with a cell of colour ``rgb`` (WCAG contrast ratio)."""
    light = luminance(rgb)
    return "black" if (light + 0.05) / 0.05 >= 1.05 / (light + 0.05) else "white"


def heatmap_fits(changes: dict[str, dict[str, float]]) -> bool:
    """A heatmap only from 2 x 2 up: below, the changes table says it all."""
    return len(changes) >= 2 and len({d for row in changes.values() for d in row}) >= 2


@styled
def change_heatmap(changes: dict[str, dict[str, float]], protocol: str, folder: Path) -> Figure:
    """Models x datasets, coloured by the relative change of the headline metric against the base (a diverging
    map centred at 0), each cell's number in black or white by its colour's luminance."""
    from matplotlib.colors import CenteredNorm

    plt = pyplot()
    models = sorted(changes)
    datasets = sorted({d for row in changes.values() for d in row})
    grid = np.array([[changes[m].get(d, np.nan) * 100 for d in datasets] for m in models])
    limit = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    norm = CenteredNorm(vcenter=0.0, halfrange=limit or 1.0)
    cmap = plt.get_cmap(DIVERGING)
    figure, axis = plt.subplots(figsize=(max(4.5, 0.6 * len(datasets) + 2.5), 0.45 * len(models) + 1.8))
    image = axis.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
    axis.grid(False)
    axis.set_xticks(range(len(datasets)), datasets, rotation=45, ha="right")
    axis.set_yticks(range(len(models)), models)
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            colour = text_colour(cmap(norm(value)))
            axis.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axis, label="relative change vs base (%)")
    axis.set_title(f"Per-dataset change, {protocol.replace('_', ' ')}")
    caption = (
        f"Relative change (%) of each dataset's headline metric, {protocol.replace('_', ' ')}, fine-tuned model "
        "(rows) against its base, per general dataset (columns); red: loss, blue: gain, white: no change. Point "
        "estimates; each change's 95% interval and McNemar p are in the changes table."
    )
    return save(figure, folder, f"change_{protocol}", caption)


@styled
def tradeoff_scatter(points: list[tuple[str, float, float, tuple[float, float]]], folder: Path, ylabel: str) -> Figure:
    """One point per model: biometric gain on its own task (x) against GELO (y) with its 95 % interval."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(4.8, 3.6))
    for colour, (name, gain, gelo, (low, high)) in zip(_cycle(), points, strict=False):
        axis.errorbar([gain], [gelo], yerr=[[gelo - low], [high - gelo]], fmt="o", color=colour, capsize=3)
        axis.annotate(name, (gain, gelo), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axis.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axis.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    axis.set_xlabel("biometric gain over the base (points, own task)")
    axis.set_ylabel(ylabel)
    axis.set_title("Trade-off: specialisation vs generality")
    caption = (
        f"Each fine-tuned model's mean headline gain over its base on its own task's benchmarks (x, points) against "
        f"its {ylabel} (y); whiskers: the GELO's 95% bootstrap interval (the gain is a point estimate); dashed: "
        "no change."
    )
    return save(figure, folder, "tradeoff", caption)


def _cycle():
    from overspec.report.style import PALETTE

    return iter(PALETTE * 4)

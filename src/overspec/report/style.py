"""The one look of every overspec figure: a matplotlib rc dict applied around each plotting function, and the
one way a figure is saved (vector PDF and SVG beside a PNG for the HTML page)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

RC = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,  # titles, labels and outside legends never overlap
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "lines.markersize": 5,
    "svg.fonttype": "none",  # text stays text in SVG
    "pdf.fonttype": 42,  # TrueType in PDF: editable, accepted by paper submission systems
}
# Okabe & Ito's colour-blind-safe palette (Nature Methods 8, 441, 2011)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
DIVERGING = "RdBu"  # change maps: red = loss, blue = gain, white = 0
FORMATS = ("png", "svg", "pdf")

F = TypeVar("F", bound=Callable)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rc() -> dict:
    from cycler import cycler

    return {**RC, "axes.prop_cycle": cycler(color=PALETTE)}


def styled(function: F) -> F:
    """Run ``function`` (which draws and saves figures) under the report's rc settings."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        import matplotlib

        pyplot()
        with matplotlib.rc_context(rc()):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Figure:
    """A saved figure: its PNG (the vector files lie beside it) and the caption saying what it shows."""

    path: Path
    caption: str

    @property
    def name(self) -> str:
        return self.path.stem


def save(figure, folder: Path, name: str, caption: str = "") -> Figure:
    """``folder/name.{png,svg,pdf}``; the caption is also written to ``name.txt`` so a report rebuilt from the folder
    (or a figure another command drew there) keeps it."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in FORMATS:
        figure.savefig(folder / f"{name}.{suffix}")
    pyplot().close(figure)
    if caption:
        (folder / f"{name}.txt").write_text(caption + "\n")
    return Figure(folder / f"{name}.png", caption)


def caption_of(png: Path) -> str:
    """The caption saved beside ``png``, else its name in words."""
    text = png.with_suffix(".txt")
    return text.read_text().strip() if text.exists() else png.stem.replace("_", " ")

"""Named linear-probe recipes: how features are normalised, the classifier trained, its regularisation chosen.

Each recipe is a function ``(x_train, y_train, x_test, n_classes, *, val_fraction, seed, device) -> ProbeFit``:
it carves its validation rows from train (``validation_carve``), picks its regularisation on them, refits on
train+val and returns test logits (``clip_benchmark_default`` has no validation split and no search).
``docs/conventions.md`` compares them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from overspec.errors import DataError
from overspec.registry import Registry


@dataclass
class ProbeFit:
    logits: np.ndarray  # (N_test, n_classes); a class absent from training gets -inf
    details: dict = field(default_factory=dict)  # the chosen regularisation, validation accuracy, path


PROBE_RECIPES: Registry[Callable[..., ProbeFit]] = Registry("probe recipe")
PROBE_RECIPES.register("lbfgs", "overspec.protocols.probe_recipes.lbfgs:lbfgs")
PROBE_RECIPES.register("clip_benchmark", "overspec.protocols.probe_recipes.clip_benchmark:clip_benchmark")
PROBE_RECIPES.register(
    "clip_benchmark_default", "overspec.protocols.probe_recipes.clip_benchmark:clip_benchmark_default"
)
PROBE_RECIPES.register("clip_paper", "overspec.protocols.probe_recipes.clip_paper:clip_paper")
DEFAULT_RECIPE = "lbfgs"


def validation_carve(y_train: np.ndarray, *, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(fit, validation)`` of train: class-stratified and seeded (``seeded_split``), shared by all recipes."""
    from overspec.data.labelled import seeded_split

    fit_rows, val_rows = seeded_split(y_train, test_fraction=val_fraction, seed=seed)
    if len(val_rows) == 0:
        raise DataError("the training split is too small to carve a validation split (each class needs 2+ images)")
    return fit_rows, val_rows


def full_logits(scores: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores over the classes seen in training, widened to all ``n_classes`` (unseen ones at -inf)."""
    logits = np.full((len(scores), n_classes), -np.inf, dtype=np.float64)
    logits[:, classes] = scores
    return logits

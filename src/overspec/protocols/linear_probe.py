"""Linear probe on frozen features: a named recipe (``probe_recipes``) fits a linear classifier on train."""

from __future__ import annotations

import numpy as np

from overspec._progress import steps
from overspec.data.labelled import LabelledDataset
from overspec.errors import ConfigError
from overspec.features import extract_features
from overspec.models.encoder import Encoder
from overspec.protocols.logistic import one_thread
from overspec.protocols.probe_recipes import DEFAULT_RECIPE, PROBE_RECIPES
from overspec.protocols.probe_recipes.lbfgs import fit_probe  # noqa: F401 (its home before recipes)
from overspec.protocols.result import ProtocolResult, classification_metrics, correct_top1


def k_shot_indices(labels: np.ndarray, k: int, *, seed: int) -> np.ndarray:
    """``k`` seeded random examples of each class (all of a class that has fewer)."""
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    *,
    recipe: str = DEFAULT_RECIPE,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[dict, dict]:
    """Pure probe on arrays by the named ``recipe`` (``PROBE_RECIPES``), the test split touched once, torch in one
    thread (``one_thread``: the same digits whatever thread count the process was given); ``progress``: a bar
    counting its fits. Returns ``(metrics, details)``."""
    recipe_fit = PROBE_RECIPES.get(recipe)
    with one_thread(), steps(progress, f"{recipe} probe: fits"):
        fitted = recipe_fit(x_train, y_train, x_test, n_classes, val_fraction=val_fraction, seed=seed, device=device)
    metrics = classification_metrics(fitted.logits, y_test)
    details = {
        "recipe": recipe,
        "correct": correct_top1(fitted.logits, y_test),
        **fitted.details,
        "n_train": int(len(y_train)),
    }
    return metrics, details


def check_linear_probe(
    encoder: Encoder, dataset: LabelledDataset, *, recipe: str = DEFAULT_RECIPE, k_shot: int | None = None, **_
) -> None:
    """What the probe needs before any image is read: a known recipe, a train and a test split, k >= 0."""
    PROBE_RECIPES.get(recipe)
    dataset.split("train"), dataset.split("test")
    if k_shot is not None and k_shot < 0:
        raise ConfigError(f"k_shot {k_shot}: give a number of examples per class (0 or none: the whole train split)")


def run_linear_probe(
    encoder: Encoder,
    dataset: LabelledDataset,
    *,
    k_shot: int | None = None,
    recipe: str = DEFAULT_RECIPE,
    seed: int = 0,
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """Linear-probe accuracy of ``encoder``'s frozen features on ``dataset`` (train -> test) by ``recipe``.
    Features do not depend on the recipe, so every recipe reads the same cached features."""
    check_linear_probe(encoder, dataset, recipe=recipe, k_shot=k_shot)
    train, test = dataset.split("train"), dataset.split("test")

    def features(split, name):
        return extract_features(
            encoder,
            split.images,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            description=f"{encoder.name} on {dataset.name}/{name}",
        )

    x_train, y_train = features(train, "train"), train.labels
    if "val" in dataset.splits:  # an official validation split joins train; the probe carves its own
        val = dataset.split("val")
        x_train, y_train = np.concatenate([x_train, features(val, "val")]), np.concatenate([y_train, val.labels])
    if k_shot:
        rows = k_shot_indices(y_train, k_shot, seed=seed)
        x_train, y_train = x_train[rows], y_train[rows]
    x_test = features(test, "test")
    metrics, details = probe(
        x_train,
        y_train,
        x_test,
        test.labels,
        len(dataset.classnames),
        recipe=recipe,
        seed=seed,
        device=str(encoder.device),
        progress=progress,
    )
    details["k_shot"] = k_shot
    details["n_classes"] = len(dataset.classnames)
    correct = details.pop("correct")
    return ProtocolResult(
        "linear_probe",
        dataset.name,
        encoder.name,
        metrics,
        dataset.headline_metric,
        details,
        {"correct": correct, "label": np.asarray(test.labels)},  # with the labels: per-class recall per resample
    )

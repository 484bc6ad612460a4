"""Linear probe on frozen features: multinomial logistic regression, l2 picked on a validation split."""

from __future__ import annotations

import numpy as np

from overspec.data.labelled import LabelledDataset, seeded_split
from overspec.errors import DataError
from overspec.features import extract_features
from overspec.models.encoder import Encoder
from overspec.protocols.logistic import LogisticModel, PathResult, Problem, fit_logistic, regularisation_path
from overspec.protocols.result import ProtocolResult, classification_metrics, correct_top1


def k_shot_indices(labels: np.ndarray, k: int, *, seed: int) -> np.ndarray:
    """``k`` seeded random examples of each class (all of a class that has fewer)."""
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def fit_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    n_classes: int,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
    final_tolerance: float = 1e-3,
) -> tuple[LogisticModel, PathResult, int]:
    """Validation split carved from train (class-stratified, seeded), l2 path on it, refit on train+val at
    the chosen l2 (to gradient ``final_tolerance``, warm-started). Returns (model, path, validation size)."""
    import torch

    fit_rows, val_rows = seeded_split(y_train, test_fraction=val_fraction, seed=seed)
    if len(val_rows) == 0:
        raise DataError("the training split is too small to carve a validation split (each class needs 2+ images)")
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y_train, dtype=torch.long, device=device)
    path_problem = Problem(xt[fit_rows], yt[fit_rows], n_classes)
    chosen = regularisation_path(path_problem, xt[val_rows], yt[val_rows])
    final = fit_logistic(
        Problem(xt, yt, n_classes, like=path_problem), chosen.l2, init=chosen.model, tolerance=final_tolerance
    )
    return final, chosen, len(val_rows)


def probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
    final_tolerance: float = 1e-3,
) -> tuple[dict, dict]:
    """Pure probe on arrays (``fit_probe``), the test split touched once. Returns ``(metrics, details)``."""
    import torch

    final, chosen, n_validation = fit_probe(
        x_train,
        y_train,
        n_classes,
        val_fraction=val_fraction,
        seed=seed,
        device=device,
        final_tolerance=final_tolerance,
    )
    with torch.no_grad():
        logits = final.logits(torch.as_tensor(x_test, dtype=torch.float32, device=device)).cpu().numpy()
    metrics = classification_metrics(logits, y_test)
    details = {
        "correct": correct_top1(logits, y_test),
        "l2": chosen.l2,
        "sklearn_C": 1.0 / (chosen.l2 * len(y_train)),
        "validation_acc1": chosen.validation_accuracy,
        "l2_path": [[l2, acc] for l2, acc, _ in chosen.path],
        "lbfgs_iterations": sum(i for _, _, i in chosen.path) + final.iterations,
        "n_train": int(len(y_train)),
        "n_validation": n_validation,
    }
    return metrics, details


def run_linear_probe(
    encoder: Encoder,
    dataset: LabelledDataset,
    *,
    k_shot: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """Linear-probe accuracy of ``encoder``'s frozen features on ``dataset`` (train -> test)."""
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
        x_train, y_train, x_test, test.labels, len(dataset.classnames), seed=seed, device=str(encoder.device)
    )
    details["k_shot"] = k_shot
    correct = details.pop("correct")
    return ProtocolResult(
        "linear_probe", dataset.name, encoder.name, metrics, dataset.headline_metric, details, {"correct": correct}
    )

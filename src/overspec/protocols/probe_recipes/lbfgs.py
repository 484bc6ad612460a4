"""overspec's own probe, the default: fast, and the minimiser of scikit-learn's ``LogisticRegression`` on
standardised features.

Features are z-scored per dimension (mean and standard deviation of the training rows); a multinomial
logistic regression is fitted by preconditioned full-batch L-BFGS (``protocols/logistic.py``) along an L2 path
1 .. 1e-8 with early stop and a half-decade refinement, picked on the validation rows, then refitted on
train+val at the chosen L2. Every fit runs to the optimum (``logistic.py``: float64, stopped on the gradient,
in one CPU thread), so the answer is the data's, the same at any thread count and on any executor.
"""

from __future__ import annotations

import numpy as np

from overspec._log import logger
from overspec.protocols.logistic import (
    GRADIENT_TOLERANCE,
    LogisticModel,
    PathResult,
    Problem,
    fit_logistic,
    one_thread,
    regularisation_path,
)
from overspec.protocols.probe_recipes import ProbeFit, validation_carve


def fit_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    n_classes: int,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[LogisticModel, PathResult, int]:
    """Validation split carved from train (class-stratified, seeded), l2 path on it, refit on train+val at
    the chosen l2 (warm-started), each fit to the optimum. Returns (model, path, validation size)."""
    import torch

    fit_rows, val_rows = validation_carve(y_train, val_fraction=val_fraction, seed=seed)
    with one_thread():
        xt = torch.as_tensor(x_train, device=device)
        yt = torch.as_tensor(y_train, dtype=torch.long, device=device)
        path_problem = Problem(xt[fit_rows], yt[fit_rows], n_classes)
        chosen = regularisation_path(path_problem, xt[val_rows], yt[val_rows])
        final = fit_logistic(Problem(xt, yt, n_classes, like=path_problem), chosen.l2, init=chosen.model)
    worst = max(final.gradient, chosen.gradient)
    if worst > GRADIENT_TOLERANCE:
        logger(__name__).warning(
            f"linear probe: an L-BFGS fit stopped at its iteration limit with gradient {worst:.1e} > "
            f"{GRADIENT_TOLERANCE:g}; its answer is not the optimum's and may depend on the device"
        )
    return final, chosen, len(val_rows)


def lbfgs(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    n_classes: int,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
) -> ProbeFit:
    """Z-scored features, torch L-BFGS along an L2 path (``fit_probe``); test logits and the chosen L2."""
    import torch

    final, chosen, n_validation = fit_probe(
        x_train, y_train, n_classes, val_fraction=val_fraction, seed=seed, device=device
    )
    with torch.no_grad(), one_thread():
        logits = final.logits(torch.as_tensor(x_test, device=device)).cpu().numpy()
    details = {
        "l2": chosen.l2,
        "sklearn_C": 1.0 / (chosen.l2 * len(y_train)),
        "validation_acc1": chosen.validation_accuracy,
        "l2_path": [[l2, acc] for l2, acc, _ in chosen.path],
        "lbfgs_iterations": sum(i for _, _, i in chosen.path) + final.iterations,
        "lbfgs_gradient": max(final.gradient, chosen.gradient),
        "n_validation": n_validation,
    }
    return ProbeFit(logits, details)

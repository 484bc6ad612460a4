"""The CLIP paper's linear probe (Radford et al. 2021, appendix A.3).

Raw features (no normalisation). scikit-learn's ``LogisticRegression`` with L-BFGS and ``max_iter=1000``.
The L2 strength is swept over [1e-6, 1e6] in 96 log-spaced steps (8 per decade) by the paper's parametric
binary search (``search.py``: seven starting values 10^-6, 10^-4, ..., 10^6, then halving the interval
around the peak down to one step), on the validation rows; then refit on train+val. The sweep runs over
scikit-learn's ``C`` (the inverse strength; the range is symmetric, so the grid is the same), ascending, so a
tie goes to the stronger regularisation. Fits that stop at ``max_iter`` are kept, as the paper's would be.
"""

from __future__ import annotations

import warnings

import numpy as np

from overspec._progress import step
from overspec.protocols.probe_recipes import ProbeFit, full_logits, validation_carve
from overspec.protocols.probe_recipes.search import binary_search

C_GRID = np.logspace(-6, 6, num=97)
MAX_ITER = 1000


def fit_logistic_regression(x: np.ndarray, y: np.ndarray, c: float):
    """scikit-learn's L-BFGS multinomial logistic regression at inverse strength ``c``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = LogisticRegression(C=c, max_iter=MAX_ITER).fit(x, y)
    step(f"C {c:.1e}")  # the probe's progress bar, when one is open
    return fitted


def clip_paper(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    n_classes: int,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",  # scikit-learn runs on CPU
) -> ProbeFit:
    """Raw features, scikit-learn L-BFGS, C by the paper's binary search (module docstring)."""
    fit, val = validation_carve(y_train, val_fraction=val_fraction, seed=seed)

    def validation_accuracy(index: int) -> float:
        return float(
            fit_logistic_regression(x_train[fit], y_train[fit], float(C_GRID[index])).score(x_train[val], y_train[val])
        )

    peak, tried = binary_search(len(C_GRID), validation_accuracy)
    best = float(C_GRID[peak])
    final = fit_logistic_regression(x_train, y_train, best)
    details = {
        "C": best,
        "validation_acc1": tried[peak],
        "C_path": [[float(C_GRID[i]), tried[i]] for i in sorted(tried)],
        "n_validation": len(val),
    }
    return ProbeFit(full_logits(final.predict_log_proba(x_test), final.classes_, n_classes), details)

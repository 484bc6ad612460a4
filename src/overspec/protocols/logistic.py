"""Multinomial logistic regression on fixed features: a full-batch, preconditioned L-BFGS solver in torch.

Written here rather than using scikit-learn because the probe sweeps a regularisation path on up to
millions of feature rows. Three things make it fast on CPU and GPU alike (``bench/linear_probe.py``
measures it against the scikit-learn sweep):
- full-batch L-BFGS in torch, any device; each evaluation is two matrix products (logits, weight gradient),
  the gradient written by hand (no autograd graph) on features stored transposed;
- preconditioning: features are rotated onto the principal axes of their covariance (variances s_j) and
  each axis is scaled by 1 / g_j with g_j = sqrt(s_j / C + l2), an estimate of the objective's curvature
  along it (softmax curvature ~1/C times the data variance, plus the penalty); the penalty is rewritten
  exactly in those coordinates (``||W||² = Σ_j ||V_j||² / g_j²``); the bias is scaled by sqrt(C), so that its
  constant feature has the second moment (~C) of a scaled axis. The problem becomes well conditioned at every l2,
  so L-BFGS needs far fewer iterations;
- warm starts along the regularisation path, from strong to weak;
- an objective evaluated in row chunks when the logits would be large (ImageNet-1k train features: 1.28 M rows x
  1,000 classes are 5 GB of logits), its gradient accumulated chunk by chunk, so memory stays bounded.

Objective (the minimiser of scikit-learn's ``LogisticRegression(C)`` on standardised features, with
``C = 1 / (l2 · n)``):  mean_i CE(W z_i + b, y_i) + (l2 / 2) · ||W||²  (the bias is not penalised).

Stopping rule: the objective is strictly convex in W (and in b up to a constant shift, which no prediction sees),
so it has one minimiser, and a fit stops there: when the largest component of the gradient (in the
preconditioned coordinates) is at most ``GRADIENT_TOLERANCE``, in float64 (float32's rounding of the gradient is
above that). Every fit of the path and the final one use this rule, so the answer depends on the data, not on
the L-BFGS trajectory: not on the thread count, the executor or the device, whose roundings differ. A fit that
reaches ``max_iter`` first is reported (``converged``) and warned about.

Stopping at a gradient bound leaves the fit within a small distance of the minimiser, not on it: along directions
the training rows separate, the curvature is only ~l2, so two trajectories that stopped at 1e-6 can still differ
by ~0.1 in a logit. On a CPU, probes therefore run their arithmetic in one thread (``one_thread``): a fixed
reduction order, so the trajectory, and every digit, is the same whatever thread count the process was given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from overspec._progress import step

DTYPE = torch.float64  # float32 cannot resolve GRADIENT_TOLERANCE: its rounding steers the fit by the thread count
GRADIENT_TOLERANCE = 1e-6  # largest gradient component at which a fit stops (preconditioned coordinates)
MAX_ITER = 2000  # L-BFGS iterations per fit, a safety net: fits stop on the gradient long before
LOGITS_BUDGET = 1 << 28  # bytes of one objective chunk's logits and scaled features


@contextmanager
def one_thread() -> Iterator[None]:
    """torch, and NumPy's BLAS where threadpoolctl (scikit-learn's dependency) is installed, in one thread for the
    block, then as before: how many threads a matrix product or a sum is split over changes the order of its
    additions, so its last digits, so an L-BFGS trajectory."""
    from contextlib import nullcontext

    threads = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # then NumPy's BLAS keeps its threads; the torch solver does not use it
        blas = nullcontext()
    else:
        blas = threadpool_limits(limits=1, user_api="blas")
    torch.set_num_threads(1)
    try:
        with blas:
            yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class LogisticModel:
    weight: torch.Tensor  # (D, C), acting on standardised features
    bias: torch.Tensor  # (C,)
    mean: torch.Tensor  # standardisation fitted on the training rows
    scale: torch.Tensor
    iterations: int
    gradient: float = 0.0  # the largest gradient component where the fit stopped

    @property
    def converged(self) -> bool:
        return self.gradient <= GRADIENT_TOLERANCE

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.scale) @ self.weight + self.bias


class Problem:
    """Training rows prepared once per row set: standardised, then rotated onto principal axes."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        n_classes: int,
        *,
        like: Problem | None = None,
        chunk_rows: int | None = None,
    ) -> None:
        """``like``: reuse another problem's principal axes (e.g. the refit on train+val reuses those of
        train): any orthonormal basis leaves the objective unchanged, it only preconditions. ``chunk_rows``: rows
        per chunk of the objective (default: what keeps a chunk's logits and features near 256 MB). Features are
        held in ``DTYPE``."""
        x = x.to(DTYPE)
        self.y, self.n_classes = y, n_classes
        self.chunk_rows = chunk_rows or max(1024, LOGITS_BUDGET // (x.element_size() * (n_classes + x.shape[1])))
        self.mean = x.mean(dim=0)
        self.scale = x.std(dim=0).clamp_min(1e-6)
        z = (x - self.mean) / self.scale
        if like is None:
            covariance = (z.T @ z) / len(z)
            eigenvalues, basis = torch.linalg.eigh(covariance)
            self.variance, self.basis = eigenvalues.clamp_min(0), basis
        else:
            self.variance, self.basis = like.variance, like.basis
        # rotated features stored transposed, (D, N): both products of an evaluation (logits, weight gradient) run
        # faster on this layout than on (N, D) (bench/linear_probe.py)
        self.zt = self.basis.T @ z.T

    @property
    def bias_gain(self) -> float:
        """The bias is optimised as ``bias * bias_gain``: its constant feature then weighs like a scaled axis."""
        return 1.0 / self.n_classes**0.5

    def gains(self, l2: float) -> torch.Tensor:
        return (self.variance / self.n_classes + l2).sqrt()

    def to_preconditioned(self, weight: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        return (self.basis.T @ weight) * gains[:, None]

    def from_preconditioned(self, weight: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        return self.basis @ (weight / gains[:, None])


def fit_logistic(
    problem: Problem,
    l2: float,
    *,
    init: LogisticModel | None = None,
    max_iter: int = MAX_ITER,
    tolerance: float = GRADIENT_TOLERANCE,
) -> LogisticModel:
    """Minimise the objective at ``l2`` on ``problem``, warm-started from ``init`` (any earlier fit), until the
    largest gradient component is at most ``tolerance`` (module docstring)."""
    gains, bias_gain = problem.gains(l2), problem.bias_gain
    c, n = problem.n_classes, len(problem.y)
    scaled = problem.zt / gains[:, None] if problem.chunk_rows >= n else None  # else scaled chunk by chunk
    if init is not None:
        # express the earlier model on this problem's standardisation, then in preconditioned coordinates
        w0 = init.weight * (problem.scale / init.scale)[:, None]
        b0 = init.bias + ((problem.mean - init.mean) / init.scale) @ init.weight
        weight, bias = problem.to_preconditioned(w0, gains), b0 * bias_gain
    else:
        # cold start: one unit step along the preconditioned negative gradient at zero (the curvature is ~1
        # in these coordinates), so L-BFGS's tiny first step 1/|g|_1 does not cost a long line search
        onehot = torch.nn.functional.one_hot(problem.y, c).to(problem.zt.dtype)
        residual = (1.0 / c - onehot) / n
        weight, bias = -((problem.zt @ residual) / gains[:, None]), -residual.sum(dim=0) / bias_gain
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=max_iter,
        max_eval=2 * max_iter,
        history_size=20,
        tolerance_grad=tolerance,
        tolerance_change=0.0,  # stop on the gradient only: a small change of the loss is no optimum
        line_search_fn="strong_wolfe",
    )
    largest = [float("inf")]

    def closure() -> torch.Tensor:
        loss, weight.grad, grad_bias = loss_and_gradient(problem, weight, bias / bias_gain, l2, gains, scaled=scaled)
        bias.grad = grad_bias / bias_gain
        largest[0] = float(torch.maximum(weight.grad.abs().max(), bias.grad.abs().max()))
        return loss

    optimizer.step(closure)
    iterations = int(optimizer.state[weight].get("n_iter", 0))
    step(f"l2 {l2:.1e}, {iterations} iterations")  # the probe's progress bar, when one is open
    return LogisticModel(
        problem.from_preconditioned(weight.detach(), gains),
        bias.detach() / bias_gain,
        problem.mean,
        problem.scale,
        iterations,
        largest[0],
    )


@torch.no_grad()
def loss_and_gradient(
    problem: Problem,
    weight: torch.Tensor,
    bias: torch.Tensor,
    l2: float,
    gains: torch.Tensor,
    *,
    scaled: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The objective at preconditioned ``(weight, bias)`` and its gradient, by hand (softmax minus one-hot, over n)
    rather than by autograd: no graph to record, and the transposed features serve both matrix products. In row
    chunks of ``problem.chunk_rows`` (the mean over rows as a sum of chunk sums) unless ``scaled``, the whole
    ``problem.zt / gains``, is given."""
    n = len(problem.y)
    penalty = (l2 / 2) / (gains * gains)[:, None]
    loss = (penalty * weight * weight).sum()
    grad_weight, grad_bias = 2 * penalty * weight, torch.zeros_like(bias)
    step = n if scaled is not None else problem.chunk_rows
    for start in range(0, n, step):
        rows = slice(start, start + step)
        features = scaled[:, rows] if scaled is not None else problem.zt[:, rows] / gains[:, None]
        log_p = torch.log_softmax(features.T @ weight + bias, dim=1)
        labels = problem.y[rows]
        picked = torch.arange(len(labels), device=labels.device)
        loss -= log_p[picked, labels].sum() / n
        residual = log_p.exp_()
        residual[picked, labels] -= 1
        residual /= n
        grad_weight.addmm_(features, residual)
        grad_bias += residual.sum(dim=0)
    return loss, grad_weight, grad_bias


def accuracy(model: LogisticModel, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model.logits(x).argmax(dim=1) == y).float().mean())


@dataclass
class PathResult:
    l2: float
    validation_accuracy: float
    path: list[tuple[float, float, int]]  # (l2, validation accuracy, L-BFGS iterations) per value tried
    model: LogisticModel
    gradient: float  # the largest gradient component where any fit of the path stopped


DEFAULT_GRID = np.logspace(0, -8, 9)


def regularisation_path(
    problem: Problem,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    grid: np.ndarray = DEFAULT_GRID,
    patience: int = 1,
    refine: int = 1,
) -> PathResult:
    """Pick l2 by validation accuracy.

    Walks ``grid`` (decades, strong to weak regularisation), each fit warm-started from the previous and run to
    the optimum (``fit_logistic``), and stops once validation accuracy has failed to beat its best ``patience``
    times in a row (weaker values cost the most iterations, a tie cannot win and they only overfit further); then
    tries ``refine`` half-decade steps on each side of the best. Ties go to the stronger regularisation.
    """
    tried: dict[float, tuple[float, LogisticModel]] = {}
    model, stale = None, 0
    for l2 in grid:
        model = fit_logistic(problem, float(l2), init=model)
        tried[float(l2)] = (accuracy(model, x_val, y_val), model)
        best = max(tried, key=lambda k: (tried[k][0], k))
        stale = 0 if best == float(l2) else stale + 1
        if stale >= patience:
            break
    best = max(tried, key=lambda k: (tried[k][0], k))
    step = 10**0.5
    for candidate in [best * step**i for i in range(1, refine + 1)] + [best / step**i for i in range(1, refine + 1)]:
        model = fit_logistic(problem, candidate, init=tried[best][1])
        tried[candidate] = (accuracy(model, x_val, y_val), model)
    best = max(tried, key=lambda k: (tried[k][0], k))
    path = sorted(((k, v[0], v[1].iterations) for k, v in tried.items()), reverse=True)
    gradient = max(m.gradient for _, m in tried.values())
    return PathResult(best, tried[best][0], path, tried[best][1], gradient)

"""CLIP_benchmark's linear probe (``clip_benchmark/metrics/linear_probe.py``, version 1.6.2), reimplemented.

Features are L2-normalised (its ``Featurizer``). One linear layer is trained with AdamW (lr 0.1, 10 epochs,
batch 64, its CLI defaults), cross-entropy and a cosine learning-rate schedule without warm-up, stepped per
batch. The weight decay comes from ``np.logspace(-6, 2, 97)`` by its binary search (``search.py``) on the
validation rows; the final layer is trained on the fit rows followed by the validation rows (its
``np.concatenate``) at that weight decay.

Seeds and data order are its ``train``'s: ``torch.manual_seed(seed)``, ``nn.Linear``'s initialisation, then
each epoch the two draws of a shuffling ``DataLoader`` (the iterator's base seed, the ``RandomSampler``'s seed)
and a ``randperm``. A private generator stands in for the global one, so the caller's torch RNG is left
alone. Differences: float32 throughout (its ``--no_amp``; by default it trains under CUDA autocast), any
device (it insists on CUDA), and the validation rows are overspec's seeded carve (its ``--val_proportion``
splits with torch's global RNG after model creation, which no other program can replay).

``clip_benchmark_default`` is its path without a validation split (its default: no ``--val_proportion``): weight
decay 0, no search, the layer trained on all training rows. Rows enter in dataset order (its ``evaluate`` first
permutes them with torch's global RNG, which no other program can replay; the ``DataLoader``'s seeded shuffle
follows either way).
"""

from __future__ import annotations

import math

import numpy as np

from overspec import _progress
from overspec.protocols.probe_recipes import ProbeFit, full_logits, validation_carve
from overspec.protocols.probe_recipes.search import binary_search

WEIGHT_DECAYS = np.logspace(-6, 2, num=97)
LEARNING_RATE, EPOCHS, BATCH_SIZE = 0.1, 10, 64


def train_linear(
    x,
    y,
    n_outputs: int,
    weight_decay: float,
    *,
    seed: int,
    lr: float = LEARNING_RATE,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
):
    """CLIP_benchmark's ``train`` on feature tensors ``x`` (N, D) and labels ``y`` (N,): ``(weight, bias)``."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    weight = torch.empty(n_outputs, x.shape[1])
    bias = torch.empty(n_outputs)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)  # nn.Linear.reset_parameters
    torch.nn.init.uniform_(bias, -1 / math.sqrt(x.shape[1]), 1 / math.sqrt(x.shape[1]), generator=generator)
    weight = weight.to(x.device).requires_grad_(True)
    bias = bias.to(x.device).requires_grad_(True)
    optimizer = torch.optim.AdamW([weight, bias], lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * steps_per_epoch
    for epoch in range(epochs):
        for i, rows in enumerate(_epoch_order(len(x), generator).split(batch_size)):
            step = i + epoch * steps_per_epoch
            optimizer.param_groups[0]["lr"] = 0.5 * (1 + np.cos(np.pi * step / total)) * lr  # its cosine_lr
            optimizer.zero_grad()
            rows = rows.to(x.device)
            F.cross_entropy(F.linear(x[rows], weight, bias), y[rows]).backward()
            optimizer.step()
    _progress.step(f"weight decay {weight_decay:.1e}")  # the probe's progress bar, when one is open
    return weight.detach(), bias.detach()


def _epoch_order(n: int, generator):
    """The row order of one epoch of ``DataLoader(shuffle=True)`` drawing from ``generator``."""
    import torch

    torch.empty((), dtype=torch.int64).random_(generator=generator)  # the iterator's base seed (unused here)
    seed = int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def clip_benchmark(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    n_classes: int,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
) -> ProbeFit:
    """L2-normalised features, AdamW-trained linear layer, weight decay by binary search (module docstring)."""
    import torch
    import torch.nn.functional as F

    fit_rows, val_rows = validation_carve(y_train, val_fraction=val_fraction, seed=seed)
    x = F.normalize(torch.as_tensor(x_train, dtype=torch.float32, device=device), dim=-1)
    y = torch.as_tensor(y_train, dtype=torch.long, device=device)
    n_outputs = int(y_train.max()) + 1  # as its output_shape: targets.max() + 1
    fit, val = torch.as_tensor(fit_rows, device=device), torch.as_tensor(val_rows, device=device)

    def validation_accuracy(index: int) -> float:
        weight, bias = train_linear(x[fit], y[fit], n_outputs, float(WEIGHT_DECAYS[index]), seed=seed)
        with torch.no_grad():
            return float((F.linear(x[val], weight, bias).argmax(dim=1) == y[val]).sum()) / len(val)

    peak, tried = binary_search(len(WEIGHT_DECAYS), validation_accuracy)
    best = float(WEIGHT_DECAYS[peak])
    rows = torch.cat([fit, val])
    weight, bias = train_linear(x[rows], y[rows], n_outputs, best, seed=seed)
    with torch.no_grad():
        test = F.normalize(torch.as_tensor(x_test, dtype=torch.float32, device=device), dim=-1)
        scores = F.linear(test, weight, bias).cpu().numpy()
    details = {
        "weight_decay": best,
        "validation_acc1": tried[peak],
        "weight_decay_path": [[float(WEIGHT_DECAYS[i]), tried[i]] for i in sorted(tried)],
        "n_validation": len(val_rows),
    }
    return ProbeFit(full_logits(scores, np.arange(n_outputs), n_classes), details)


def clip_benchmark_default(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    n_classes: int,
    *,
    val_fraction: float = 0.2,  # unused: this path has no validation split
    seed: int = 0,
    device: str = "cpu",
) -> ProbeFit:
    """L2-normalised features, AdamW-trained linear layer at weight decay 0 on all training rows (module docstring)."""
    import torch
    import torch.nn.functional as F

    x = F.normalize(torch.as_tensor(x_train, dtype=torch.float32, device=device), dim=-1)
    y = torch.as_tensor(y_train, dtype=torch.long, device=device)
    n_outputs = int(y_train.max()) + 1  # as its output_shape: targets.max() + 1
    weight, bias = train_linear(x, y, n_outputs, 0.0, seed=seed)
    with torch.no_grad():
        test = F.normalize(torch.as_tensor(x_test, dtype=torch.float32, device=device), dim=-1)
        scores = F.linear(test, weight, bias).cpu().numpy()
    return ProbeFit(full_logits(scores, np.arange(n_outputs), n_classes), {"weight_decay": 0.0, "n_validation": 0})

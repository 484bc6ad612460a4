"""torch's thread count is set from the cores the process may use, and the user's OMP_NUM_THREADS wins."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from overspec._threads import set_torch_threads, usable_cores
from overspec.features.extract import DEFAULT_BATCH_SIZE, default_batch_size, default_workers


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_torch_threads_follow_the_cores_given_unless_omp_num_threads_is_set(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert usable_cores() == len(os.sched_getaffinity(0))
    assert set_torch_threads(1) == 1
    assert set_torch_threads(2.0) == 2  # a Ray cell's num_cpus is a float
    assert set_torch_threads() == usable_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(2)
    assert set_torch_threads(1) == 2  # left as the user's environment made it


def test_loader_workers_leave_a_core_to_torch_and_batches_fit_the_device(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    assert default_workers() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert default_workers() == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert default_workers() == 8
    assert default_batch_size(torch.device("cpu")) == DEFAULT_BATCH_SIZE["cpu"] == 16
    assert default_batch_size("cuda") == 64 and default_batch_size(torch.device("cuda", 1)) == 64


def test_the_linear_probe_gives_one_answer_at_1_and_2_threads(restore_threads):
    """Separable-ish features (600 x 1,280, weak class structure) on which the float32 probe that stopped at a loose
    gradient gave acc1 0.2000 at 1 thread and 0.2033 at 2: now the same logits to the last bit."""
    from overspec.protocols.probe_recipes.lbfgs import lbfgs

    rng = np.random.default_rng(4)
    centres, basis = rng.normal(size=(10, 1280)) * 0.05, rng.normal(size=(1280, 1280)) / np.sqrt(1280)

    def draw(m):
        y = np.repeat(np.arange(10), m // 10)
        return (centres[y] + rng.normal(size=(m, 1280)) @ basis).astype(np.float32), y

    (x, y), (xt, _) = draw(600), draw(300)
    fits = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        fits.append(lbfgs(x, y, xt, 10))
    assert np.array_equal(fits[0].logits, fits[1].logits)
    assert fits[0].details == fits[1].details and fits[0].details["lbfgs_gradient"] <= 1e-6
    assert torch.get_num_threads() == 2  # the caller's thread count is given back

"""``overspec run --executor ray``: cells on a Ray cluster (or a Ray instance started for the run).

One actor per model evaluates that model's cells in turn, so a ViT-L/14 is loaded once per actor, not once per
cell; an actor holds ``cpus_per_cell`` CPUs and ``gpus_per_cell`` GPUs (Ray assigns ``CUDA_VISIBLE_DEVICES``) and is
released when its model's cells are done. Actors return each cell's rows and arrays; the driver commits them. A
worker process that dies is restarted and its cell retried (``max_retries``); a cell that still fails is reported
and left unfinished, so the next ``overspec run`` retries it.
"""

from __future__ import annotations

import os

from overspec._threads import usable_cores
from overspec.errors import ConfigError, OverspecError
from overspec.runner.executors import Job, identity

# Test hook: "DATASET:MARKER" makes a worker process die (os._exit) the first time it starts a cell of DATASET
# (the marker file records that it did), as a killed node would.
DIE_ONCE = "OVERSPEC_TEST_RAY_DIE_ONCE"


class CellWorker:
    """A Ray actor: the models and datasets of one run, loaded as its cells need them."""

    def __init__(self, experiment, cells, cores: float) -> None:
        """``cores``: the CPUs Ray reserved for this actor, torch's thread count in it."""
        from overspec.runner.run import _Resources

        self.experiment, self.resources = experiment, _Resources(experiment, cells, cores=cores)

    def compute(self, cell):
        from overspec.runner.run import compute_cell

        _maybe_die(cell)
        return compute_cell(cell, self.resources, **identity(self.experiment))


def _maybe_die(cell) -> None:
    dataset, _, marker = os.environ.get(DIE_ONCE, "").partition(":")
    if dataset and cell.dataset == dataset and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)


def run_on_ray(job: Job, settings) -> None:
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        _start(ray, settings)
    try:
        _run(ray, job, settings)
    finally:
        if started:
            ray.shutdown()


def _ray():
    try:
        import ray
    except ImportError:
        raise OverspecError("--executor ray needs Ray: pip install 'overspec[ray]'") from None
    return ray


def _start(ray, settings) -> None:
    """Join the cluster at ``settings.address``, or start a Ray instance on this machine for the run."""
    passed = {k: v for k, v in os.environ.items() if k.startswith(("OVERSPEC_", "HF_", "TRANSFORMERS_"))}
    options = {"runtime_env": {"env_vars": passed}, "log_to_driver": False}
    try:
        if settings.address:
            ray.init(address=settings.address, **options)
        else:
            ray.init(num_cpus=usable_cores(), include_dashboard=False, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = settings.address or "a local instance"
        raise OverspecError(f"cannot start Ray on {where}: {str(exc).splitlines()[0]}") from None


def check_fits(ray, settings) -> None:
    """A worker that asks for more CPUs or GPUs than any node has would wait for them forever (Ray queues it
    without a word): refuse it at once, saying what the cluster has."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    asked = {"CPU": settings.cpus_per_cell, "GPU": settings.gpus_per_cell}
    fits = any(all(node.get(kind, 0) >= amount for kind, amount in asked.items()) for node in nodes)
    if not fits:
        total = ray.cluster_resources()
        largest = {kind: max((node.get(kind, 0) for node in nodes), default=0) for kind in asked}
        raise ConfigError(
            f"ray: a cell asks for {asked['CPU']:g} CPUs and {asked['GPU']:g} GPUs, but no node of the cluster has "
            f"that (largest: {largest['CPU']:g} CPUs, {largest['GPU']:g} GPUs; in all {total.get('CPU', 0):g} CPUs, "
            f"{total.get('GPU', 0):g} GPUs), so it would wait forever; lower --cpus-per-cell / --gpus-per-cell "
            "(executor.cpus_per_cell / gpus_per_cell) or add nodes"
        )


def _run(ray, job: Job, settings) -> None:
    from overspec._progress import progress_bar

    check_fits(ray, settings)
    worker = ray.remote(CellWorker).options(
        num_cpus=settings.cpus_per_cell,
        num_gpus=settings.gpus_per_cell,
        max_restarts=settings.max_retries,
        max_task_retries=settings.max_retries,
    )
    by_model: dict[str, list] = {}
    for cell in job.todo:
        by_model.setdefault(cell.model.name, []).append(cell)
    pending, actors, left = {}, {}, {}
    for model, cells in by_model.items():
        actors[model] = worker.remote(job.experiment, job.cells, settings.cpus_per_cell)
        left[model] = len(cells)
        pending.update({actors[model].compute.remote(cell): cell for cell in cells})
    job.log(f"ray: {len(job.todo)} cells of {len(by_model)} models on {ray.cluster_resources().get('CPU', 0):g} CPUs")
    failed, finished = [], 0
    with progress_bar(True, "cells", len(job.todo)) as advance:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as exc:
                failed.append(cell)
                job.log(f"failed: {cell.label}: {_reason(exc)}")
            else:
                finished += 1
                job.commit(cell, outcome)
                job.log(job.done_line(finished, cell, outcome))
            advance(1)
            left[cell.model.name] -= 1
            if not left[cell.model.name]:
                ray.kill(actors.pop(cell.model.name))  # its CPUs / GPUs go to the next model
    if failed:
        raise OverspecError(
            f"{len(failed)} of {len(job.todo)} cells failed (listed above) and are left unfinished; "
            "the finished ones are stored: run again to retry the rest"
        )


def _reason(exc) -> str:
    cause = getattr(exc, "cause", None)
    text = str(cause if cause is not None else exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__

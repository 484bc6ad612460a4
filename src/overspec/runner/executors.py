"""How a run's cells are executed: here, one after another (``local``), or across a Ray cluster (``ray``).

An executor gets a ``Job``: the cells to evaluate, and ``commit``, which stores one cell's outcome. Executors only
compute; the driver alone writes the store, one cell's rows and completion mark per transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from overspec.registry import Registry

if TYPE_CHECKING:
    from overspec.config import ExecutorSettings, Experiment
    from overspec.runner.plan import Cell
    from overspec.runner.run import CellOutcome


@dataclass
class Job:
    experiment: Experiment
    cells: list[Cell]  # every cell of the run (what its models and datasets are)
    todo: list[Cell]  # the unfinished ones to evaluate, models outermost
    commit: Callable[[Cell, CellOutcome], None]
    log: Callable[[str], None]

    def done_line(self, position: int, cell: Cell, outcome: CellOutcome) -> str:
        return (
            f"[{position}/{len(self.todo)}] {cell.label}: {cell.protocol.headline} {outcome.headline:.4f} "
            f"({outcome.seconds:.1f} s on {outcome.node})"
        )


EXECUTORS: Registry[Callable[[Job, ExecutorSettings], None]] = Registry("executor")
EXECUTORS.register("ray", "overspec.runner.ray_executor:run_on_ray")


@EXECUTORS.register("local")
def run_here(job: Job, settings: ExecutorSettings) -> None:
    """One cell after another in this process (a model stays loaded while its cells run)."""
    from overspec.runner.run import _Resources, compute_cell

    resources = _Resources(job.experiment, job.cells)
    for position, cell in enumerate(job.todo, start=1):
        job.log(f"[{position}/{len(job.todo)}] {cell.label}")
        job.commit(cell, compute_cell(cell, resources, **identity(job.experiment)))


def identity(experiment: Experiment) -> dict:
    return {"run_id": experiment.name, "config_hash": experiment.config_hash}

"""Plan an experiment into independent cells and run them with a pluggable executor."""

from overspec.runner.plan import Cell, plan
from overspec.runner.run import RunSummary, run_experiment

__all__ = ["Cell", "RunSummary", "plan", "run_experiment"]

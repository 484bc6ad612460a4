"""Trade-off curves between a base model and its specialist: weight-space points, each evaluated as an
experiment, with the Pareto front and the knee. Orchestration over the runner and the analysis; it trains
nothing (``overspec finetune`` does)."""

from overspec.sweep.curve import SweepPoint, knee, pareto_front, point_spec, run_sweep

__all__ = ["SweepPoint", "knee", "pareto_front", "point_spec", "run_sweep"]

"""``overspec frontier CONFIG``: every method's points become models of the experiment, run as ordinary cells
(cached, resumable, local or on Ray), then each task's frontier is computed and written to ``frontier.json``
and the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from overspec.config import Experiment, ModelEntry, load_config
from overspec.errors import ConfigError
from overspec.frontier.points import PointFile, method_points, point_name


def load_frontier_config(path: str | Path) -> Experiment:
    """The experiment with its ``frontier:`` section; relative paths in it resolve against the config's folder."""
    from overspec.config import _against, _spec_against
    from overspec.configs import config_path

    path = config_path(path)
    experiment = load_config(path)
    settings = experiment.frontier
    if settings is None:
        raise ConfigError(f"{path}: no `frontier:` section; add one (base, methods) to run `overspec frontier`")
    folder = path.absolute().parent
    for method in settings.methods:
        if isinstance(method.model, str):
            method.model = _spec_against(folder, {"base": method.model})["base"]
        elif isinstance(method.model, dict):
            method.model = _spec_against(folder, method.model)
        if method.finetune is not None:
            method.finetune = _against(folder, method.finetune)
    if settings.wrap is not None:
        settings.wrap = _spec_against(folder, settings.wrap)
    check_frontier(experiment, str(path), relative=f"a path relative to {path.name}")
    return experiment


def check_frontier(experiment: Experiment, where: str, *, relative: str = "an absolute path") -> None:
    """What must hold before anything trains, for a config file and an ``Experiment`` alike: the base is a model,
    every method's task has a benchmark, every fine-tune config exists and reads, no point is named like a model."""
    from overspec.finetune.config import load_finetune_config
    from overspec.protocols.specs import side_effect_protocols

    settings = experiment.frontier
    names = [e.name for e in experiment.model_entries()]
    if settings.base not in names:
        raise ConfigError(f"{where}: key 'frontier.base': {settings.base} is not a model of `models:` ({names})")
    side = side_effect_protocols()  # a side effect is no benchmark of a task's performance
    tasks = sorted({b.task for b in experiment.biometric if b.protocol not in side})
    for i, method in enumerate(settings.methods):
        key = f"{where}: key 'frontier.methods.{i}"
        if method.task not in tasks:
            raise ConfigError(
                f"{key}.task': no benchmark of task {method.task} in `biometric:` (tasks there: "
                f"{', '.join(tasks) or 'none'}); add one, or give the method the task of one"
            )
        if method.finetune is not None:
            if not Path(method.finetune).is_file():
                raise ConfigError(
                    f"{key}.finetune': fine-tune config {method.finetune} does not exist; give an `overspec "
                    f"finetune` config ({relative})"
                )
            load_finetune_config(method.finetune)  # a bad fine-tune config fails now, before anything trains
    taken = sorted(set(names) & {point_name(m.name, v) for m in settings.methods for v in m.grid})
    if taken:
        raise ConfigError(f"{where}: frontier point {taken[0]} has the name of a model of `models:`; rename one")


def frontier_experiment(experiment: Experiment, points: list[PointFile]) -> Experiment:
    """The experiment with every point added as a model (its base the frontier's base): a point is evaluated
    on the general suite and on its own task's benchmarks only."""
    from overspec.protocols.specs import PROTOCOL_INFO, side_effect_protocols

    settings = experiment.frontier
    general = experiment.general.protocols if experiment.general else []
    entries = list(experiment.model_entries())
    side = side_effect_protocols()  # a point's score is its task's performance: no side-effect cells
    for point in points:
        own = sorted({b.protocol for b in experiment.biometric if b.task == point.task and b.protocol not in side})
        protocols = [*general, *own]
        unknown = [p for p in protocols if p not in PROTOCOL_INFO]
        if unknown:
            raise ConfigError(f"frontier point {point.name}: unknown protocol {unknown[0]}")
        entries.append(
            ModelEntry(name=point.name, spec=str(point.spec), base=settings.base, task=point.task, protocols=protocols)
        )
    return experiment.model_copy(update={"models": entries})


def run_frontier(
    config: str | Path | Experiment,
    *,
    out: str | Path | None = None,
    executor: str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Make every point (training where a method needs it), run the cells, write ``frontier.json`` and the
    report. Returns the path of ``frontier.json``."""
    from overspec._json import strict_dumps
    from overspec.frontier.summary import summarise
    from overspec.report import build_report
    from overspec.runner import run_experiment

    experiment = config if isinstance(config, Experiment) else load_frontier_config(config)
    if experiment.frontier is None:
        raise ConfigError(f"experiment {experiment.name} has no `frontier:` section")
    if experiment.general is None:
        raise ConfigError(f"experiment {experiment.name}: the frontier needs `general:` datasets for GELO")
    if isinstance(config, Experiment):  # a config file was checked as it loaded
        check_frontier(experiment, f"experiment {experiment.name}")
    out = Path(out) if out else experiment.output_dir()
    out.mkdir(parents=True, exist_ok=True)
    points = [
        p for m in experiment.frontier.methods for p in method_points(m, experiment.frontier, out / "frontier", log)
    ]
    run_experiment(frontier_experiment(experiment, points), out=out, executor=executor, report=False, log=log)
    summary = summarise(out, experiment, points)
    path = out / "frontier.json"
    path.write_text(strict_dumps(summary, indent=1))
    build_report(out)
    return path

"""Each method's points as model spec files: the update scaled (``sweep.point_spec``), or a fine-tune trained
with one forgetting-control weight. Training runs here, before the cells, once per value: a finished point
is reused while its config is unchanged, an interrupted one resumes after its last finished epoch."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from overspec._hashing import digest
from overspec.frontier.config import FrontierMethod, FrontierSettings


@dataclass(frozen=True)
class PointFile:
    method: str
    task: str
    strength: float
    name: str  # the model's name in results: METHOD@VALUE
    spec: Path


def point_name(method: str, value: float) -> str:
    return f"{method}@{value:g}"


def trained(config_path: str, out: Path, log, **forgetting) -> Path:
    """``overspec finetune`` of ``config_path`` into ``out`` with ``forgetting`` overriding its forgetting
    control; reused when ``out`` holds a finished run of the same config."""
    from overspec.finetune.config import FinetuneConfig, load_finetune_config
    from overspec.finetune.train import finetune

    loaded = load_finetune_config(config_path)
    data = loaded.model_dump()
    data["forgetting"] = {**data["forgetting"], **forgetting}
    data["output"] = str(out)
    config = FinetuneConfig.model_validate(data)
    key = digest(config.model_dump(mode="json", exclude={"workers"}))
    marker = out / "frontier.key"
    if (out / "model.yaml").exists() and marker.exists() and marker.read_text() == key:
        return out / "model.yaml"
    if marker.exists() and marker.read_text() != key:
        shutil.rmtree(out)  # trained with other settings: a stale checkpoint must not be resumed
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(key)
    log(f"frontier: training {out.name} ({', '.join(f'{k} {v:g}' for k, v in forgetting.items()) or 'as configured'})")
    return finetune(config, log=log, progress=False)


def method_points(method: FrontierMethod, settings: FrontierSettings, out: Path, log) -> list[PointFile]:
    from overspec.models import resolve_spec
    from overspec.sweep.curve import point_spec

    folder = out / "points" / method.name
    folder.mkdir(parents=True, exist_ok=True)
    points = []
    if method.strength == "scale":
        source = method.model
        if method.finetune is not None:  # train the specialist once, then scale its update
            source = str(trained(method.finetune, out / "train" / method.name, log))
        spec = resolve_spec(source)
        for value in method.grid:
            data = point_spec(spec, value)
            points.append(_write(folder, method, value, data, settings))
        return points
    for value in method.grid:
        model = trained(method.finetune, out / "train" / method.name / f"{value:g}", log, **{method.strength: value})
        points.append(_write(folder, method, value, str(model), settings))
    return points


def _write(folder: Path, method: FrontierMethod, value: float, model: dict | str, settings: FrontierSettings):
    """The point's spec file: the scaled spec, or the trained model's spec file, in ``wrap`` when given."""
    name = point_name(method.name, value)
    if isinstance(model, str) and not settings.wrap:
        return PointFile(method.name, method.task, value, name, Path(model))
    data = {**settings.wrap, "image": model} if settings.wrap else model
    path = folder / f"{value:g}.yaml"
    path.write_text(yaml.safe_dump({**data, "name": name}, sort_keys=False))
    return PointFile(method.name, method.task, value, name, path)

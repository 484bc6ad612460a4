"""The experiment config: a YAML validated by a typed schema. Paths may use environment variables.

name: paper
output: runs/paper
models:
  - clip-vit-b16.openai                                    # a zoo name
  - {name: my-fr, spec: specs/my_fr.yaml, base: clip-vit-b16.openai, task: fr}
general:
  datasets: [food101, cifar10, ...]
  root: ${OVERSPEC_DATA}          # dataset <name> lives in <root>/<name> (roots: overrides per dataset)
  protocols: [zeroshot, linear_probe]
  probe_recipe: clip_benchmark    # lbfgs (default), clip_benchmark or clip_paper; see docs/conventions.md
biometric:
  - {name: lfw, protocol: face_verification, path: ${FACES}/lfw.bin}
  - {name: ijbc, protocol: ijb, path: ${IJB}/IJBC, options: {which: ijbc}}
  - {name: syn_mad22, protocol: attack_detection, task: mad, path: mad.csv}
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from overspec._hashing import digest
from overspec._paths import expand, unset_variables
from overspec._validation import read_yaml, validated
from overspec.analysis_config import AnalysisSettings
from overspec.configs import config_path
from overspec.errors import ConfigError
from overspec.frontier.config import FrontierSettings


class ModelEntry(BaseModel):
    """A model to evaluate: a zoo name or a spec file, its base (for GELO) and its task (fr, mad, pad)."""

    model_config = ConfigDict(extra="forbid")
    name: str  # the model's name in results: a zoo name, or any label when ``spec`` is given
    spec: str | dict | None = None  # default: ``name`` from the zoo
    base: str | None = None  # the model GELO compares it with: another entry's name, a zoo name or a spec file
    task: Literal["fr", "mad", "pad", "general"] | None = None  # what it was tuned for (default: its family's)
    protocols: list[str] | None = None  # only these protocols (e.g. an image-only face embedder: no zero-shot)

    @property
    def source(self) -> str | dict:
        return self.spec if self.spec is not None else self.name


class LinearProbeOptions(BaseModel):
    """The values ``general.options.linear_probe`` may take (unknown names are refused by the plan)."""

    model_config = ConfigDict(extra="allow")
    k_shot: int | None = Field(None, ge=1)  # examples per class; none: the whole train split
    seed: int = 0


PROTOCOL_OPTIONS: dict[str, type[BaseModel]] = {"linear_probe": LinearProbeOptions}


class GeneralSuite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    datasets: list[str] = Field(min_length=1)  # catalog names (`overspec datasets`), or names given a folder in roots
    protocols: list[str] = ["zeroshot", "linear_probe"]  # the general-suite protocols run on every dataset
    root: str | None = None  # dataset <name> lives in <root>/<name>
    roots: dict[str, str] = Field(default_factory=dict)  # per dataset, its own folder (overrides root)
    options: dict[str, dict] = Field(default_factory=dict)  # per protocol, e.g. linear_probe: {k_shot: 16}
    # per dataset, a subset of ``protocols`` (e.g. digits: [linear_probe] where no class name means anything
    # to a zero-shot head); a dataset not named gets every protocol
    only: dict[str, list[str]] = Field(default_factory=dict)
    # the metric GELO and the tables use: each catalog entry's own (the CLIP paper's: mean per-class recall for
    # Aircraft, Flowers, Pets, Caltech-101) or one metric for every dataset (the study: top-1 accuracy)
    headline: Literal["catalog", "acc1", "mean_per_class_recall"] = "catalog"

    def headline_of(self, resolved: str) -> str:
        return resolved if self.headline == "catalog" else self.headline

    probe_recipe: str = "lbfgs"  # a name of overspec.protocols.probe_recipes.PROBE_RECIPES

    @field_validator("probe_recipe")
    @classmethod
    def _recipe(cls, name: str) -> str:
        from overspec.protocols.probe_recipes import PROBE_RECIPES

        if name not in PROBE_RECIPES:
            raise ValueError(PROBE_RECIPES.unknown_message(name))
        return name

    @field_validator("options")
    @classmethod
    def _recipe_in_one_place(cls, options: dict[str, dict]) -> dict[str, dict]:
        if "recipe" in options.get("linear_probe", {}):
            raise ValueError("set the probe recipe with general.probe_recipe, not options.linear_probe.recipe")
        return options

    @field_validator("options")
    @classmethod
    def _typed_values(cls, options: dict[str, dict]) -> dict[str, dict]:
        """Values of typed options are checked here (names against each protocol's signature at plan time)."""
        from pydantic import ValidationError

        for protocol, schema in PROTOCOL_OPTIONS.items():
            given = options.get(protocol)
            if not given:
                continue
            try:
                typed = schema.model_validate(given)
            except ValidationError as exc:
                first = exc.errors()[0]
                key = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"{protocol}.{key}: {first['msg']} (got {first.get('input')!r})") from None
            options[protocol] = {**given, **typed.model_dump(exclude_unset=True)}
        return options

    @field_validator("protocols")
    @classmethod
    def _general_protocols(cls, protocols: list[str]) -> list[str]:
        from overspec.protocols.specs import general_protocols

        for name in protocols:
            if name not in general_protocols():
                raise ValueError(f"{name!r} is not a general-suite protocol; use {', '.join(general_protocols())}")
        return protocols

    def protocols_of(self, name: str) -> list[str]:
        return [p for p in self.protocols if p in self.only.get(name, self.protocols)]

    @model_validator(mode="after")
    def _only(self) -> GeneralSuite:
        for name, protocols in self.only.items():
            if name not in self.datasets:
                raise ValueError(f"only.{name}: {name} is not in general.datasets ({', '.join(self.datasets)})")
            extra = [p for p in protocols if p not in self.protocols]
            if extra or not protocols:
                raise ValueError(
                    f"only.{name}: give a non-empty subset of general.protocols ({', '.join(self.protocols)}); "
                    f"got {protocols}"
                )
        return self

    @model_validator(mode="after")
    def _known(self) -> GeneralSuite:
        """A dataset is a catalog name, or any name given a folder under ``roots``."""
        from overspec.data.catalog import catalog

        for name in self.datasets:
            if name not in catalog() and name not in self.roots:
                raise ValueError(catalog().unknown_message(name) + " (or give its folder under general.roots)")
        return self

    def root_of(self, name: str) -> str | None:
        if name in self.roots:
            return expand(self.roots[name])
        return str(Path(expand(self.root)) / name) if self.root else None


class BiometricBenchmark(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str  # the benchmark's name in results and reports
    protocol: str  # a biometric protocol of overspec.protocols.specs
    path: str  # face_verification: a .bin file; ijb: the IJB-B/C folder; attack_detection: a CSV or a dataset folder
    task: Literal["fr", "mad", "pad"] | None = None  # attack_detection: mad or pad (the others have one task)
    layout: str = "csv"  # attack_detection: "csv" or a dataset layout (see data/attack_layouts.py)
    frames_per_video: int | None = Field(None, gt=0)  # frames sampled from each video file (default 25)
    options: dict = Field(default_factory=dict)  # the protocol's options (e.g. convention), checked at plan time

    @property
    def reading(self) -> str:
        """How the data is read, for the cell's identity: the layout, and the frame sampling when set."""
        return self.layout if self.frames_per_video is None else f"{self.layout}, {self.frames_per_video} frames"

    @model_validator(mode="after")
    def _task(self) -> BiometricBenchmark:
        from overspec.protocols.specs import PROTOCOL_INFO, general_protocols

        biometric = [p for p in PROTOCOL_INFO if p not in general_protocols()]
        if self.protocol not in biometric:
            raise ValueError(f"protocol {self.protocol!r} is not a biometric protocol; use {', '.join(biometric)}")
        if PROTOCOL_INFO.get(self.protocol).side_effect and "layout" in self.model_fields_set:
            raise ValueError(f"{self.protocol} reads its layout from options: write options: {{layout: {self.layout}}}")
        tasks = PROTOCOL_INFO.get(self.protocol).tasks
        if len(tasks) == 1:
            self.task = tasks[0]
        elif self.task not in tasks:
            raise ValueError(f"{self.protocol} benchmarks need task: {' or '.join(tasks)}")
        self.path = expand(self.path)
        return self


class ExecutorSettings(BaseModel):
    """How cells run: ``local`` (this process) or ``ray`` (a Ray cluster at ``address``, or one started for the
    run); the Ray resources each model's worker asks for, and how often a died worker's cell is retried."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: Literal["local", "ray"] = "local"  # local: cells run in this process; ray: on a Ray cluster
    address: str | None = None  # "auto" or "ray://HOST:PORT"; none: a Ray instance on this machine
    cpus_per_cell: float = Field(1, gt=0)  # Ray: CPUs each model's worker reserves (its torch threads)
    gpus_per_cell: float = Field(0, ge=0)  # Ray: GPUs each model's worker reserves
    max_retries: int = Field(2, ge=0)  # Ray: how often a cell whose worker died is retried


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str  # names the experiment and its default output folder
    output: str = "runs/${name}"  # the run directory: results.sqlite, results.csv, the report
    seed: int = 0  # part of the config's hash; a protocol's own seed is one of its options
    models: list[str | ModelEntry] = Field(default_factory=list)  # may be empty in a sweep's suite config
    general: GeneralSuite | None = None  # the general suite GELO is computed over
    biometric: list[BiometricBenchmark] = Field(default_factory=list)  # the FR, MAD and PAD benchmarks
    batch_size: int | None = Field(None, gt=0)  # images per forward pass; default by device (features/extract.py)
    workers: int | None = Field(None, ge=0)  # DataLoader worker processes (default: cores - 1, at most 8; 0: none)
    device: str | None = None  # torch device, e.g. cuda or cpu (default: cuda when there is one); spelling checked here
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    # log each run to a tracker: mlflow (a local store in the run folder) or mlflow:URI (overspec/tracking); like the
    # executor, it changes no number and is not part of config_hash
    track: str | None = None

    @field_validator("track")
    @classmethod
    def _track(cls, track: str | None) -> str | None:
        from overspec.tracking import parse

        if track is not None:
            try:
                parse(track, where="track:")
            except ConfigError as exc:  # as a validation error, so the message names the file and the key
                raise ValueError(str(exc).removeprefix("track: ")) from None
        return track

    analysis: AnalysisSettings | None = None  # analyses beyond the cells: drift (layer-wise, of models with a base)
    frontier: FrontierSettings | None = None  # `overspec frontier`: forgetting-control methods swept (frontier/)

    @field_validator("device")
    @classmethod
    def _device(cls, device: str | None) -> str | None:
        from overspec._device import device_spelling_problem

        if device is not None and (problem := device_spelling_problem(device)) is not None:
            raise ValueError(problem)
        return device

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        """The name becomes a folder (``runs/<name>``): no separators, no leading dot, so it stays inside."""
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            raise ValueError("use letters, digits, '_', '-' and '.' only (it names the output folder)")
        return name

    @field_validator("models")
    @classmethod
    def _entries(cls, models: list) -> list[ModelEntry]:
        return [ModelEntry(name=m) if isinstance(m, str) else m for m in models]

    def model_entries(self) -> list[ModelEntry]:
        return self.models  # type: ignore[return-value]

    @property
    def config_hash(self) -> str:
        # where and in what batches cells ran does not change a number
        return digest(self.model_dump(exclude={"executor", "batch_size", "workers", "track", "analysis"}))[:16]

    def output_dir(self) -> Path:
        return Path(expand(self.output.replace("${name}", self.name)))


def load_config(path: str | Path, *, check_paths: bool = True) -> Experiment:
    """Read and validate ``path``; every error names the file, the key, what was expected and what came.
    With ``check_paths``, dataset folders and benchmark files must exist too. A bare name (``paper``) that is no
    file here is the config of that name shipped with overspec."""
    path = config_path(path)
    data = read_yaml(path, what="config file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (name, models, general, biometric, ...)")
    experiment = validated(Experiment, data, origin=str(path))
    _resolve_paths(experiment, path, output_given="output" in data)
    _check_models(experiment, path)
    if check_paths:
        _check_paths(experiment, path)
    return experiment


SPEC_FILE_KEYS = ("weights", "checkpoint", "head")  # files a spec names; "base", "image", "target": specs


def _resolve_paths(experiment: Experiment, path: Path, *, output_given: bool) -> None:
    """One rule: every relative path written in a config (dataset roots, benchmark files, model specs and the
    files of inline specs, output) resolves against the config's folder, never against the working directory, so
    a config reads the same files from wherever it is run. Without ``output:`` a run goes to ``runs/<name>``
    under the working directory."""
    folder = path.absolute().parent
    general = experiment.general
    if general is not None:
        general.root = general.root and _against(folder, general.root)
        general.roots = {name: _against(folder, root) for name, root in general.roots.items()}
    for bench in experiment.biometric:
        bench.path = _against(folder, bench.path)
    if output_given:
        experiment.output = _against(folder, experiment.output.replace("${name}", experiment.name))
    for entry in experiment.model_entries():
        if isinstance(entry.spec, dict):
            entry.spec = _spec_against(folder, entry.spec)
    if experiment.analysis is not None and experiment.analysis.drift is not None:
        experiment.analysis.drift.resolve_paths(lambda value: _against(folder, value))


def _spec_against(folder: Path, spec: dict) -> dict:
    """An inline spec's files (and spec files it names) against ``folder``, as a spec file's are against its own."""
    out = dict(spec)
    for key, value in spec.items():
        if key in SPEC_FILE_KEYS and isinstance(value, str):
            out[key] = _against(folder, value)
        elif key in ("base", "image", "target"):
            if isinstance(value, dict):
                out[key] = _spec_against(folder, value)
            elif isinstance(value, str) and value.endswith((".yaml", ".yml")):
                out[key] = _against(folder, value)
        elif key == "models" and isinstance(value, list):  # a merge's models
            out[key] = [
                {**m, "model": _spec_against(folder, {"base": m["model"]})["base"]}
                if isinstance(m, dict) and "model" in m
                else m
                for m in value
            ]
    return out


def _against(folder: Path, value: str) -> str:
    """``value`` expanded and made absolute: a path written relative, against ``folder``; one that starts with a
    variable (``${OVERSPEC_DATA}/x``), as the shell gave the variable, i.e. against the working directory. Left as
    written when it still holds an unset variable (``check_variables`` reports it) or is a URL."""
    expanded = expand(value)
    if unset_variables(expanded):
        return value
    if "://" in expanded or Path(expanded).is_absolute():
        return expanded
    return os.path.abspath((Path.cwd() if value.startswith("$") else folder) / expanded)


def _check_paths(experiment: Experiment, path: Path) -> None:
    check_variables(path)
    missing = missing_paths(experiment, path)
    if missing:
        more = f" (and {len(missing) - 1} more: `overspec validate {path}` lists them)" if len(missing) > 1 else ""
        raise ConfigError(missing[0] + more)


def check_variables(path: Path) -> None:
    """Every environment variable the config uses is set (an unset one would leave ``${X}`` in a path)."""
    path = config_path(path)

    def strings(node):
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    missing = sorted({name for value in strings(read_yaml(path)) for name in unset_variables(value)})
    if missing:
        raise ConfigError(
            f"{path}: uses environment variable(s) {', '.join(missing)}, which are not set; "
            f"export {missing[0]}=/path/to/... first"
        )


def missing_paths(experiment: Experiment, path: Path) -> list[str]:
    """One line per dataset folder or benchmark file the config names that is not there."""
    problems = []
    general = experiment.general
    if general is not None:
        for name in general.datasets:
            root = general.root_of(name)
            where = f"general.roots.{name}" if name in general.roots else "general.root"
            if root is None:
                problems.append(
                    f"{path}: key 'general.root': no folder given for dataset {name}; set general.root "
                    "(datasets live in <root>/<name>) or general.roots"
                )
            elif not Path(root).exists():
                problems.append(f"{path}: key '{where}': dataset folder {root} for {name} does not exist")
    for index, bench in enumerate(experiment.biometric):
        if not Path(bench.path).exists():
            problems.append(f"{path}: key 'biometric.{index}.path': {bench.path} ({bench.name}) does not exist")
    return problems


def _check_models(experiment: Experiment, path: Path) -> None:
    """Unknown model references are config errors (with near misses and the accepted forms), before any run."""
    from overspec.models.reference import is_reference, unknown_reference_message

    names = {entry.name for entry in experiment.model_entries()}
    for index, entry in enumerate(experiment.model_entries()):
        for field, value in (("name", entry.source), ("base", entry.base)):
            if field == "base" and value in names:
                continue  # another model of this experiment
            if isinstance(value, str) and not value.endswith((".yaml", ".yml")) and not is_reference(value):
                key = f"models.{index}" + ("" if field == "name" and entry.spec is None else f".{field}")
                raise ConfigError(f"{path}: key '{key}': {unknown_reference_message(value)}")
            if isinstance(value, str) and value.endswith((".yaml", ".yml")):
                spec_path = Path(value) if Path(value).is_absolute() else (path.parent / value).resolve()
                if not spec_path.exists():
                    raise ConfigError(
                        f"{path}: key 'models.{index}.{'spec' if field == 'name' else field}': "
                        f"model spec file {spec_path} does not exist"
                    )
                if field == "name":
                    entry.spec = str(spec_path)
                else:
                    entry.base = str(spec_path)

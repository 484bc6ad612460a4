"""One model on one dataset with one or more protocols: what ``overspec eval`` runs, callable from Python.

The request becomes an in-memory experiment (one model; the general suite for zeroshot / linear_probe, or one
biometric benchmark per biometric protocol) that the runner's own planner and cell evaluation run
(``runner/plan.py``, ``runner/run.py``): ``eval`` and ``run`` reach a number by one path. Every protocol's checks that
need no image (``ProtocolInfo.check``: text tower, options, data layout; weights when the model's identity is taken)
run for all requested protocols before the first forward pass. Results are remembered (``results/memo.py``): a rerun
with the same model, data, protocol, options, device and code prints without loading the model.

``Evaluation.document()`` is the versioned JSON that ``eval --json`` prints and ``eval --output`` writes; its schema
is ``schemas/eval.schema.json``: one top-level document, with one entry per protocol under ``results``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from overspec._hashing import digest
from overspec.errors import ConfigError, DataError, UnknownNameError
from overspec.protocols.result import ProtocolResult

SCHEMA = "overspec.eval"
SCHEMA_VERSION = 2  # 2: versions moved into ``provenance`` (docs/reference/results.md: what bumps it)


@dataclass(frozen=True)
class ProtocolOutcome:
    protocol: str
    options: dict  # as the cell runs it, defaults included
    convention: str
    result: ProtocolResult
    remembered: bool  # answered from the memo, without the model


@dataclass(frozen=True)
class Evaluation:
    model: str  # the reference as given
    model_fingerprint: str
    dataset: str  # as given
    dataset_name: str
    dataset_fingerprint: str
    device: str
    precision: str
    outcomes: list[ProtocolOutcome]
    provenance: dict  # provenance.record of the evaluation: versions, host, times, command, config digest

    def document(self) -> dict:
        """The versioned JSON document (``schemas/eval.schema.json``)."""
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "model": {
                "reference": self.model,
                "name": self.outcomes[0].result.model,
                "fingerprint": self.model_fingerprint,
            },
            "dataset": {"reference": self.dataset, "name": self.dataset_name, "fingerprint": self.dataset_fingerprint},
            "device": self.device,
            "precision": self.precision,
            "results": [_entry(o) for o in self.outcomes],
            "provenance": self.provenance,
        }


def _entry(outcome: ProtocolOutcome) -> dict:
    result = outcome.result
    metrics, counts = {}, {}
    for key, value in result.metrics.items():
        if key.startswith("n_"):
            counts[key] = value
        else:
            metrics[key] = {"value": value, **metric_interval(result, key)}
            if key in result.unresolved:  # null: the data cannot resolve this operating point
                metrics[key]["unresolved"] = result.unresolved[key]
    return {
        "protocol": outcome.protocol,
        "convention": outcome.convention,
        "options": outcome.options,
        "headline_metric": result.headline_metric,
        "metrics": metrics,
        "counts": counts,
        "details": result.details,
    }


def metric_interval(result: ProtocolResult, key: str) -> dict:
    """``{"interval": [low, high], "interval_method": ...}`` for ``key``: the interval the protocol's result carries
    (``ProtocolResult.intervals``), else the Wilson interval the runner gives top-1 and top-5 in results.csv
    (``metrics.intervals.wilson_interval``), else nothing (95 % in every case)."""
    from overspec.metrics.intervals import wilson_interval

    carried = result.intervals.get(key)
    if carried is not None:
        method = result.interval_methods.get(key, result.interval_method) or "bootstrap"
        return {"interval": list(carried), "interval_method": method}
    n = result.metrics.get("n_test")
    if key in ("acc1", "acc5") and n:
        return {"interval": list(wilson_interval(result.metrics[key], int(n))), "interval_method": "wilson"}
    return {}


def evaluate(
    model: str | Path,
    dataset: str | Path,
    protocols: Sequence[str] = ("zeroshot",),
    *,
    root: str | Path | None = None,
    options: dict[str, dict] | None = None,
    convention: str | None = None,
    task: str | None = None,
    layout: str | None = None,
    frames_per_video: int | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
) -> Evaluation:
    """Evaluate ``model`` (a zoo name or spec file) on ``dataset`` under ``protocols``.

    ``dataset``: a catalog name (files under ``root``) or a class-per-folder / webdataset folder for zeroshot and
    linear_probe; a ``.bin`` or pair list (``data/pair_list.py``) for face_verification; an IJB folder for ijb; a
    protocol CSV or a released layout's folder (``layout``) for attack_detection, whose ``task`` is mad or pad.
    ``options``: per protocol, as an experiment's ``options:``; ``convention`` sets the convention of each protocol
    that has a choice (the probe's recipe; zero-shot has one rule)."""
    from overspec import provenance
    from overspec.compute import compute_for, default_device
    from overspec.results.memo import recall, remember, result_key
    from overspec.runner.run import _Resources, evaluate_cell

    started = provenance.now()
    device = device or default_device()
    experiment, cells = _planned(
        str(model), str(dataset), protocols, options or {}, convention, root, task, layout, frames_per_video, device
    )
    compute = compute_for(device)  # as the plan put it in each cell's key
    experiment = experiment.model_copy(update={"device": device, "batch_size": batch_size, "workers": num_workers})
    resources = _Resources(experiment, cells)
    data_fingerprint = _data_fingerprint(cells[0], resources)
    keys = {
        c.protocol.name: result_key(
            model=c.model.fingerprint,
            data=data_fingerprint,
            protocol=c.protocol.name,
            options={"options": c.protocol.options, "headline": c.protocol.headline, "task": c.task},
            compute=compute.key,
        )
        for c in cells
    }
    found = {name: recall(key) for name, key in keys.items()}
    todo = [c for c in cells if found[c.protocol.name] is None]
    for cell in todo:  # every image-free check of every protocol, before the first forward pass (the runner's
        # resources load the model once, with torch's threads set for this process)
        _info(cell.protocol.name).check_ready(resources.model(cell), resources.dataset(cell), cell.protocol.options)
    for cell in todo:  # features are extracted once and cached: a second protocol reuses them
        found[cell.protocol.name] = remember(keys[cell.protocol.name], evaluate_cell(cell, resources))
    outcomes = [
        ProtocolOutcome(
            c.protocol.name, c.protocol.options, c.protocol.convention, found[c.protocol.name], c not in todo
        )
        for c in cells
    ]
    return Evaluation(
        str(model),
        cells[0].model.fingerprint,
        str(dataset),
        cells[0].dataset,
        data_fingerprint,
        device,
        compute.precision,
        outcomes,
        provenance.record(
            device=device, precision=compute.precision, config_hash=experiment.config_hash, started=started
        ),
    )


def _planned(model: str, dataset: str, protocols, options, convention, root, task, layout, frames_per_video, device):
    """``(experiment, cells)``: the request as an experiment, planned as `overspec run` plans one (model identity
    and weights present, options, conventions, data fingerprints), cells in the order the protocols were asked."""
    from overspec._validation import validated
    from overspec.config import Experiment
    from overspec.runner.plan import plan

    names = _protocol_names(protocols)
    per = _options(names, options, convention)
    general = [n for n in names if _info(n).general]
    if general and len(general) != len(names):
        raise ConfigError(
            f"--protocol {','.join(names)}: {', '.join(general)} read a classification dataset, the others a "
            "biometric file or folder; evaluate them in two calls"
        )
    spec = _experiment(model, dataset, names, per, root, task, layout, frames_per_video, general=bool(general))
    experiment = validated(Experiment, {**spec, "device": device}, origin="overspec eval")
    cells = sorted(plan(experiment), key=lambda c: names.index(c.protocol.name))
    skipped = [n for n in names if n not in {c.protocol.name for c in cells}]
    if skipped:  # the planner skips a probe on a dataset without a train split; asked for by name, it is an error
        raise DataError(f"dataset {dataset} has no train split; {skipped[0]} needs one")
    return experiment, cells


def _info(name: str):
    from overspec.protocols.specs import PROTOCOL_INFO

    return PROTOCOL_INFO.get(name)


def _protocol_names(protocols: Sequence[str]) -> list[str]:
    from overspec.protocols.specs import PROTOCOL_INFO

    names = list(dict.fromkeys(p.strip() for p in protocols if p.strip()))
    if not names:
        raise ConfigError(f"--protocol: name one or more of {', '.join(PROTOCOL_INFO)}")
    for name in names:
        if name not in PROTOCOL_INFO:
            raise UnknownNameError(f"--protocol: {PROTOCOL_INFO.unknown_message(name)}")
    return names


def _options(names: list[str], given: dict[str, dict], convention: str | None) -> dict[str, dict]:
    """Each protocol's options, checked against its signature, with ``convention`` set where it has a choice."""
    from overspec.protocols import check_options

    stray = sorted(set(given) - set(names))
    if stray:
        raise ConfigError(f"options for {stray[0]}, which is not among --protocol {','.join(names)}")
    per = {name: dict(given.get(name) or {}) for name in names}
    for name in names:
        if per[name]:  # (reading a protocol's signature imports its module: torch, for the probe)
            check_options(name, per[name], where=f"--option for {name}")
    if convention is None:
        return per
    takers = [name for name in names if _info(name).convention_option]
    if not takers:
        rule = _info(names[0]).default_convention
        raise ConfigError(f"--convention {convention}: {', '.join(names)} has one convention ({rule}); drop the option")
    for name in takers:
        option = _info(name).convention_option
        if per[name].get(option, convention) != convention:
            raise ConfigError(f"--convention {convention} and {option}={per[name][option]} disagree for {name}")
        per[name][option] = convention
    return per


def _experiment(model: str, dataset: str, names, per, root, task, layout, frames_per_video, *, general: bool) -> dict:
    """The experiment the request is: one model; the general suite, or one biometric benchmark per protocol."""
    from overspec.data.catalog import catalog

    models = [{"name": model, "spec": model}]
    if general:
        if task is not None or layout is not None or frames_per_video is not None:
            raise ConfigError("--task, --layout and --frames-per-video apply to biometric protocols only")
        name, roots = _general_dataset(dataset, root, catalog())
        options = {n: dict(per[n]) for n in names if per[n]}
        recipe = options.get("linear_probe", {}).pop("recipe", None)
        suite = {"datasets": [name], "protocols": names, "roots": roots, "options": options}
        return {"name": "eval", "models": models, "general": suite | ({"probe_recipe": recipe} if recipe else {})}
    if root is not None:
        raise ConfigError("--root names the folder of a catalog dataset (zeroshot, linear_probe); give the path itself")
    if not Path(dataset).exists():
        raise DataError(f"{dataset} does not exist: give a .bin, pair list, IJB folder, protocol CSV or dataset folder")
    benchmarks = []
    for name in names:
        tasks = _info(name).tasks
        if (task if task is not None else tasks[0]) not in tasks or (len(tasks) > 1 and task is None):
            raise ConfigError(f"--task: {name} evaluates {' or '.join(tasks)}; give --task {tasks[0]}")
        bench = {"name": Path(dataset).stem, "protocol": name, "path": dataset, "task": task or tasks[0]}
        bench |= {"options": per[name]} | ({"layout": layout} if layout else {})
        benchmarks.append(bench | ({"frames_per_video": frames_per_video} if frames_per_video else {}))
    return {"name": "eval", "models": models, "biometric": benchmarks}


def _general_dataset(dataset: str, root, names) -> tuple[str, dict]:
    """``(name, roots)`` of a catalog name (its files under ``root``, else the default data folder) or a folder (named
    by its folder, unless that is a catalog name it may not follow)."""
    if dataset in names:
        return dataset, ({dataset: str(root)} if root is not None else {})
    if root is not None:
        return dataset, {dataset: str(root)}
    folder = Path(dataset)
    if not folder.is_dir():
        raise UnknownNameError(names.unknown_message(dataset) + f" (and {dataset} is not a folder)")
    name = folder.name if folder.name not in names else dataset
    return name, {name: dataset}


def _data_fingerprint(cell, resources) -> str:
    """What the numbers depend on in the data: a labelled dataset's images, labels, class names and templates; a
    benchmark's file or folder content (``runner.plan.data_fingerprint``), how it is read and, for a pair list or
    protocol CSV, the content of the images it names."""
    data = resources.dataset(cell)
    if hasattr(data, "fingerprint"):
        return data.fingerprint
    from overspec.runner.run import dataset_fingerprint

    content = dataset_fingerprint(data) if hasattr(data, "splits") else None
    location = Path(cell.location)
    side_effect = _info(cell.protocol.name).side_effect  # the plan's fingerprint holds what it names
    if not side_effect and content is None and location.is_file() and location.suffix != ".bin":
        from overspec.data.pair_list import load_pair_list

        content = load_pair_list(location)[0].fingerprint
    return digest([cell.data_fingerprint, cell.benchmark.reading, content])

"""Experiment tracking: ``--track mlflow[:URI]`` on ``overspec run`` and ``overspec eval`` (or ``track:`` in the
experiment config) logs the parameters, every row's metrics, the report and the config to a tracker.

``mlflow`` alone logs to a local store in the run folder (``<run>/mlruns``: a SQLite database ``mlflow.db`` and the
artifacts beside it; ``./mlruns`` for ``eval``); ``mlflow:URI`` to any MLflow tracking URI (``http://host:5000``,
``sqlite:///path.db``, ``databricks``), or to a local store in a folder given as a plain path. A run's MLflow run is
named after the experiment, one per ``overspec run`` (a rerun that computes nothing logs the folder's rows again).

Metric keys: MLflow accepts letters, digits, ``_ - . /`` and spaces in a key. overspec's key is
``MODEL/DATASET/PROTOCOL/METRIC`` (``gelo/PROTOCOL/MODEL`` for GELO; ``PROTOCOL/METRIC`` for ``eval``) where, in
each part, ``@`` (a per-attack-type key such as ``apcer@mipgan``) is written ``__`` and any other character outside
that set (``:``, ``/``, ``+``, ...) ``_``; a key made equal to another gets ``~2``, ``~3`` appended. A key that changed
keeps its original in the tag ``overspec.key.<KEY>``, and the artifact ``metric_keys.json`` maps every key to its
original parts.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from overspec.errors import ConfigError
from overspec.registry import Registry


@dataclass(frozen=True)
class Tracker:
    package: str  # the module it needs
    extra: str  # overspec's extra that installs it
    log: str  # "module:function" doing the logging (imported only when used)

    def load(self):
        module, attr = self.log.split(":")
        return getattr(importlib.import_module(module), attr)


TRACKERS: Registry[Tracker] = Registry("tracker")
TRACKERS.register("mlflow", Tracker("mlflow", "track", "overspec.tracking.mlflow_store:log"))


@dataclass(frozen=True)
class Target:
    tracker: str
    uri: str | None  # None: a local store (the run folder's, or ./mlruns)


def parse(spec: str, *, where: str = "--track") -> Target:
    """``mlflow`` or ``mlflow:URI`` (the URI may hold colons of its own)."""
    name, _, uri = spec.partition(":")
    if name not in TRACKERS:
        raise ConfigError(f"{where} {spec!r}: {TRACKERS.unknown_message(name)} (write mlflow or mlflow:URI)")
    return Target(name, uri or None)


def check(target: Target, *, where: str = "--track") -> None:
    """The tracker's library is installed: one line naming the extra otherwise (checked before any work)."""
    tracker = TRACKERS.get(target.tracker)
    try:
        found = importlib.util.find_spec(tracker.package) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        found = False
    if not found:
        raise ConfigError(
            f"{where} {target.tracker}: the {tracker.package} package is not installed; "
            f"pip install 'overspec[{tracker.extra}]'"
        )


_OUTSIDE = re.compile(r"[^\w.\- ]")  # MLflow's characters, but the part separator '/' and ':' (refused on Windows)


def metric_keys(originals: list[tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Tracker-valid, unique keys (module docstring) -> the original parts, in the order given."""
    keys: dict[str, tuple[str, ...]] = {}
    for parts in originals:
        cleaned = [_OUTSIDE.sub("_", str(p).replace("@", "__")) for p in parts]
        key = "/".join("_" if c in ("", ".", "..") else c for c in cleaned)[:240]
        unique, n = key, 1
        while unique in keys:
            n += 1
            unique = f"{key}~{n}"
        keys[unique] = tuple(parts)
    return keys


def _flatten(value, prefix: str = "") -> dict[str, str]:
    """Nested config values as ``a.b.0.c`` parameters (scalars and lists of scalars as text)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return {k: v for i, item in enumerate(value) for k, v in _flatten(item, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): ", ".join(map(str, value)) if isinstance(value, list) else str(value)}


def track_run(spec: str, out: Path, experiment) -> str:
    """Log the run in ``out`` (its rows, GELO, report, config and provenance) to the tracker ``spec`` names; returns
    where it went."""
    import json

    from overspec.provenance import RECORDS, RESOLVED_CONFIG, read_records
    from overspec.results import ResultStore

    target = parse(spec)
    store = ResultStore(out / "results.sqlite", create=False)
    try:
        rows = store.rows(current=True)
    finally:
        store.close()
    values = {(r.model, r.dataset, r.protocol, r.metric): r.value for r in rows}
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    for protocol, by_model in (summary.get("gelo") or {}).items():
        values |= {("gelo", protocol, model): gelo for model, gelo in by_model.items() if gelo is not None}
    records = read_records(out)
    params = _flatten(experiment.model_dump(mode="json"), "config.")
    params |= _flatten(records[-1], "provenance.") if records else {}
    names = ("report.html", "report.md", "summary.json", "results.csv", RESOLVED_CONFIG, RECORDS)
    return TRACKERS.get(target.tracker).load()(
        target.uri,
        default=out / "mlruns",
        experiment=experiment.name,
        params=params,
        values=values,
        tags={"overspec.config_hash": experiment.config_hash, "overspec.run_folder": str(out.absolute())},
        artifacts=[out / name for name in names if (out / name).exists()],
    )


def track_eval(spec: str, document: dict, output: Path | None) -> str:
    """Log ``overspec eval``'s document: its metrics (``PROTOCOL/METRIC``), options and provenance as parameters, the
    document as an artifact (``output`` when written, else a copy)."""
    import tempfile

    from overspec._json import strict_dumps

    target = parse(spec)
    values = {
        (entry["protocol"], key): metric["value"]
        for entry in document["results"]
        for key, metric in entry["metrics"].items()
        if metric["value"] is not None
    }
    params = {
        "model": document["model"]["reference"],
        "model_fingerprint": document["model"]["fingerprint"],
        "dataset": document["dataset"]["reference"],
        "dataset_fingerprint": document["dataset"]["fingerprint"],
        **_flatten({e["protocol"]: {"convention": e["convention"], **e["options"]} for e in document["results"]}),
        **_flatten(document["provenance"], "provenance."),
    }
    with tempfile.TemporaryDirectory() as folder:
        artifact = output
        if artifact is None:
            artifact = Path(folder) / "eval.json"
            artifact.write_text(strict_dumps(document, indent=1, default=str))
        return TRACKERS.get(target.tracker).load()(
            target.uri,
            default=Path("mlruns"),
            experiment="overspec-eval",
            params=params,
            values=values,
            tags={"overspec.config_hash": document["provenance"]["config_hash"] or ""},
            artifacts=[artifact],
        )

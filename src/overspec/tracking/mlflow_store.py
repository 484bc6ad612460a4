"""Logging to MLflow through its client (no global active run): parameters, metrics and tags in batches within
MLflow's limits, then the artifacts (``overspec.tracking`` chooses what)."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from overspec._log import logger
from overspec.errors import ConfigError

# MLflow's limits (mlflow.utils.validation, 2.10 and later): per batch, and a parameter value's length
PARAMS_PER_BATCH, METRICS_PER_BATCH, PARAM_LENGTH = 100, 1000, 500


def _store(uri: str | None, default: Path) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment): a folder (the default, or a plain path) becomes a local
    SQLite store with its artifacts beside it (MLflow 3 refuses its old folder store)."""
    if uri is not None and ("://" in uri or uri == "databricks"):
        return uri, None
    folder = Path(uri or default).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


@contextmanager
def _quiet_mlflow():
    """MLflow's and alembic's info lines (database creation) under overspec's own lines: warnings only."""
    chatty = {name: logging.getLogger(name) for name in ("mlflow", "alembic")}
    levels = {name: log.level for name, log in chatty.items()}
    for log in chatty.values():
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, log in chatty.items():
            log.setLevel(levels[name])


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def log(uri, *, default: Path, experiment: str, params: dict, values: dict, tags: dict, artifacts: list[Path]) -> str:
    """One MLflow run in ``experiment`` (created if new); ``values``: original key parts -> number. Returns
    "run ID in URI"."""
    from overspec.tracking import metric_keys

    tracking_uri, artifact_location = _store(uri, default)
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    with _quiet_mlflow():  # after importing mlflow, which sets its loggers' levels
        try:
            client = MlflowClient(tracking_uri=tracking_uri)
            found = client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else client.create_experiment(experiment, artifact_location)
            run = client.create_run(experiment_id, run_name=experiment)
        except MlflowException as exc:
            message = str(exc).splitlines()[0]
            raise ConfigError(f"--track mlflow:{tracking_uri}: MLflow refused: {message}") from None
        run_id = run.info.run_id
        keys = metric_keys(list(values))
        now = int(time.time() * 1000)
        metrics = [Metric(key, float(values[parts]), now, 0) for key, parts in keys.items()]
        all_tags = dict(tags) | {
            f"overspec.key.{key}": "/".join(parts) for key, parts in keys.items() if key != "/".join(parts)
        }
        try:
            for batch in _chunks([Param(k[:250], str(v)[:PARAM_LENGTH]) for k, v in params.items()], PARAMS_PER_BATCH):
                client.log_batch(run_id, params=batch)
            for batch in _chunks([RunTag(k[:250], str(v)) for k, v in all_tags.items()], PARAMS_PER_BATCH):
                client.log_batch(run_id, tags=batch)
            for batch in _chunks(metrics, METRICS_PER_BATCH):
                client.log_batch(run_id, metrics=batch)
            with tempfile.TemporaryDirectory() as folder:
                mapping = Path(folder) / "metric_keys.json"
                mapping.write_text(json.dumps({key: list(parts) for key, parts in keys.items()}, indent=1))
                for path in [*artifacts, mapping]:
                    client.log_artifact(run_id, str(path))
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id)
    where = f"MLflow run {run_id} in {tracking_uri}"
    logger(__name__).info(f"{where} ({len(metrics)} metrics; `mlflow ui --backend-store-uri {tracking_uri}`)")
    return where

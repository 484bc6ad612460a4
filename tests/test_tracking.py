"""--track mlflow[:URI]: a run's parameters, every row's metrics (under tracker-valid keys, originals kept), the report
and the config reach a real MLflow store, read back with MlflowClient; a missing mlflow or tracker is one line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from helpers.cli import write_yaml
from overspec.errors import ConfigError
from overspec.tracking import check, metric_keys, parse


def test_metric_keys_follow_the_documented_mapping():
    keys = metric_keys(
        [
            ("hf-hub:org/repo", "syn_mad22", "attack_detection", "bpcer_at_apcer_0.01@mipgan"),
            ("a/b", "x", "y", "acc1"),
            ("a_b", "x", "y", "acc1"),  # the same key once sanitised
            ("m", "..", "p", "acc1"),
        ]
    )
    assert list(keys) == [
        "hf-hub_org_repo/syn_mad22/attack_detection/bpcer_at_apcer_0.01__mipgan",
        "a_b/x/y/acc1",
        "a_b/x/y/acc1~2",
        "m/_/p/acc1",
    ]
    assert keys["a_b/x/y/acc1~2"] == ("a_b", "x", "y", "acc1")


def test_a_missing_mlflow_or_an_unknown_tracker_is_one_line(monkeypatch, tmp_path, digits_folder, clip_file):
    with pytest.raises(ConfigError, match=r"unknown tracker 'wandb'.*write mlflow or mlflow:URI"):
        parse("wandb")
    from overspec.config import load_config

    write_yaml(tmp_path / "bad.yaml", {"name": "bad", "track": "wandb"})
    with pytest.raises(ConfigError, match=r"bad.yaml: key 'track': 'wandb': unknown tracker 'wandb'"):
        load_config(tmp_path / "bad.yaml")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # importing mlflow fails
    with pytest.raises(ConfigError) as raised:
        check(parse("mlflow:http://localhost:5000"))
    assert str(raised.value) == "--track mlflow: the mlflow package is not installed; pip install 'overspec[track]'"
    # from the command line, before any cell runs: the config's track: is checked like --track
    write_yaml(tmp_path / "spec.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    config = {
        "name": "t",
        "models": [{"name": "clip", "spec": "spec.yaml"}],
        "general": {"datasets": ["digits"], "protocols": ["zeroshot"], "roots": {"digits": str(digits_folder)}},
        "track": "mlflow",
    }
    write_yaml(tmp_path / "t.yaml", config)
    guarded = "import sys; sys.modules['mlflow'] = None\nfrom overspec.cli import run; run()"
    args = ["run", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "run")]
    done = subprocess.run([sys.executable, "-c", guarded, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.splitlines() == [
        "error: --track mlflow: the mlflow package is not installed; pip install 'overspec[track]'"
    ]
    assert not (tmp_path / "run" / "results.sqlite").exists()


@pytest.mark.slow
def test_mlflow_receives_the_runs_metrics_params_and_artifacts_in_a_local_store(tmp_path, digits_folder, clip_file):
    pytest.importorskip("mlflow")
    import torch
    from mlflow.tracking import MlflowClient
    from mlflow.utils.validation import _validate_metric_name
    from typer.testing import CliRunner

    from overspec.cli import app

    write_yaml(tmp_path / "spec.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    config = {
        "name": "tracked",
        "models": [{"name": "clip:tiny", "spec": "spec.yaml"}],  # ':' is no MLflow key character
        "general": {"datasets": ["digits"], "protocols": ["zeroshot"], "roots": {"digits": str(digits_folder)}},
        "workers": 0,
    }
    write_yaml(tmp_path / "tracked.yaml", config)
    out = tmp_path / "run"
    done = CliRunner().invoke(app, ["run", str(tmp_path / "tracked.yaml"), "--out", str(out), "--track", "mlflow"])
    assert done.exit_code == 0, done.output
    assert "MLflow run" in done.stderr

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    expected = {f"clip_tiny/digits/zeroshot/{r['metric']}": float(r["value"]) for r in rows}
    logged = {k: v for k, v in run.data.metrics.items() if not k.startswith("gelo/")}
    assert logged == pytest.approx(expected) and len(logged) == len(rows)
    for key in run.data.metrics:
        _validate_metric_name(key)  # MLflow's own check
    assert run.data.tags["overspec.key.clip_tiny/digits/zeroshot/acc1"] == "clip:tiny/digits/zeroshot/acc1"
    assert run.data.params["provenance.torch"] == torch.__version__
    assert run.data.params["config.general.datasets"] == "digits"
    assert run.data.tags["overspec.config_hash"] == rows[0]["config_hash"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "report.md", "summary.json", "config.resolved.yaml", "metric_keys.json"} <= artifacts

    # eval's document, to a store in a folder of its own
    store = tmp_path / "eval-store"
    args = ["eval", str(tmp_path / "spec.yaml"), str(digits_folder), "--workers", "0", "--track", f"mlflow:{store}"]
    done = CliRunner().invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("overspec-eval").experiment_id])
    document = json.loads(done.stdout)
    assert run.data.metrics["zeroshot/acc1"] == document["results"][0]["metrics"]["acc1"]["value"]
    assert run.data.params["provenance.started_at"] == document["provenance"]["started_at"]

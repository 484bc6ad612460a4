"""Provenance in every output: the run folder's resolved config re-runs to the same cells; summary.json, the report
and the eval document carry true versions, device, host, times, command and config digest, and validate against
their shipped JSON Schemas."""

from __future__ import annotations

import csv
import json
import platform
import socket
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import torch

from helpers.cli import write_yaml
from helpers.data import write_bin
from overspec.config import load_config
from overspec.runner import run_experiment
from overspec.runner.plan import plan

REPO = Path(__file__).resolve().parents[1]


def shipped_schema(name: str) -> dict:
    return json.loads(resources.files("overspec").joinpath("schemas", f"{name}.schema.json").read_text())


def validate(document: dict, name: str) -> None:
    import jsonschema

    jsonschema.validate(document, shipped_schema(name), cls=jsonschema.Draft202012Validator)


@pytest.fixture(scope="module")
def one_cell_run(tmp_path_factory, digits_folder, clip_file):
    """A tiny CLIP and a "specialist" of it (the same weights), zero-shot on real digits and verification on real
    faces, so summary.json holds a GELO, its interval and a biometric gain; run in this process (torch imported)."""
    root = tmp_path_factory.mktemp("prov")
    write_yaml(root / "clip.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    write_bin(root / "lfw.bin", n_pairs=10)
    config = {
        "name": "prov",
        "models": [
            {"name": "clip", "spec": "clip.yaml"},
            {"name": "ft", "spec": "clip.yaml", "base": "clip", "task": "fr"},
        ],
        "general": {"datasets": ["digits"], "protocols": ["zeroshot"], "roots": {"digits": str(digits_folder)}},
        "biometric": [{"name": "lfw", "protocol": "face_verification", "path": "lfw.bin"}],
        "workers": 0,
    }
    write_yaml(root / "prov.yaml", config)
    summary = run_experiment(root / "prov.yaml", out=root / "run", log=lambda line: None)
    assert summary.ran == 4
    return root


def test_the_resolved_config_reruns_to_the_same_cells(one_cell_run):
    out = one_cell_run / "run"
    original, copy = load_config(one_cell_run / "prov.yaml"), load_config(out / "config.resolved.yaml")
    assert [c.key for c in plan(copy)] == [c.key for c in plan(original)]
    assert copy.config_hash == original.config_hash
    text = (out / "config.resolved.yaml").read_text()
    assert "probe_recipe: lbfgs" in text and "headline: catalog" in text  # defaults filled in
    assert str(one_cell_run / "clip.yaml") in text  # paths absolute: the copy reads the same files from anywhere
    again = run_experiment(out / "config.resolved.yaml", out=out, log=lambda line: None)
    assert (again.planned, again.ran, again.skipped) == (4, 0, 4)  # same keys: nothing to compute
    records = json.loads((out / "provenance.json").read_text())["runs"]
    assert [r["cells_run"] for r in records][:2] == [4, 0]


def test_summary_and_report_carry_true_provenance(one_cell_run):
    out = one_cell_run / "run"
    summary = json.loads((out / "summary.json").read_text())
    validate(summary, "summary")
    from overspec.results.store import SCHEMA_VERSION

    assert summary["schema"] == "overspec.summary" and summary["results_schema_version"] == SCHEMA_VERSION
    assert summary["gelo"]["zeroshot"] == {"ft": 1.0} and summary["biometric_gains"][0]["gain"] == 0.0
    record = summary["provenance"][-1]
    from importlib.metadata import version

    from overspec import __version__

    assert record["torch"] == torch.__version__ and record["cuda"] == torch.version.cuda
    assert record["python"] == platform.python_version() and record["overspec"] == __version__
    assert record["open_clip"] == version("open_clip_torch") and record["timm"] == version("timm")
    assert record["host"] == socket.gethostname() and record["command"] == sys.argv
    assert (record["device"], record["precision"]) == ("cpu", "fp32")
    assert record["started_at"] <= record["finished_at"] and record["started_at"].endswith("+00:00")
    with open(out / "results.csv") as f:
        assert {row["config_hash"] for row in csv.DictReader(f)} == {record["config_hash"]}
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert record["git_commit"] == (head.strip() or None)  # run from this checkout
    report = (out / "report.md").read_text()
    assert "## Provenance" in report and f"torch {torch.__version__}" in report
    assert f"config_hash `{record['config_hash']}`" in report
    assert "Provenance" in (out / "report.html").read_text()


def test_both_documents_share_one_provenance_definition():
    assert shipped_schema("summary")["$defs"]["provenance"] == shipped_schema("eval")["$defs"]["provenance"]


def test_torch_version_read_without_importing_torch_is_the_imported_one():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # importing torch fails in this process
        "from overspec._versions import torch_build; print(*torch_build())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [torch.__version__, str(torch.version.cuda)]


def test_an_installed_package_has_no_commit(tmp_path, monkeypatch):
    """Outside a checkout (no .git beside pyproject.toml above the package) the commit is none, even inside some
    other git repository."""
    import overspec.provenance as provenance

    fake = tmp_path / "site" / "lib" / "overspec" / "provenance.py"
    fake.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # an unrelated repository around it
    monkeypatch.setattr(provenance, "__file__", str(fake))
    provenance.git_state.cache_clear()
    try:
        assert provenance.git_state() == (None, None)
    finally:
        provenance.git_state.cache_clear()


def test_verbose_adds_debug_lines_and_quiet_says_nothing(one_cell_run):
    from typer.testing import CliRunner

    from overspec.cli import app

    run = ["run", str(one_cell_run / "prov.yaml"), "--out", str(one_cell_run / "run")]
    plain, verbose, quiet = (CliRunner().invoke(app, [*run, *flag]) for flag in ([], ["-v"], ["--quiet"]))
    assert plain.exit_code == verbose.exit_code == quiet.exit_code == 0, plain.output
    resolved = one_cell_run / "run" / "config.resolved.yaml"
    assert "running 0" in plain.stderr and "the experiment as it runs" not in plain.stderr
    assert "running 0" in verbose.stderr and f"the experiment as it runs: {resolved}" in verbose.stderr
    assert quiet.stderr == ""

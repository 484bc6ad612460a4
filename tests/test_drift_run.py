"""Drift end to end: ``analysis.drift`` in an experiment (study-format specialist, real images), its documents,
the report section and figures, reruns; ``overspec drift``; the Spearman interval of the accuracy relation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers.cli import write_yaml
from helpers.models import tiny_clip, to_split_lora_format
from overspec.cli import app
from overspec.errors import ConfigError


@pytest.fixture(scope="module")
def study(tmp_path_factory, digits_folder, face_dir) -> Path:
    root = tmp_path_factory.mktemp("drift_study")
    torch.save(tiny_clip().state_dict(), root / "clip.pt")
    state, _ = to_split_lora_format(tiny_clip(), 4, seed=3)
    torch.save(state, root / "fr_backbone.pth")
    write_yaml(root / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"})
    write_yaml(
        root / "fr.yaml", {"family": "froundation", "checkpoint": "fr_backbone.pth", "lora": {"r": 4, "alpha": 8}}
    )
    config = {
        "name": "drifting",
        "models": [
            {"name": "clip", "spec": "clip.yaml"},
            {"name": "fr", "spec": "fr.yaml", "base": "clip", "task": "fr"},
        ],
        "general": {"datasets": ["digits"], "protocols": ["zeroshot"], "roots": {"digits": str(digits_folder)}},
        "analysis": {
            "drift": {
                "datasets": ["digits", {"name": "faces", "path": str(face_dir), "images": "face"}],
                "n": 40,
                "k": 3,
                "permutations": 4,
            }
        },
        "workers": 0,
    }
    write_yaml(root / "drifting.yaml", config)
    return root


@pytest.mark.slow  # ~17 s: an experiment, its report and figures
def test_an_experiment_compares_each_model_with_its_base(study, tmp_path, monkeypatch):
    from overspec.config import load_config
    from overspec.runner import run_experiment
    from overspec.runner.drift import read_drift, run_drift

    out = tmp_path / "run"
    run_experiment(study / "drifting.yaml", out=out, log=lambda _: None)
    documents = {d["dataset"]: d for d in read_drift(out)}
    assert set(documents) == {"digits", "faces"}
    faces, digits = documents["faces"], documents["digits"]
    assert (faces["model"], faces["base"], faces["images"], faces["n"]) == ("fr", "clip", "face", 12)
    assert digits["n"] == 40 and digits["images"] == "general"
    assert [x["layer"] for x in digits["layers"]] == ["block 0", "block 1", "embedding"]
    assert all(x["cka"] < 1 for x in digits["layers"])  # LoRA on every block moves every block
    report = (out / "report.md").read_text()
    assert "Layer-wise drift from the base" in report and "![drift_layers](figures/drift_layers.png)" in report
    assert (out / "figures" / "drift_vs_accuracy.png").exists() and (out / "tables" / "drift_layers.csv").exists()
    rows = (out / "tables" / "drift_layers.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3
    # a rerun finds every document by its content key and compares nothing
    from overspec.analysis import drift as analysis

    monkeypatch.setattr(analysis, "compare_layers", lambda *a, **k: pytest.fail("compared again"))
    experiment = load_config(study / "drifting.yaml")
    assert len(run_drift(experiment, experiment.analysis.drift, out, log=lambda _: None)) == 2


def test_drift_settings_are_checked(study, tmp_path):
    from overspec.config import load_config

    text = (study / "drifting.yaml").read_text().replace("permutations: 4", "permutations: 1")
    (tmp_path / "bad.yaml").write_text(
        text.replace("clip.yaml", str(study / "clip.yaml")).replace("fr.yaml", str(study / "fr.yaml"))
    )
    with pytest.raises(ConfigError, match="analysis.drift.permutations"):
        load_config(tmp_path / "bad.yaml")


def test_the_command_prints_every_layer(study, face_dir):
    spec = str(study / "clip.yaml")
    result = CliRunner().invoke(
        app, ["drift", spec, str(study / "fr.yaml"), str(face_dir), "--json", "--k", "3", "--permutations", "2",
              "--layers", "block 0,-1", "--workers", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [x["layer"] for x in document["layers"]] == ["block 0", "embedding"]
    assert document["n"] == 12 and document["k"] == 3 and document["permutations"] == 2
    bad = CliRunner().invoke(app, ["drift", spec, spec, str(face_dir), "--layers", "block 9"])
    assert bad.exit_code != 0 and "block 9" in str(bad.exception)


def test_spearman_interval():
    from scipy.stats import spearmanr

    from overspec.report.drift import spearman_interval

    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = -x + 0.3 * rng.normal(size=30)
    rho, (low, high) = spearman_interval(x, y, resamples=300)
    assert rho == pytest.approx(spearmanr(x, y).statistic) and low <= rho <= high < 0
    assert np.isnan(spearman_interval(x[:2], y[:2])[0])
    rho, interval = spearman_interval(x[:4], y[:4])
    assert np.isfinite(rho) and np.isnan(interval).all()  # 4 points: a ρ, no interval

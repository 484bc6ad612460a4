"""`overspec frontier` end to end on a tiny CLIP: a scaled LoRA specialist and an L2-SP fine-tune per strength,
every point an ordinary cell (a rerun runs none and trains nothing), the summary read back from the stored rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.cli import overspec, write_yaml
from helpers.data import write_bin
from helpers.finetune import tiny_setup
from overspec.analysis.frontier import pareto_mask, value_at
from overspec.errors import ConfigError
from overspec.finetune.config import load_finetune_config
from overspec.finetune.train import finetune


def frontier_config(tmp_path, digits_folder, **frontier) -> object:
    write_bin(tmp_path / "pairs.bin", n_pairs=20)
    config = {
        "name": "tiny-frontier",
        "output": "run",
        "models": [{"name": "clip", "spec": "clip.yaml", "task": "general"}],
        "general": {"datasets": ["digits"], "roots": {"digits": str(digits_folder)}, "protocols": ["linear_probe"]},
        "biometric": [{"name": "pairs", "protocol": "face_verification", "path": "pairs.bin"}],
        "frontier": {
            "base": "clip",
            "methods": [
                {"name": "lora", "task": "fr", "model": "out/model.yaml", "grid": [0.5, 1.0]},
                {"name": "l2sp", "task": "fr", "finetune": "ft.yaml", "strength": "l2sp_weight", "grid": [10.0]},
            ],
            "n_boot": 200,
            **frontier,
        },
    }
    return write_yaml(tmp_path / "frontier.yaml", config)


@pytest.mark.slow
def test_frontier_runs_points_as_cells_and_summarises_them(tmp_path, digits_folder):
    from overspec.frontier.run import run_frontier
    from overspec.results import ResultStore

    tiny_setup(tmp_path, epochs=1, max_steps=2)
    finetune(load_finetune_config(tmp_path / "ft.yaml"), log=lambda line: None)
    config = frontier_config(tmp_path, digits_folder)
    done = overspec("frontier", str(config), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    fr = summary["tasks"]["fr"]
    assert [p["model"] for p in fr["points"]] == ["clip", "lora@0.5", "lora@1", "l2sp@10"]
    # every model re-scored from its exported per-sample data to its stored rows: the intervals are paired
    assert summary["paired"]["parametric_fallback"] == {}
    assert set(summary["paired"]["test_sets"]) == {"fr/pairs/face_verification", "general/digits"}
    assert all(0 <= p["pareto_share"] <= 1 for p in fr["points"])

    store = ResultStore(tmp_path / "run" / "results.sqlite", create=False)
    rows = {(r.model, r.dataset): r for r in store.rows(current=True) if r.metric == "headline"}
    store.close()
    for point in fr["points"]:  # the summary's numbers are the stored rows'
        assert point["biometric"] == rows[(point["model"], "pairs")].value
        base, mine = rows[("clip", "digits")].value, rows[(point["model"], "digits")].value
        assert point["gelo"] == pytest.approx(mine / base, rel=1e-12)
    x = np.array([p["biometric"] for p in fr["points"]])
    y = np.array([p["gelo"] for p in fr["points"]])
    assert [p["pareto"] for p in fr["points"]] == list(pareto_mask(x, y))
    assert fr["curves"]["lora"]["models"] == ["clip", "lora@0.5", "lora@1"]
    # matched at the base's score plus half the smallest best gain of the methods whose best point beats the base
    # in >= 97.5 % of the draws (summary.matched_gain)
    shares = fr["matched"]["beats_base_share"]
    best = {"lora": x[1:3].max(), "l2sp": x[3]}
    gains = [best[m] - x[0] for m in best if best[m] > x[0] and shares[m] >= 0.975]
    target = x[0] + 0.5 * min(gains) if gains else np.nan
    assert fr["matched"]["biometric"] == (None if np.isnan(target) else pytest.approx(target))
    for k, p in enumerate(fr["points"]):  # each point's intervals: the percentiles of its paired draws
        assert p["intervals"] == {
            "biometric": "paired",
            "gelo": "exact (the base against itself)" if k == 0 else "paired",
        }
    expected = value_at(x[:3], y[:3], target)
    assert fr["matched"]["methods"]["lora"]["gelo"] == (None if np.isnan(expected) else pytest.approx(expected))
    assert (tmp_path / "run" / "figures" / "frontier_fr.png").exists()
    assert "Trade-off frontier, FR" in (tmp_path / "run" / "report.md").read_text()

    trained = tmp_path / "run" / "frontier" / "train" / "l2sp" / "10" / "model.yaml"
    stamp = trained.stat().st_mtime_ns
    lines = []
    run_frontier(config, log=lines.append)
    assert any("running 0" in line for line in lines) and trained.stat().st_mtime_ns == stamp  # nothing run again


def test_frontier_config_errors(tmp_path, digits_folder):
    from overspec.frontier.run import load_frontier_config

    tiny_setup(tmp_path)
    config = frontier_config(tmp_path, digits_folder, base="nope")
    with pytest.raises(ConfigError, match=r"frontier.base': nope is not a model"):
        load_frontier_config(config)
    bad = {"name": "x", "task": "fr", "model": "m.yaml", "strength": "l2sp_weight", "grid": [1]}
    with pytest.raises(ConfigError, match="trains one model per value"):
        load_frontier_config(frontier_config(tmp_path, digits_folder, methods=[bad]))
    missing = {"name": "x", "task": "fr", "grid": [1]}
    with pytest.raises(ConfigError, match="give `model`"):
        load_frontier_config(frontier_config(tmp_path, digits_folder, methods=[missing]))

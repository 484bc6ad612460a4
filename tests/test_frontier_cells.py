"""What docs/frontier.md promises of `overspec frontier` beyond its maths: a training point killed mid-run
resumes after its last epoch and ends as an uninterrupted one, a changed forgetting setting trains afresh,
cells on Ray give the local run's rows and frontier, merged models sweep like any other, and bad configs
are one line naming the file and key."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from helpers.cli import overspec, overspec_command, write_yaml
from helpers.finetune import tiny_setup
from test_frontier_run import frontier_config

L2SP = {"name": "l2sp", "task": "fr", "finetune": "ft.yaml", "strength": "l2sp_weight", "grid": [10.0]}
LORA = {"name": "lora", "task": "fr", "finetune": "ft.yaml", "grid": [0.5, 1.0]}  # trained once, then scaled
RUN_SPECIFIC = ("created_at",)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor a fine-tune exported (adapter and head), by file and name."""
    files = sorted(folder.rglob("*.safetensors"))
    assert files, f"no weights under {folder}"
    return {f"{f.relative_to(folder)}:{k}": v for f in files for k, v in load_file(str(f)).items()}


def rows(out: Path) -> list[str]:
    with open(out / "results.csv") as f:
        return sorted(str({k: v for k, v in r.items() if k not in RUN_SPECIFIC}) for r in csv.DictReader(f))


def numbers(value, path=""):
    """Every number of a JSON document by its path (the strings are paths and labels)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in numbers(item, f"{path}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in numbers(item, f"{path}/{i}").items()}
    return {path: value} if isinstance(value, int | float) and not isinstance(value, bool) else {}


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, digits_folder):
    """`overspec frontier` killed (SIGKILL, process group) as soon as its L2-SP point has a checkpoint, then rerun
    to the end: (folder, config, the epoch the kill left, the rerun's process)."""
    root = tmp_path_factory.mktemp("frontier_cells")
    tiny_setup(root, epochs=3, batch_size=16)  # 2 steps an epoch
    config = frontier_config(root, digits_folder, methods=[L2SP, LORA])
    data = yaml.safe_load(config.read_text())
    data["general"]["protocols"] = ["zeroshot"]  # the linear probe's C search would take most of the run
    write_yaml(config, data)
    checkpoint = root / "run" / "frontier" / "train" / "l2sp" / "10" / "checkpoint.pt"
    child = subprocess.Popen(
        overspec_command("frontier", str(config)),
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not checkpoint.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert checkpoint.exists(), "the frontier ended or stalled before its first epoch"
    epoch = torch.load(checkpoint, weights_only=True)["epoch"]
    done = overspec("frontier", str(config), "--json", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, config, epoch, done


@pytest.mark.slow
def test_a_killed_training_point_resumes_after_its_last_epoch_and_ends_as_an_uninterrupted_one(resumed, tmp_path):
    from overspec.frontier.points import trained
    from overspec.models.identity import spec_fingerprint

    root, _, epoch, done = resumed
    assert epoch < 2  # killed with an epoch still to train
    lines = done.stderr.splitlines()
    assert f"resuming after epoch {epoch + 1} (step {2 * (epoch + 1)})" in lines  # not from epoch 0
    assert sum("resuming" in line for line in lines) == 1  # the other method trained once, from the start
    point = root / "run" / "frontier" / "train" / "l2sp" / "10"
    assert torch.load(point / "checkpoint.pt", weights_only=True)["epoch"] == 2
    trained(str(root / "ft.yaml"), tmp_path / "whole", lambda line: None, l2sp_weight=10.0)
    # the epoch's seed and the saved optimizer/scheduler state make the resumed run the same arithmetic
    got, expected = weights(point), weights(tmp_path / "whole")
    assert got.keys() == expected.keys() and any("lora_A" in k for k in got)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    # and the same model to the planner, though peft wrote each adapter from another process
    assert spec_fingerprint(point / "model.yaml") == spec_fingerprint(tmp_path / "whole" / "model.yaml")
    summary = json.loads(done.stdout)
    assert [p["model"] for p in summary["tasks"]["fr"]["points"]] == ["clip", "l2sp@10", "lora@0.5", "lora@1"]


@pytest.mark.slow
def test_cells_on_ray_give_the_local_rows_and_frontier(resumed):
    """The local run's results removed (its trained points kept), the same frontier on Ray, embedding with this
    test's empty feature cache: the same rows, values to the last digit, and the same frontier numbers."""
    root, config, _, local = resumed
    expected_rows = rows(root / "run")
    for item in (root / "run").iterdir():
        if item.name != "frontier":
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    on_ray = overspec("frontier", str(config), "--executor", "ray", "--json", cwd=root)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert "frontier: training" not in on_ray.stderr  # a finished point is reused
    assert "ray: 8 cells of 4 models" in on_ray.stderr  # every cell ran again, on Ray
    assert rows(root / "run") == expected_rows
    expected, got = numbers(json.loads(local.stdout)), numbers(json.loads(on_ray.stdout))
    assert len(expected) > 20 and got == expected


def test_a_changed_forgetting_setting_trains_afresh(tmp_path, monkeypatch):
    """A checkpoint left by a crash under other settings is not resumed (finetune would refuse to mix them)."""
    import overspec.finetune.train as train
    from overspec.frontier.points import trained

    config = tiny_setup(tmp_path, epochs=2, batch_size=16)
    original = train.finetune

    class Killed(Exception):
        pass

    def crash(epoch):
        raise Killed

    monkeypatch.setattr(train, "finetune", lambda config, **kw: original(config, **kw, on_epoch_end=crash))
    with pytest.raises(Killed):
        trained(str(config), tmp_path / "point", lambda line: None, l2sp_weight=1.0)
    monkeypatch.setattr(train, "finetune", original)
    data = yaml.safe_load(config.read_text())
    write_yaml(config, {**data, "forgetting": {"freeze_blocks": [0]}})
    lines = []
    trained(str(config), tmp_path / "point", lines.append, l2sp_weight=1.0)
    assert not any("resuming" in line for line in lines) and any("frontier: training" in line for line in lines)
    state = torch.load(tmp_path / "point" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and state["config"]["forgetting"] == {
        "distill_weight": 0.0,
        "distill_images": None,
        "l2sp_weight": 1.0,
        "freeze_blocks": [0],
    }


# ---- bad configs: one line naming the file, the key and the fix -------------------------------------------


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        (
            {**L2SP, "finetune": "nope.yaml"},
            "key 'frontier.methods.0.finetune': fine-tune config {root}/nope.yaml does not exist; give an "
            "`overspec finetune` config (a path relative to frontier.yaml)",
        ),
        ({**L2SP, "grid": [0.5, "abc"]}, "key 'frontier.methods.0.grid.1': Input should be a valid number (got 'abc')"),
        ({**L2SP, "grid": [True]}, "key 'frontier.methods.0.grid.0': Input should be a valid number (got True)"),
        (
            {**L2SP, "grid": [1e-7, 1.0000001e-7]},
            "key 'frontier.methods.0.grid': strengths 1e-07 and 1.0000001e-07 share the label 1e-07; space them "
            "further",
        ),
        (
            {**L2SP, "strength": "l2sp"},
            "key 'frontier.methods.0.strength': Input should be 'scale', 'l2sp_weight' or 'distill_weight' "
            "(got 'l2sp')",
        ),
        (
            {**L2SP, "task": "mad"},
            "key 'frontier.methods.0.task': no benchmark of task mad in `biometric:` (tasks there: fr); add one, "
            "or give the method the task of one",
        ),
    ],
    ids=["missing-finetune", "grid-string", "grid-bool", "grid-same-label", "unknown-strength", "task-no-benchmark"],
)
def test_frontier_config_errors_are_one_line(tmp_path, digits_folder, command, monkeypatch, method, expected):
    tiny_setup(tmp_path)
    config = frontier_config(tmp_path, digits_folder, methods=[method])
    monkeypatch.chdir(tmp_path)
    line = command("frontier", "frontier.yaml")
    assert line == "error: frontier.yaml: " + expected.format(root=tmp_path)
    assert not (tmp_path / "run").exists()  # refused before anything trained or ran
    assert config.exists()


# ---- merged models sweep like any other ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_merge_sweeps_its_lambda_and_a_members_new_weights_make_it_another_model(tmp_path, digits_folder):
    """`overspec sweep` of a `family: merge` spec file: each point is θ0 + s·w·τ (checked against the weights
    computed here), s = 0 is the base (its fingerprint), s = 1 the merge as written; new weights in a member's
    file (same path) make each point another model, at plan time and at load time."""
    from helpers.data import write_bin
    from helpers.models import tiny_clip
    from overspec.models import load_model
    from overspec.models.identity import spec_fingerprint
    from test_merge import full_finetune

    torch.save(tiny_clip().state_dict(), tmp_path / "clip.pt")
    write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"})
    full_finetune(tmp_path, "fr", 1)
    spec = {"family": "merge", "base": "clip.yaml", "models": [{"model": "fr.yaml", "weight": 0.6}]}
    merged = write_yaml(tmp_path / "merged.yaml", {**spec, "method": "task_arithmetic"})
    write_bin(tmp_path / "pairs.bin", n_pairs=20)
    suite = {
        "name": "merge-sweep",
        "general": {"datasets": ["digits"], "roots": {"digits": str(digits_folder)}, "protocols": ["zeroshot"]},
        "biometric": [{"name": "pairs", "protocol": "face_verification", "path": "pairs.bin"}],
    }
    write_yaml(tmp_path / "suite.yaml", suite)

    def sweep():
        args = ("sweep", "merged.yaml", "suite.yaml", "--out", "sweep", "--scales", "0.5", "--task", "fr", "--json")
        done = overspec(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        points = json.loads(done.stdout)
        return [{**p, "spec": tmp_path / p["spec"]} for p in points], done.stderr  # --out relative to cwd

    points, _ = sweep()
    assert [p["scale"] for p in points] == [0.0, 0.5, 1.0]
    base, member = (load_model(tmp_path / f).module.state_dict() for f in ("clip.yaml", "fr.yaml"))
    half = load_model(points[1]["spec"]).module.state_dict()
    for name, theta0 in base.items():  # θ0 + λ·w·(θ_fr − θ0), λ = 0.5, in float64
        if theta0.is_floating_point():
            expected = (theta0.double() + 0.5 * 0.6 * (member[name].double() - theta0.double())).float()
            assert torch.equal(half[name], expected), name
    assert load_model(points[0]["spec"]).fingerprint == load_model(tmp_path / "clip.yaml").fingerprint
    assert load_model(points[2]["spec"]).fingerprint == load_model(merged).fingerprint
    before = load_model(points[1]["spec"]).fingerprint
    with open(tmp_path / "sweep" / "run" / "results.csv") as f:
        table = {(r["model"], r["dataset"]): float(r["value"]) for r in csv.DictReader(f) if r["metric"] == "headline"}
    assert [p["biometric"] for p in points] == [table[(f"s={s:g}", "pairs")] for s in (0, 0.5, 1)]

    planned = spec_fingerprint(points[1]["spec"])  # what the planner keys the point's cells by
    full_finetune(tmp_path, "fr", 2)  # other weights, same file name: the same point spec is another model
    assert spec_fingerprint(points[1]["spec"]) != planned and load_model(points[1]["spec"]).fingerprint != before

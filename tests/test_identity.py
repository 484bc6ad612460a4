"""Result identity: every number knows its model, base, task and metric, resolved once at plan time."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.cli import overspec, write_yaml
from helpers.data import build_attack_layout
from helpers.models import tiny_clip, to_split_lora_format
from overspec.results.store import SCHEMA_VERSION
from overspec.runner import run_experiment


@pytest.fixture(scope="module")
def two_bases(tmp_path_factory, digits_folder):
    """Two tiny CLIPs of different widths (stand-ins for ViT-B/16 and ViT-L/14) and a FRoundation-format
    specialist of each: one finds its base by content (its spec's `base:`), the other is given it by name."""
    root = tmp_path_factory.mktemp("two_bases")
    for arch, width in (("b", 64), ("l", 128)):
        torch.save(tiny_clip(seed=1, width=width).state_dict(), root / f"clip_{arch}.pt")
        write_yaml(root / f"clip_{arch}.yaml", {"family": "openai_clip", "weights": f"clip_{arch}.pt"})
        state, _ = to_split_lora_format(tiny_clip(seed=1, width=width), 4, seed=7)
        torch.save(state, root / f"fr_{arch}.pth")
        write_yaml(
            root / f"fr_{arch}.yaml",
            {"family": "froundation", "checkpoint": f"fr_{arch}.pth", "lora": {"r": 4, "alpha": 8}}
            | ({"base": "clip_b.yaml"} if arch == "b" else {}),
        )
    roots = {"digits": str(digits_folder), "digits_again": str(digits_folder)}
    write_yaml(
        root / "two.yaml",
        {
            "name": "two",
            "models": [
                {"name": "clip-b", "spec": "clip_b.yaml"},
                {"name": "clip-l", "spec": "clip_l.yaml"},
                {"name": "fr-b", "spec": "fr_b.yaml"},  # base found by content: the spec's base is clip_b.yaml
                {"name": "fr-l", "spec": "fr_l.yaml", "base": "clip-l", "task": "fr"},
            ],
            "general": {"datasets": sorted(roots), "protocols": ["zeroshot", "linear_probe"], "roots": roots},
            "workers": 0,
        },
    )
    lines = []
    run_experiment(root / "two.yaml", out=root / "run", log=lines.append)
    assert lines[0] == "16 cells planned, 0 already done, running 16"
    return root


def table(out: Path) -> list[dict]:
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def headline_mean(rows, model, protocol) -> float:
    values = [
        float(r["value"]) for r in rows if (r["model"], r["protocol"], r["metric"]) == (model, protocol, "headline")
    ]
    assert len(values) == 2
    return float(np.mean(values))


@pytest.mark.slow
def test_every_specialist_gets_its_gelo_against_its_own_base_whatever_the_hash_seed(two_bases):
    out = two_bases / "run"
    rows = table(out)
    assert {(r["model"], r["base"], r["model_task"]) for r in rows} == {
        ("clip-b", "", "general"),
        ("clip-l", "", "general"),
        ("fr-b", "clip-b", "fr"),  # froundation checkpoints are FR models: the task comes from the family
        ("fr-l", "clip-l", "fr"),
    }
    summaries = []
    for seed in (1, 2, 3, 4):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        rebuilt = overspec("report", str(out), env=env)
        assert rebuilt.returncode == 0, rebuilt.stderr
        summaries.append(json.loads((out / "summary.json").read_text()))
    assert all(s == summaries[0] for s in summaries)
    summary = summaries[0]
    assert summary["bases"] == {"fr-b": "clip-b", "fr-l": "clip-l"} and summary["no_gelo"] == {}
    for protocol in ("zeroshot", "linear_probe"):
        assert set(summary["gelo"][protocol]) == {"fr-b", "fr-l"}
        for model, base in summary["bases"].items():
            expected = headline_mean(rows, model, protocol) / headline_mean(rows, base, protocol)
            assert summary["gelo"][protocol][model] == pytest.approx(expected, rel=1e-12)


def test_a_checkpoint_replaced_in_place_reruns_exactly_its_cells(two_bases, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(two_bases / "run", out)
    before = {(r["model"], r["dataset"], r["protocol"], r["metric"]): r["value"] for r in table(out)}
    state, _ = to_split_lora_format(tiny_clip(seed=1, width=128), 4, seed=8)  # another fine-tune, same file
    torch.save(state, two_bases / "fr_l.pth")
    try:
        lines = []
        run_experiment(two_bases / "two.yaml", out=out, log=lines.append)
    finally:
        state, _ = to_split_lora_format(tiny_clip(seed=1, width=128), 4, seed=7)
        torch.save(state, two_bases / "fr_l.pth")
    assert lines[0] == "16 cells planned, 12 already done, running 4"
    assert all("fr-l /" in line for line in lines[1:5])
    rows = table(out)
    counts = Counter((r["model"], r["dataset"], r["protocol"], r["metric"]) for r in rows)
    assert set(counts.values()) == {1} and counts.keys() == before.keys()  # each number once: the current plan
    changed = {
        k
        for k, v in before.items()
        if {r["value"] for r in rows if (r["model"], r["dataset"], r["protocol"], r["metric"]) == k} != {v}
    }
    assert changed and {k[0] for k in changed} == {"fr-l"}
    with open(out / "superseded.csv") as f:
        superseded = list(csv.DictReader(f))
    assert {r["model"] for r in superseded} == {"fr-l"} and len(superseded) == sum(
        1 for r in rows if r["model"] == "fr-l"
    )


def test_features_computed_in_fp16_on_cuda_and_fp32_on_the_cpu_are_cached_apart(clip_file, monkeypatch):
    from overspec.compute import compute_for
    from overspec.features.cache import FeatureCache
    from overspec.models import load_model

    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    settings = {"cpu": compute_for(encoder.device).key}
    cuda = torch.device("cuda", 1)
    settings |= {"cuda amp": compute_for(cuda).key, "cuda fp32": compute_for(cuda, amp=False).key}
    assert settings == {"cpu": "cpu-fp32", "cuda amp": "cuda-fp16-autocast", "cuda fp32": "cuda-fp32"}
    assert compute_for("cuda:0") == compute_for(cuda)  # the index does not change a number
    keys = {FeatureCache().key(model="m", dataset="d", preprocess="p", compute=c) for c in settings.values()}
    assert len(keys) == 3


def test_the_compute_is_in_every_cell_key_and_row_and_threads_batches_workers_are_not(two_bases):
    """One notion of compute (device type and arithmetic): another device is another cell; batch size, workers and
    the executor are not part of a cell; every row records its device and precision."""
    from overspec.config import load_config
    from overspec.runner.plan import plan

    experiment = load_config(two_bases / "two.yaml")
    keys = [c.key for c in plan(experiment)]
    assert {c.compute.key for c in plan(experiment)} == {"cpu-fp32"}
    same = experiment.model_copy(update={"batch_size": 3, "workers": 2, "executor": {"name": "ray"}})
    assert [c.key for c in plan(same)] == keys
    for device in ("cuda", "cuda:1"):
        on_gpu = plan(experiment.model_copy(update={"device": device}))
        assert {c.compute.key for c in on_gpu} == {"cuda-fp16-autocast"}
        assert not set(keys) & {c.key for c in on_gpu}  # every cell runs again, once per device type
    assert [c.key for c in plan(experiment.model_copy(update={"device": "cpu"}))] == keys
    rows = table(two_bases / "run")
    assert {(r["device"], r["precision"]) for r in rows} == {("cpu", "fp32")}


def test_conse_works_with_the_prompt_scorer(tmp_path):
    """ConSE's text lives in the sentence encoder's space (384-d), its images in EfficientNet's (1,280-d):
    every protocol that compares images with prompts maps the images first."""
    from overspec.data.attack_layouts import LAYOUTS
    from overspec.data.attack_protocol import load_attack_dataset, write_protocol_csv
    from overspec.metrics import attack_detection_report
    from overspec.models import load_model
    from overspec.protocols import PROTOCOLS
    from overspec.protocols.attack_detection import PROMPTS
    from overspec.protocols.zeroshot import text_classifier
    from overspec.quickstart.run import BASE, MINILM

    build_attack_layout("syn_mad22", tmp_path / "syn")
    data = load_attack_dataset(
        write_protocol_csv(LAYOUTS.get("syn_mad22")(tmp_path / "syn"), tmp_path / "m.csv"), task="mad"
    )
    encoder = load_model({"family": "conse", "image": BASE, "weights": MINILM})
    result = PROTOCOLS.get("attack_detection")(encoder, data, scorer="prompt", num_workers=0, progress=False)
    test = data.split("test")
    transform = encoder.preprocess.transform()
    with torch.no_grad():
        features = encoder.encode_image(torch.stack([transform(test.images.load(i)) for i in range(len(test))]))
    mapped = encoder.to_text_space(features.numpy())
    assert features.shape[1] == 1280 and mapped.shape[1] == 384
    e = mapped / np.linalg.norm(mapped, axis=1, keepdims=True)
    bonafide, attack = PROMPTS["mad"]
    direct = (e @ text_classifier(encoder, ["b"], bonafide) - e @ text_classifier(encoder, ["a"], attack)).ravel()
    assert result.details["scorer"] == "prompt"
    assert result.metrics["auc"] == pytest.approx(attack_detection_report(direct, test.bonafide).auc, abs=1e-12)


def test_loading_models_never_imports_the_training_package():
    code = (
        "import sys, overspec.models, overspec.models.peft_family, overspec.models.weight_space, overspec.runner;"
        "print(sorted(m for m in sys.modules if m.startswith('overspec.finetune')))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert found.returncode == 0 and found.stdout.strip() == "[]", found.stderr


SCHEMA_1 = """
CREATE TABLE results (run_id TEXT, model TEXT, arch TEXT, dataset TEXT, task TEXT, protocol TEXT, metric TEXT,
  value REAL, ci_low REAL, ci_high REAL, n INTEGER, higher_is_better INTEGER, config_hash TEXT,
  model_fingerprint TEXT, dataset_fingerprint TEXT, overspec_version TEXT, created_at TEXT, cell TEXT);
CREATE TABLE cells (cell TEXT PRIMARY KEY, model TEXT, dataset TEXT, protocol TEXT, details TEXT, finished_at TEXT);
"""


def test_a_store_written_by_release_0_1_opens_migrated(tmp_path):
    """overspec 0.1 kept model task, base and headline metric in each cell's details JSON."""
    from overspec.results import ResultStore

    out = tmp_path / "old_run"
    out.mkdir()
    with sqlite3.connect(out / "results.sqlite") as db:
        db.executescript(SCHEMA_1)
        for cell, model, dataset, value, base, task in (
            ("c1", "clip", "digits", 0.5, None, "general"),
            ("c2", "fr", "digits", 0.4, "clip", "fr"),
            ("c3", "clip", "mnist", 0.6, None, "general"),
            ("c4", "fr", "mnist", 0.3, "/specs/clip.yaml", "fr"),  # a spec path, not a model of the store
        ):
            for metric in ("acc1", "headline"):
                db.execute(
                    "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,NULL,NULL,10,1,'h','f','d','0.1.0','t',?)",
                    ("r", model, "vit", dataset, "general", "zeroshot", metric, value, cell),
                )
            details = {"headline_metric": "acc1", "model_task": task, "base": base}
            db.execute(
                "INSERT INTO cells VALUES (?,?,?,?,?,?)", (cell, model, dataset, "zeroshot", json.dumps(details), "t")
            )
    store = ResultStore(out / "results.sqlite", create=False)
    rows = {(r.model, r.dataset, r.metric): r for r in store.rows()}
    store.close()
    assert rows[("fr", "digits", "headline")].base == "clip" and rows[("fr", "mnist", "headline")].base is None
    assert (
        rows[("fr", "digits", "acc1")].model_task == "fr" and rows[("clip", "digits", "acc1")].headline_metric == "acc1"
    )
    assert {r.convention for r in rows.values()} == {"clip"}  # zero-shot had one rule before conventions were named
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert {r.ci_method for r in rows.values()} == {None}  # added in schema 4: old rows had no stated method
    assert {(r.device, r.precision) for r in rows.values()} == {(None, None)}  # not recorded then: unknown
    rebuilt = overspec("report", str(out))
    assert rebuilt.returncode == 0, rebuilt.stderr
    summary = json.loads((out / "summary.json").read_text())
    # a base belongs to the model: fr's is clip (from c2), over both datasets
    assert summary["gelo"]["zeroshot"] == {"fr": pytest.approx((0.4 + 0.3) / (0.5 + 0.6), rel=1e-12)}


def test_a_store_from_a_newer_release_or_a_wrong_path_is_one_line(tmp_path):
    from overspec.errors import DataError
    from overspec.results import ResultStore

    with sqlite3.connect(tmp_path / "new.sqlite") as db:
        db.execute("PRAGMA user_version = 9")
    with pytest.raises(DataError, match=rf"newer overspec \(store schema 9, this one reads up to {SCHEMA_VERSION}\)"):
        ResultStore(tmp_path / "new.sqlite")
    target = ResultStore(tmp_path / "target.sqlite")
    with pytest.raises(DataError, match=r"typo.sqlite: no results store there"):
        target.merge(tmp_path / "typo.sqlite")
    target.close()
    assert not (tmp_path / "typo.sqlite").exists()


@pytest.mark.parametrize(
    ("key", "name", "point", "attack", "aggregate", "higher"),
    [
        ("acc1", "acc1", None, None, None, True),
        ("mean_per_class_recall", "mean_per_class_recall", None, None, None, True),
        ("tar_at_far_0.0001", "tar_at_far", "0.0001", None, None, True),
        ("tar_at_far_1e-05", "tar_at_far", "1e-05", None, None, True),
        ("eer@FaceMorpher", "eer", None, "FaceMorpher", None, False),
        ("worst_auc", "auc", None, None, "worst", True),
        ("mean_bpcer_at_apcer_0.1", "bpcer_at_apcer", "0.1", None, "mean", False),
        ("bpcer_at_apcer_0.01@print", "bpcer_at_apcer", "0.01", "print", None, False),
        ("accuracy_std", "accuracy_std", None, None, None, False),
    ],
)
def test_one_metric_key_format(key, name, point, attack, aggregate, higher):
    from overspec.metrics.specs import parse_metric

    parsed = parse_metric(key)
    assert (parsed.spec.name, parsed.point, parsed.attack, parsed.aggregate, parsed.higher_is_better) == (
        name,
        point,
        attack,
        aggregate,
        higher,
    )


def test_unknown_metrics_and_families_are_refused_by_the_registries():
    from overspec.errors import ConfigError, DataError
    from overspec.metrics.specs import metric_key, parse_metric
    from overspec.models import FAMILIES, resolve_spec

    with pytest.raises(DataError, match="metric 'tar_at_far' is not a registered metric"):
        parse_metric("tar_at_far")  # a parameterised metric needs its point
    assert metric_key("tar_at_far", point=0.001) == "tar_at_far_0.001" and metric_key("eer", attack="x") == "eer@x"
    with pytest.raises(ConfigError, match="unknown model family 'froundaton'; did you mean 'froundation'"):
        resolve_spec({"family": "froundaton"})
    assert "finetuned" in FAMILIES and resolve_spec({"family": "finetuned"}).family == "finetuned"


def test_analyze_reads_each_models_base_from_the_table_or_the_command_line(two_bases, tmp_path):
    out = two_bases / "run"
    summary = json.loads((out / "summary.json").read_text())
    from_table = json.loads(overspec("analyze", str(out / "results.csv"), "--json").stdout)
    assert {(r["model"], r["protocol"]): r["gelo"] for r in from_table} == {
        (m, p): g for p, by_model in summary["gelo"].items() for m, g in by_model.items()
    }
    with open(out / "results.csv") as f:
        rows = [{k: v for k, v in r.items() if k != "base"} for r in csv.DictReader(f)]
    stripped = tmp_path / "no_base.csv"
    with open(stripped, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    given = overspec("analyze", str(stripped), "--base", "fr-b=clip-b", "--base", "fr-l=clip-l", "--json")
    assert json.loads(given.stdout) == from_table
    none = overspec("analyze", str(stripped))
    assert none.returncode == 2 and "no model has a base; add a base column, or give --base MODEL=BASE" in none.stderr

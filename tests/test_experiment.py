"""`overspec run` end to end on a small real config: tiny models saved to disk, real images; the store,
CSV, Markdown, HTML, LaTeX and plots; reruns do no forward pass; a killed run resumes to the same results;
bad configs get one clear line."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from helpers.cli import overspec, run_command, write_yaml
from helpers.data import build_attack_layout, write_bin
from helpers.models import tiny_clip, to_split_lora_format
from overspec.data.attack_layouts import LAYOUTS
from overspec.data.attack_protocol import write_protocol_csv

REFERENCE = Path(__file__).resolve().parents[1] / "src" / "overspec" / "reference"


@pytest.fixture(scope="module")
def small_study(tmp_path_factory, digits_folder):
    root = tmp_path_factory.mktemp("study")
    torch.save(tiny_clip().state_dict(), root / "clip.pt")
    state, _ = to_split_lora_format(tiny_clip(), 4, seed=3)
    torch.save(state, root / "fr_backbone.pth")
    state, _ = to_split_lora_format(tiny_clip(), 2, seed=4)
    torch.save(state, root / "mad_backbone.pth")
    torch.save({"linear.weight": torch.randn(2, 32), "linear.bias": torch.zeros(2)}, root / "mad_header.pth")
    write_yaml(root / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt", "reference": "CLIP ViT-B/16"})
    write_yaml(
        root / "fr.yaml",
        {"family": "froundation", "checkpoint": "fr_backbone.pth", "lora": {"r": 4, "alpha": 8}, "base": "clip.yaml"},
    )
    write_yaml(root / "mad.yaml", {"family": "madation", "checkpoint": "mad_backbone.pth", "head": "mad_header.pth"})
    write_bin(root / "lfw.bin", n_pairs=20)
    build_attack_layout("syn_mad22", root / "mad_test")
    build_attack_layout("smdd", root / "mad_train")
    samples = LAYOUTS.get("smdd")(root / "mad_train") + LAYOUTS.get("syn_mad22")(root / "mad_test")
    write_protocol_csv(samples, root / "mad.csv")
    config = {
        "name": "small",
        "models": [
            {"name": "clip", "spec": "clip.yaml"},
            {"name": "fr", "spec": "fr.yaml", "base": "clip", "task": "fr"},
            {"name": "mad", "spec": "mad.yaml", "base": "clip", "task": "mad"},
        ],
        "general": {
            "datasets": ["digits", "digits_again"],
            "protocols": ["zeroshot", "linear_probe"],
            "roots": {"digits": str(digits_folder), "digits_again": str(digits_folder)},
        },
        "biometric": [
            {"name": "lfw", "protocol": "face_verification", "path": "${STUDY}/lfw.bin"},
            {"name": "syn_mad22", "protocol": "attack_detection", "task": "mad", "path": "${STUDY}/mad.csv"},
        ],
        "workers": 0,
    }
    write_yaml(root / "small.yaml", config)
    return root


def run(config: Path, out: Path, env_root: Path) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        run_command(config, out),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "STUDY": str(env_root)},
    )


def values(out: Path) -> dict:
    with open(out / "results.csv") as f:
        return {(r["model"], r["dataset"], r["protocol"], r["metric"]): float(r["value"]) for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def completed_run(small_study) -> Path:
    """The small study run once, uninterrupted, into ``small_study/run``."""
    first = run(small_study / "small.yaml", small_study / "run", small_study)
    assert first.returncode == 0, first.stderr[-3000:]
    return small_study / "run"


def test_run_produces_store_exports_report_and_reruns_without_work(small_study, completed_run):
    out = completed_run
    for name in (
        "results.sqlite",
        "results.csv",
        "report.md",
        "report.html",
        "summary.json",
        "tables/zeroshot.tex",
        "tables/linear_probe.csv",
        "tables/biometric.md",
        "figures/gelo.png",
        "figures/gelo.svg",
        "figures/change_zeroshot.png",
        "figures/tradeoff.svg",
    ):
        assert (out / name).exists(), name
    results = values(out)
    assert ("fr", "digits", "zeroshot", "acc1") in results and (
        "mad",
        "syn_mad22",
        "attack_detection",
        "mean_eer",
    ) in results
    assert ("clip", "lfw", "face_verification", "accuracy") in results
    with open(out / "results.csv") as f:
        conventions = {(r["protocol"], r["convention"]) for r in csv.DictReader(f)}
    assert conventions == {
        ("zeroshot", "clip"),
        ("linear_probe", "lbfgs"),
        ("face_verification", "iso"),
        ("attack_detection", "iso"),
    }  # every row names the rules it follows
    html = (out / "report.html").read_text()
    assert "Conventions (the rules each number follows): attack_detection <code>iso</code> (syn_mad22)" in html
    assert "data:image/png;base64," in html and "<table>" in html and "http" not in html.replace("http-equiv", "")
    summary = yaml.safe_load((out / "summary.json").read_text())
    assert summary["bases"] == {"fr": "clip", "mad": "clip"} and set(summary["gelo"]["zeroshot"]) == {"fr", "mad"}
    # GELO in the summary is the ratio of means of the stored headline values
    zs = {d: results[(m, d, "zeroshot", "headline")] for m in ["fr"] for d in ("digits", "digits_again")}
    base = {d: results[("clip", d, "zeroshot", "headline")] for d in ("digits", "digits_again")}
    assert summary["gelo"]["zeroshot"]["fr"] == pytest.approx(sum(zs.values()) / sum(base.values()))

    second = run(small_study / "small.yaml", out, small_study)
    assert second.returncode == 0 and "running 0" in second.stderr and "embedding" not in second.stderr
    table = second.stdout  # run ends with the results table: each model's headline per dataset, and its GELO
    assert "Headline results" in table and "syn_mad22" in table and "GELO" in table and "(mad)" in table
    assert "time per phase: plan" in second.stderr and "report" in second.stderr.rsplit("time per phase", 1)[1]
    assert values(out) == results

    rebuilt = overspec(
        "report",
        str(out),
        "--reference",
        str(REFERENCE / "chettaoui2025_general.csv"),
    )
    assert rebuilt.returncode == 0, rebuilt.stderr


@pytest.mark.slow
def test_killed_run_resumes_to_identical_results(small_study, completed_run, tmp_path):
    import os

    reference = values(completed_run)
    out = tmp_path / "killed"
    env = {**os.environ, "STUDY": str(small_study), "OVERSPEC_CACHE": str(tmp_path / "fresh_cache")}
    child = subprocess.Popen(
        run_command(small_study / "small.yaml", out),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import sqlite3

    deadline = time.time() + 300
    while time.time() < deadline and child.poll() is None:
        if (out / "results.sqlite").exists():
            try:
                with sqlite3.connect(out / "results.sqlite") as db:
                    if db.execute("SELECT COUNT(*) FROM cells").fetchone()[0] >= 3:
                        break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with sqlite3.connect(out / "results.sqlite") as db:
        finished = db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    assert 3 <= finished < 18, "the run was not killed mid-way"
    resumed = subprocess.run(
        run_command(small_study / "small.yaml", out),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{finished} already done" in resumed.stderr
    got = values(out)
    assert got.keys() == reference.keys()
    for key, value in reference.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"models": [{"name": "froundation-vit-b61"}]},
            "key 'models.0': unknown model 'froundation-vit-b61'; did you mean 'froundation-vit-b16'",
        ),
        ({"batch_size": "big"}, "key 'batch_size': Input should be a valid integer"),
        ({"general": {"datasets": ["cifar11"], "root": "/x"}}, "unknown dataset 'cifar11'; did you mean 'cifar10'"),
        (
            {"biometric": [{"name": "x", "protocol": "attack_detection", "path": "/x.csv"}]},
            "attack_detection benchmarks need task: mad or pad",
        ),
        (
            {"general": {"datasets": ["cifar10"], "root": "/x", "only": {"cifar100": ["zeroshot"]}}},
            "only.cifar100: cifar100 is not in general.datasets (cifar10)",
        ),
        (
            {"general": {"datasets": ["cifar10"], "root": "/x", "protocols": ["zeroshot"], "only": {"cifar10": []}}},
            "only.cifar10: give a non-empty subset of general.protocols (zeroshot); got []",
        ),
    ],
)
def test_bad_configs_get_one_clear_line(tmp_path, change, message):
    config = {"name": "bad", "models": ["clip-vit-b16.openai"], **change}
    path = write_yaml(tmp_path / "bad.yaml", config)
    result = overspec("validate", str(path))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_analyze_reproduces_every_published_gelo():
    import json

    result = overspec("analyze", str(REFERENCE / "chettaoui2025_general.csv"), "--baseline", "CLIP", "--json")
    found = {(r["model"], r["arch"], r["protocol"]): r for r in json.loads(result.stdout)}
    with open(REFERENCE / "chettaoui2025_summary.csv") as f:
        published = [row for row in csv.DictReader(f) if row["gelo"]]
    assert len(published) == 12
    for row in published:
        ours = found[(row["model"], row["arch"], row["protocol"])]
        assert f"{ours['gelo']:.3f}" == row["gelo"]
        assert ours["n_datasets"] == int(row["n_datasets"])
        assert ours["mean"] == pytest.approx(
            float(row["average_percent"]), abs=0.01
        )  # the paper truncates one of its averages (41.97 for 41.979)


def test_paper_config_describes_the_study():
    """The study's 8 models, each with its own base of its own architecture, and 36 cells each. The weights are
    stand-in files at the zoo's paths: the plan digests their bytes, it does not load them."""
    from overspec.config import load_config
    from overspec.data.catalog import catalog
    from overspec.models import resolve_spec
    from overspec.runner import plan

    experiment = load_config(Path(__file__).resolve().parents[1] / "configs" / "paper.yaml", check_paths=False)
    for entry in experiment.model_entries():
        spec = resolve_spec(entry.source)
        for path in (spec.weights, spec.checkpoint, spec.head):
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_bytes(path.encode())
    cells = plan(experiment)
    assert len(experiment.model_entries()) == 8
    per_model = len(cells) // 8
    assert per_model == 14 + 13 + 9 and len(cells) == 8 * per_model
    assert not [c for c in cells if c.dataset == "imagenetv2" and c.protocol.name == "linear_probe"]
    bases = {c.model.name: c.model.base for c in cells}
    for name, base in bases.items():
        assert base == (None if name.startswith("clip") else f"clip-vit-{name.rsplit('-', 1)[1]}.openai"), name
    tasks = {c.model.name: c.model.task for c in cells}
    assert (
        tasks["froundation-vit-l14"] == "fr"
        and tasks["madation-vit-b16"] == "mad"
        and tasks["clip-vit-b16.openai"] == "general"
    )
    # the study reports top-1 accuracy on all 14, where the catalog follows the CLIP paper for Flowers & Aircraft
    assert {c.protocol.headline for c in cells if c.task == "general"} == {"acc1"}
    assert catalog().get("flowers").headline_metric == "mean_per_class_recall"
    assert {c.protocol.headline for c in cells if c.dataset == "syn_mad22"} == {"mean_eer"}
    # MAD and PAD: a model's own head, else the study's zero-shot prompts
    attack_options = [c.protocol.options for c in cells if c.protocol.name == "attack_detection"]
    assert attack_options and all(
        o | {"convention": "-"} == {"fallback": "prompt", "prompts": "study", "convention": "-"} for o in attack_options
    )
    # every number follows the study's codebases' rules
    conventions = {(c.dataset, c.protocol.convention) for c in cells if c.task != "general"}
    assert conventions == {
        ("lfw", "insightface"),
        ("cfp_fp", "insightface"),
        ("agedb_30", "insightface"),
        ("calfw", "insightface"),
        ("cplfw", "insightface"),
        ("ijbb", "insightface"),
        ("ijbc", "insightface"),
        ("syn_mad22", "madation"),
        ("celeba_spoof", "foundpad"),
    }
    assert {c.protocol.headline for c in cells if c.dataset == "celeba_spoof"} == {"hter"}


def test_only_limits_a_general_dataset_to_some_protocols():
    from overspec.config import GeneralSuite

    suite = GeneralSuite(datasets=["cifar10", "mnist"], root="/x", only={"mnist": ["linear_probe"]})
    assert suite.protocols_of("cifar10") == ["zeroshot", "linear_probe"]
    assert suite.protocols_of("mnist") == ["linear_probe"]


def test_shards_merge_in_any_order_into_the_same_store(tmp_path):
    from overspec.results import ResultRow, ResultStore

    def row(model, value):
        return ResultRow(
            run_id="r",
            model=model,
            arch="a",
            dataset="d",
            task="general",
            protocol="zeroshot",
            metric="headline",
            value=value,
        )

    for name, cells in (("s0", {"c1": 0.5}), ("s1", {"c2": 0.7, "c3": 0.1})):
        store = ResultStore(tmp_path / f"{name}.sqlite")
        for cell, value in cells.items():
            store.add_cell(cell, [row(cell, value)], model=cell, dataset="d", protocol="zeroshot", details={})
        store.close()
    merged = []
    for order in (("s0", "s1"), ("s1", "s0")):
        target = ResultStore(tmp_path / f"merged_{order[0]}.sqlite")
        for name in order:
            target.merge(tmp_path / f"{name}.sqlite")
        merged.append(sorted((r.cell, r.value) for r in target.rows()))
        assert target.finished() == {"c1", "c2", "c3"}
    assert merged[0] == merged[1] == [("c1", 0.5), ("c2", 0.7), ("c3", 0.1)]


def test_an_option_a_protocol_does_not_take_is_refused_before_any_work():
    from overspec.errors import ConfigError
    from overspec.protocols import check_options

    check_options("attack_detection", {"scorer": "prompt", "prompts": "study", "video_scores": "frame"}, where="b")
    with pytest.raises(
        ConfigError,
        match=r"benchmark mad: 'promts' is not an option of protocol attack_detection; "
        r"its options: scorer, fallback, video_scores, prompts",
    ):
        check_options("attack_detection", {"promts": "study"}, where="benchmark mad")


def test_the_reports_notes_render_as_markdown(completed_run, tmp_path):
    import shutil

    out = shutil.copytree(completed_run, tmp_path / "run")
    (out / "NOTES.md").write_text(
        "## What this run is\n\nFaces from ``lfw_subset``:\n\n- real photos\n- simulated attacks <script>x</script>\n"
    )
    result = overspec("report", str(out))
    assert result.returncode == 0, result.stderr
    html = (out / "report.html").read_text()
    assert "<h2>What this run is</h2>" in html and "<code>lfw_subset</code>" in html
    assert "<li>real photos</li>" in html and "&lt;script&gt;" in html and "<script>" not in html
    assert "## " not in html and "<figcaption>" in html


PROTOCOL_EXTRAS = {("face_verification", "iso"): {"accuracy", "accuracy_std"}}  # the protocol's, not iso's


def test_every_biometric_cell_exports_a_score_file_that_rescores_to_the_runs_values(completed_run):
    """`overspec score` on each exported score file gives exactly the run's values under the run's convention, and
    scores it under every other convention of its kind; every key parses with the registry's key format."""
    import json

    from typer.testing import CliRunner

    from overspec.cli import app
    from overspec.metrics.conventions import conventions_for
    from overspec.metrics.specs import parse_metric
    from overspec.results import ResultStore

    with open(completed_run / "results.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["task"] != "general"]
    store = ResultStore(completed_run / "results.sqlite", create=False)
    details = store.details()
    store.close()
    cells = {r["cell"]: (r["protocol"], r["convention"]) for r in rows}
    assert len(cells) == 6  # 3 models x (lfw, syn_mad22)
    runner = CliRunner()
    for cell, (protocol, convention) in cells.items():
        meta = json.loads((completed_run / "scores" / f"{cell}.json").read_text())
        assert meta["convention"] == convention and meta["command"][:2] == ["overspec", "score"]
        ran = {r["metric"]: float(r["value"]) for r in rows if r["cell"] == cell and r["metric"] != "headline"}
        # an interval on every row but the spread of the k-fold accuracies (a dispersion, not an estimate)
        assert all(r["ci_method"] and r["ci_low"] for r in rows if r["cell"] == cell and r["metric"] != "accuracy_std")
        for other in conventions_for(meta["kind"]):
            args = [*meta["command"][1:], "--json"]
            args[args.index("--convention") + 1] = other
            if other != convention:
                args[args.index("--bootstrap") + 1] = "0"
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
            report = json.loads(result.output)
            for key in [*report["metrics"], *report.get("unresolved", {})]:
                parse_metric(key)
            if other != convention:
                continue
            resolved = {k: v for k, v in report["metrics"].items() if v is not None}
            assert resolved == {k: v for k, v in ran.items() if k not in PROTOCOL_EXTRAS.get((protocol, other), ())}
            assert report.get("unresolved", {}) == details[cell].get("unresolved", {})
            mine = [r for r in rows if r["cell"] == cell and r["ci_low"]]
            intervals = {r["metric"]: [float(r["ci_low"]), float(r["ci_high"])] for r in mine}
            assert report["ci"] == {k: v for k, v in intervals.items() if k in report["ci"]}  # the run's, exactly
            assert set(report["ci"]) == set(resolved) and report["ci_method"] == details[cell]["ci_method"]
    for key in {r["metric"] for r in rows} - {"headline"}:
        parse_metric(key)

"""The report's findings: each specialist read against the study's model of the same task and architecture, and
`overspec report --reference NAME|FILE|none`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers.cli import overspec
from overspec.analysis.gelo import GeloResult
from overspec.errors import ConfigError, DataError
from overspec.report.findings import reading
from overspec.report.published import load_published

REFERENCE = Path(__file__).resolve().parents[1] / "src" / "overspec" / "reference"


def gelo(model: str, arch: str, value: float, ci: tuple[float, float], protocol: str = "zeroshot") -> GeloResult:
    return GeloResult(model, arch, protocol, "clip", value, value, 1.0, 14, ["d"] * 14, ci, None)


def test_a_vit_l14_study_model_is_read_against_the_studys_vit_l14():
    study = load_published("chettaoui2025")
    # the study's own MADation ViT-L/14: 0.994 published, kept (within 1 % of 1); its interval holds 1
    line = reading(gelo("madation-vit-l14", "ViT-L-14", 0.994, (0.982, 1.004)), "mad", study)
    assert line == (
        "its interval holds 1: no measurable change; agrees with the study, whose MADation ViT-L/14 kept (0.994)"
    )
    # the ViT-B/16 one (0.976, lost) is read against its own row; the linear probe against the probe's row
    assert reading(gelo("m", "ViT-B-16", 0.97, (0.95, 0.99)), "mad", study).endswith(
        "agrees with the study, whose MADation ViT-B/16 lost (0.976)"
    )
    assert reading(gelo("f", "ViT-L/14", 0.95, (0.94, 0.96), "linear_probe"), "fr", study).endswith(
        "agrees with the study, whose FRoundation ViT-L/14 lost (0.951)"
    )
    assert reading(gelo("p", "ViT-L-14", 0.9, (0.85, 0.95)), "pad", study).endswith(
        "differs from the study, whose FoundPAD ViT-L/14 kept (0.997)"
    )


def test_a_model_without_a_study_counterpart_gets_no_verdict():
    study = load_published("chettaoui2025")
    line = reading(gelo("toy-mad", "efficientnet_lite0", 1.02, (0.97, 1.08)), "mad", study)
    assert line == (
        "its interval holds 1: no measurable change; the study has no mad model of architecture efficientnet_lite0 "
        "to compare with"
    )
    assert "agrees" not in line and "differs" not in line
    assert reading(gelo("toy", "ViT-B-16", 0.9, (0.8, 0.95)), None, study).startswith("below 1:")  # task unknown
    assert reading(gelo("toy", "ViT-B-16", 0.9, (0.8, 0.95)), "mad", None) == (
        "below 1: the specialist lost general performance"
    )


def test_reference_forms(tmp_path):
    bundled = load_published("chettaoui2025")
    assert len(bundled.gelos) == 12 and bundled.general == REFERENCE / "chettaoui2025_general.csv"
    from_file = load_published(REFERENCE / "chettaoui2025_summary.csv")  # the study's names give the tasks
    assert from_file.gelos == bundled.gelos and from_file.general is None
    general = load_published(str(REFERENCE / "chettaoui2025_general.csv"))
    assert general.gelos == {} and general.general == REFERENCE / "chettaoui2025_general.csv"
    assert load_published("none") is None and load_published(None) is None
    own = tmp_path / "mine.csv"
    own.write_text("model,arch,protocol,gelo,task\nMyMAD,ResNet-50,zeroshot,0.9,mad\n")
    assert load_published(own).counterpart("mad", "resnet_50", "zeroshot").gelo == 0.9
    assert bundled.counterpart("pad", "ViT-B-16-quickgelu", "zeroshot").label == "FoundPAD ViT-B/16"
    assert (
        bundled.counterpart("pad", "ViT-B-32", "zeroshot") is None
        and bundled.counterpart("general", "ViT-B-16", "zeroshot") is None
    )
    with pytest.raises(ConfigError, match=r"unknown published study 'chettaoui2052'; did you mean 'chettaoui2025'"):
        load_published("chettaoui2052")
    with pytest.raises(ConfigError, match=r"--reference .*nope.csv: no such file; give a CSV file, a study"):
        load_published(tmp_path / "nope.csv")
    untasked = tmp_path / "untasked.csv"
    untasked.write_text("model,arch,protocol,gelo\nMyMAD,ResNet-50,zeroshot,0.9\n")
    with pytest.raises(DataError, match=r"untasked.csv, line 2: model 'MyMAD' has no task; add a task column"):
        load_published(untasked)
    (tmp_path / "odd.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"odd.csv: not a published table"):
        load_published(tmp_path / "odd.csv")


@pytest.fixture(scope="module")
def study_run(tmp_path_factory) -> Path:
    """A stored run: CLIP ViT-L/14 and the study's MADation ViT-L/14 on two datasets (zero-shot)."""
    from overspec.results import ResultRow, ResultStore

    out = tmp_path_factory.mktemp("run")
    store = ResultStore(out / "results.sqlite")
    values = {
        ("clip", "cifar10"): 0.95,
        ("clip", "cifar100"): 0.75,
        ("mad", "cifar10"): 0.94,
        ("mad", "cifar100"): 0.75,
    }
    for (model, dataset), value in values.items():
        identity = {"model_task": "mad", "base": "clip"} if model == "mad" else {}
        reference = {"mad": "MADation ViT-L/14", "clip": "CLIP ViT-L/14"}[model]
        rows = [
            ResultRow(
                "r",
                model,
                "ViT-L-14",
                dataset,
                "general",
                "zeroshot",
                metric,
                value,
                value - 0.01,
                value + 0.01,
                10_000,
                headline_metric="acc1",
                reference=reference,
                convention="clip",
                **identity,
            )
            for metric in ("acc1", "headline")
        ]
        store.add_cell(f"{model}-{dataset}", rows, model=model, dataset=dataset, protocol="zeroshot", details={})
    store.close()
    return out


def test_report_reference_on_the_command_line(study_run, tmp_path):
    from overspec.report import build_report

    run = shutil.copytree(study_run, tmp_path / "run")
    build_report(run)  # the default, --reference chettaoui2025: the bundled study, its ViT-L/14 row
    findings = (run / "report.md").read_text().split("## Findings\n\n", 1)[1].split("\n\n", 1)[0]
    assert "whose MADation ViT-L/14" in findings and "ViT-B/16" not in findings
    published_column = "mad (published)"
    assert published_column in (run / "report.md").read_text()  # its per-dataset numbers beside ours
    build_report(run, reference="none")
    text = (run / "report.md").read_text()
    assert "the study" not in text and published_column not in text and "GELO **" in text
    for bad, message in (
        ("chettaoui2024", "error: --reference: unknown published study 'chettaoui2024'; did you mean 'chettaoui2025'"),
        (str(tmp_path / "missing.csv"), "missing.csv: no such file; give a CSV file, a study (chettaoui2025) or none"),
    ):
        result = overspec("report", str(run), "--reference", bad)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr

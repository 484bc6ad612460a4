"""`overspec score`: metrics from score files, and one-line errors that name the row."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from helpers.cli import overspec
from overspec.metrics import attack_detection_report, eer


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_verification_json(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.4
    scores = rng.normal(size=400) + 2 * labels
    path = write_csv(tmp_path / "v.csv", ["score", "label"], zip(scores, labels.astype(int), strict=True))
    report = json.loads(overspec("score", "verification", str(path), "--json", "--bootstrap", "50").stdout)
    metrics = report["metrics"]
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert metrics["eer"] == pytest.approx(eer(scores, labels).eer)
    targets = ["1e-06", "1e-05", "0.0001", "0.001", "0.01", "0.1"]
    assert [k for k in metrics if k.startswith("tar_at_far")] == [f"tar_at_far_{t}" for t in targets]
    assert report["n_genuine"] == labels.sum() and report["n_impostor"] == (~labels).sum()
    low, high = report["ci"]["auc"]
    assert low <= metrics["auc"] <= high
    assert report["ci_method"] == "stratified percentile bootstrap over pairs (50 resamples, seed 0)"


def test_mad_json_with_attack_types_and_reversed_polarity(tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    bonafide = np.arange(n) < 150
    types = np.where(bonafide, "", np.where(np.arange(n) % 2, "opencv", "mipgan"))
    attack_scores = rng.normal(size=n) + 1.5 * ~bonafide  # higher means attack
    rows = [(a, "bonafide" if b else "attack", t) for a, b, t in zip(attack_scores, bonafide, types, strict=True)]
    path = write_csv(tmp_path / "m.csv", ["score", "label", "attack_type"], rows)
    out = overspec(
        "score", "mad", str(path), "--json", "--higher-means", "attack", "--threshold", "0.8", "--bootstrap", "0"
    )
    report = json.loads(out.stdout)
    metrics = report["metrics"]
    expected = attack_detection_report(-attack_scores, bonafide, types, threshold=-0.8)
    assert metrics["hter"] == pytest.approx(expected.hter) and metrics["acer"] == pytest.approx(expected.acer)
    assert {t: metrics[f"apcer@{t}"] for t in ("mipgan", "opencv")} == pytest.approx(expected.apcer_per_attack)
    assert report["threshold"] == pytest.approx(0.8) and report["higher_means"] == "attack"
    assert [k for k in metrics if k.startswith("bpcer_at_apcer")][:4] == [
        f"bpcer_at_apcer_{x}" for x in ("0.01", "0.05", "0.1", "0.2")
    ]
    assert report["n_bonafide"] == 150 and report["n_attack"] == 150 and "ci" not in report


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(0.5, "bonafide"), ("nan", "attack")], "m.csv, line 3: score is nan; every score must be finite"),
        ([(0.5, "bonafide"), (0.2, "bonafide")], "m.csv: no attack rows; both classes are needed"),
        ([(0.5, "bonafide"), (0.2, "fake")], "m.csv, line 3: label 'fake' is not bona fide"),
        ([(0.5, "bonafide"), ("x", "attack")], "m.csv, line 3: score 'x' is not a number"),
        ([(0.5, "bonafide", ""), (0.2, "attack", 7)], "m.csv, line 3: more values than columns in the header"),
        ([(0.5, "bonafide", 7), (0.2, "attack")], "m.csv, line 2: more values than columns in the header"),
    ],
)
def test_bad_score_files_get_one_line_naming_the_row(tmp_path, rows, message):
    path = write_csv(tmp_path / "m.csv", ["score", "label"], rows)
    result = overspec("score", "pad", str(path))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_trailing_commas_do_not_shift_columns(tmp_path):
    rows = [(0.9, "bonafide", ""), (0.8, "bonafide", ""), (0.3, "attack", ""), (0.1, "attack", "")]
    path = write_csv(tmp_path / "p.csv", ["score", "label"], rows)
    report = json.loads(overspec("score", "pad", str(path), "--json", "--bootstrap", "0").stdout)
    assert report["metrics"]["auc"] == 1.0 and report["n_bonafide"] == 2 and report["metrics"]["eer"] == 0.0

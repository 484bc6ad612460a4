"""The one scoring path: unresolvable operating points, intervals, separators, registries, float32 scores, and
score-file input that is refused in one line."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from helpers.cli import overspec
from overspec.errors import DataError
from overspec.metrics.conventions import ScoreSet
from overspec.metrics.conventions.scoring import score_intervals, score_set
from overspec.score_files import read_score_file, score_report


def write_rows(path, header, rows, sep=","):
    lines = ([sep.join(header)] if header else []) + [sep.join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def verification_rows(n_genuine: int, n_impostor: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    genuine = np.r_[np.ones(n_genuine, bool), np.zeros(n_impostor, bool)]
    scores = np.round(rng.normal(0.1, 0.12, len(genuine)) + 0.4 * genuine, 4)
    return scores, genuine


def test_957_impostor_pairs_give_no_tar_below_far_1e_3(tmp_path):
    scores, genuine = verification_rows(500, 957)
    path = write_rows(tmp_path / "v.csv", ["score", "label"], zip(scores, genuine.astype(int), strict=True))
    report = score_report(path, "verification", n_bootstrap=20)
    for target in ("1e-06", "1e-05", "0.0001", "0.001"):
        key = f"tar_at_far_{target}"
        assert report["metrics"][key] is None and key not in report["ci"]
        needed = round(1 / float(target))
        assert report["unresolved"][key] == f"needs >= {needed} impostor pairs, has 957"
    # FAR 1 %: at most 9 of the 957 impostor pairs accepted; TAR counts genuine pairs above the 10th highest
    tenth = np.sort(scores[~genuine])[-10]
    assert report["metrics"]["tar_at_far_0.01"] == (scores[genuine] > tenth).mean()
    table = overspec("score", "verification", str(path), "--bootstrap", "0", env={**os.environ, "COLUMNS": "250"})
    assert "n/a (needs ≥ 1000 impostor pairs, has 957)" in table.stdout and "0.468" not in table.stdout


def test_an_unresolved_headline_is_no_row_and_reads_na_in_the_report(tmp_path):
    """The store keeps no row for a value the data cannot resolve; the cell's details say why, and the report
    (tables, summary.json), results.csv and analyze read such a store without error."""
    from overspec.report import build_report
    from overspec.results import ResultRow, ResultStore

    store = ResultStore(tmp_path / "results.sqlite")
    reason = "needs >= 10000 impostor pairs, has 54"
    for model, value in (("a", 0.9), ("b", 0.8)):
        common = {"model": model, "arch": "vit", "dataset": "ijbc", "task": "fr", "protocol": "ijb", "cell": model}
        rows = [ResultRow(run_id="r", metric="auc", value=value, ci_low=0.7, ci_high=0.95, **common)]
        rows = [
            ResultRow(**{**r.__dict__, "headline_metric": "tar_at_far_0.0001", "ci_method": "bootstrap"}) for r in rows
        ]
        details = {"unresolved": {"tar_at_far_0.0001": reason}} if model == "a" else {}
        if model == "b":  # b's headline resolves
            rows.append(ResultRow(**{**rows[0].__dict__, "metric": "headline", "value": 0.5}))
        store.add_cell(model, rows, model=model, dataset="ijbc", protocol="ijb", details=details)
    store.close()
    build_report(tmp_path)
    table = (tmp_path / "tables" / "biometric.md").read_text()
    assert "n/a (needs ≥ 10000 impostor pairs, has 54)" in table and "50.00" in table
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["unresolved"] == {"a/ijbc/tar_at_far_0.0001": reason}
    from typer.testing import CliRunner

    from overspec.cli import app

    analysed = CliRunner().invoke(app, ["analyze", str(tmp_path / "results.csv"), "--json"])
    assert analysed.exception is None or isinstance(analysed.exception, (SystemExit, DataError)), analysed.exception


def test_tab_and_space_separated_files_without_a_header(tmp_path):
    scores, genuine = verification_rows(300, 700, seed=3)
    csv_file = write_rows(tmp_path / "v.csv", ["score", "label"], zip(scores, genuine.astype(int), strict=True))
    expected = score_report(csv_file, "verification", n_bootstrap=0)["metrics"]
    tab = write_rows(tmp_path / "v.tsv", None, zip(scores, genuine.astype(int), strict=True), sep="\t")
    tabbed = score_report(tab, "verification", n_bootstrap=0, sep="tab", columns=["score", "label"])
    assert tabbed["metrics"] == expected
    # an IJB-style dump: template ids, then score and label, separated by runs of blanks
    rows = [(f"t{i}", f"u{i}", f"{s}  ", int(g)) for i, (s, g) in enumerate(zip(scores, genuine, strict=True))]
    dump = write_rows(tmp_path / "v.txt", None, rows, sep="   ")
    spaced = score_report(dump, "verification", n_bootstrap=0, sep="space", columns=["_", "pair", "score", "label"])
    assert spaced["metrics"] == expected
    headed = write_rows(tmp_path / "h.tsv", ["label", "score"], zip(genuine.astype(int), scores, strict=True), "\t")
    assert score_report(headed, "verification", n_bootstrap=0, sep="tab")["metrics"] == expected
    with pytest.raises(DataError, match=r"v.tsv, line 1: 2 values, 3 columns"):
        read_score_file(tab, "verification", sep="tab", columns=["score", "label", "video"])
    with pytest.raises(DataError, match=r"--columns has no label column"):
        read_score_file(tab, "verification", sep="tab", columns=["score", "_"])


def test_conventions_and_metrics_commands_list_the_registries():
    from typer.testing import CliRunner

    from overspec.cli import app
    from overspec.metrics.conventions import CONVENTIONS
    from overspec.metrics.specs import METRICS

    conventions = json.loads(CliRunner().invoke(app, ["conventions", "--json"]).output)
    assert [c["name"] for c in conventions] == CONVENTIONS.names()
    iso = next(c for c in conventions if c["name"] == "iso")
    assert "tar_at_far: 1e-06, 1e-05, 0.0001, 0.001, 0.01, 0.1" in iso["operating_points"]
    assert next(c for c in conventions if c["name"] == "madation")["options"] == "float32"
    metrics = json.loads(CliRunner().invoke(app, ["metrics", "--json"]).output)
    assert [m["name"] for m in metrics] == METRICS.names()
    assert {"name": "tar_at_far", "point": "FAR", "higher_is_better": True}.items() <= metrics[
        [m["name"] for m in metrics].index("tar_at_far")
    ].items()


def test_attack_types_get_per_type_mean_and_worst_keys_under_every_convention(tmp_path):
    rng = np.random.default_rng(2)
    n = 900
    bonafide = np.arange(n) < 300
    types = np.where(bonafide, "", np.where(np.arange(n) % 2, "print", "replay"))
    scores = np.round(rng.normal(size=n) + 1.5 * bonafide, 3)
    videos = [f"v{i // 3}" for i in range(n)]  # three frames a video, one label a video
    rows = zip(scores, np.where(bonafide, "bonafide", "attack"), types, videos, strict=True)
    path = write_rows(tmp_path / "p.csv", ["score", "label", "attack_type", "video"], rows)
    for convention, kind in (("madation", "mad"), ("foundpad", "pad"), ("iso", "pad")):
        metrics = score_report(path, kind, convention=convention, n_bootstrap=0)["metrics"]
        for name in ("eer", "auc"):
            per = [metrics[f"{name}@{t}"] for t in ("print", "replay")]
            assert metrics[f"mean_{name}"] == np.mean(per)
            assert metrics[f"worst_{name}"] == (min(per) if name == "auc" else max(per))


def test_the_bootstrap_resamples_whole_subjects_or_videos(tmp_path):
    """The same 200 samples, each repeated 20 times as one subject: a bootstrap over rows sees 4,000 independent
    samples and gives a narrow interval; the cluster bootstrap over subjects gives that of 200."""
    rng = np.random.default_rng(4)
    positive = np.arange(200) < 100
    scores = rng.normal(size=200) + positive
    repeated = ScoreSet.of("verification", np.repeat(scores, 20), np.repeat(positive, 20))
    clustered = ScoreSet.of(
        "verification", np.repeat(scores, 20), np.repeat(positive, 20), subjects=np.repeat(np.arange(200), 20)
    )
    widths = {}
    once = ScoreSet.of("verification", scores, positive)
    for name, data in (("rows", repeated), ("subjects", clustered), ("once", once)):
        found = score_intervals(data, score_set(data, "iso"), n_resamples=200)
        low, high = found.intervals["auc"]
        widths[name] = high - low
        if name == "subjects":
            assert found.method == "stratified percentile bootstrap over subjects (200 resamples, seed 0)"
    assert widths["rows"] < 0.4 * widths["subjects"] and 0.7 < widths["subjects"] / widths["once"] < 1.4


def ref_madation_float32(scores32: np.ndarray, bonafide: np.ndarray) -> dict:
    """gurayozgur/MADation src/training/trainer.py ``test_model`` on its float32 scores (``scores.cpu().numpy()``):
    ``raw_test_stats = [np.mean(raw_test_scores), np.std(raw_test_scores)]``, the z-score, then
    ``evaluate_mad_performance`` (src/utils/utils.py): ``roc_curve(gt_labels, prediction_scores, pos_label=1)``;
    EER ``fpr[nanargmin |tpr + fpr - 1|]``; BPCER at the first nearest APCER."""
    stats = [np.mean(scores32), np.std(scores32)]
    z = (scores32 - stats[0]) / stats[1]
    assert z.dtype == np.float32
    fpr, tpr, _ = roc_curve(bonafide.astype(int), z, pos_label=1)
    bpcer = 1 - tpr
    values = {"eer": fpr[np.nanargmin(np.abs(tpr + fpr - 1.0))]}
    for op in (0.01, 0.1, 0.2):
        values[f"bpcer_at_apcer_{op:g}"] = bpcer[np.argmin(abs(fpr - op))]
        gap = abs(bpcer - op)
        values[f"apcer_at_bpcer_{op:g}"] = fpr[np.where(gap == np.min(gap))[0][-1]]
    return values


def test_float32_scores_reproduce_madation_where_float64_differs():
    """A confident head: attack probabilities down to 1e-9, where the float32 z-score's ``s - mean`` rounds to the
    mean's ulp (6e-8) and merges scores of both classes into one ROC point; float64 keeps them apart."""
    differ = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        bonafide = rng.random(2000) < 0.5
        logit = np.where(bonafide, rng.normal(2, 2, 2000), rng.normal(-12, 4, 2000))
        scores32 = (1 / (1 + np.exp(-logit))).astype(np.float32)
        data = ScoreSet.of("mad", scores32.astype(np.float64), bonafide)
        single = score_set(data, "madation:float32").values
        double = score_set(data, "madation").values
        reference = ref_madation_float32(scores32, bonafide)
        assert {k: single[k] for k in reference} == reference  # exactly
        differ += any(single[k] != double[k] for k in reference)
    assert differ >= 6  # measured: all 12 sets, by up to 0.6 points


def test_float32_is_recorded_and_refused_where_it_means_nothing(tmp_path):
    path = write_rows(tmp_path / "m.csv", ["score", "label"], [(0.9, "bonafide"), (0.1, "attack")] * 20)
    args = ("score", "mad", str(path), "--convention", "madation", "--float32", "--json", "--bootstrap", "0")
    report = json.loads(overspec(*args).stdout)
    assert report["convention"] == "madation:float32"
    with pytest.raises(DataError, match="iso takes no option 'float32'; its options: none"):
        score_report(path, "mad", convention="iso:float32")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"score,label\n0.5,bonafide\n0.2,attack," + b"x" * 200_000 + b"\n", "p.csv, line 3: longer than 65536 bytes"),
        (b"score,label\n0.5,bonafide\n" + b"\0" * (1 << 20), "p.csv, line 3: a NUL byte (offset 25)"),
        (b"score,label," + b"y" * (1 << 20), "p.csv, line 1: longer than 65536 bytes"),
    ],
)
def test_oversized_fields_and_nul_bytes_are_one_line(tmp_path, content, message):
    path = tmp_path / "p.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        read_score_file(path, "pad")
    assert "\n" not in str(error.value)


def test_a_score_file_error_reaches_the_user_as_one_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"score,label\n0.5,bonafide\n0.2,attack," + b"x" * 200_000 + b"\n")
    result = overspec("score", "pad", str(path), "--threshold", "0.3")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "p.csv, line 3: longer than 65536 bytes" in result.stderr


def test_a_long_line_bound_is_checked_in_bounded_chunks(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("score,label\n0.5,bonafide\n0.2,attack\n" + "0.3,attack\n" * 10)
    assert len(read_score_file(path, "pad", max_line=12).scores) == 12  # "0.5,bonafide": 12 bytes
    with pytest.raises(DataError, match=r"p.csv, line 2: longer than 11 bytes"):
        read_score_file(path, "pad", max_line=11)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--threshold", "nan"], "--threshold nan: give a finite score threshold"),
        (["--bootstrap", "-5"], "--bootstrap -5: give 0 (no intervals) or a positive number of resamples"),
    ],
)
def test_numeric_options_are_checked_in_one_line(tmp_path, option, message):
    path = write_rows(tmp_path / "m.csv", ["score", "label"], [(0.9, "bonafide"), (0.1, "attack")])
    name, value = option
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        options = {"threshold": float(value)} if name == "--threshold" else {"n_bootstrap": int(value)}
        score_report(path, "pad", **options)
    assert "\n" not in str(error.value)


def test_a_thousand_attack_types_are_scored_in_bounded_time(tmp_path):
    rng = np.random.default_rng(5)
    rows = [(round(rng.normal(1), 4), "bonafide", "") for _ in range(500)]
    rows += [(round(rng.normal(), 4), "attack", f"type{t}") for t in range(1000)]
    path = write_rows(tmp_path / "p.csv", ["score", "label", "attack_type"], rows)
    start = time.perf_counter()
    report = score_report(path, "pad")  # 1,000 resamples
    seconds = time.perf_counter() - start
    assert len(report["attack_types"]) == 1000 and seconds < 30  # measured: 3 s (about 6 min before the bound)
    assert "1000 attack types, above the bound of 20" in report["ci_skipped"]["per_attack_type"]
    assert "hter" in report["ci"] and not any("@" in k or k.startswith(("mean_", "worst_")) for k in report["ci"])
    assert report["metrics"]["eer@type7"] is not None and report["metrics"]["bpcer_at_apcer_0.01@type7"] is None


def test_an_exported_score_set_reads_back_exactly(tmp_path):
    from overspec.score_files import write_score_file

    rng = np.random.default_rng(6)
    n = 100_050  # more than one chunk of 100,000 rows
    bonafide = rng.random(n) < 0.3
    scores = np.r_[rng.normal(size=n - 3), 1e-300, np.float32(0.1), -0.0]
    types = np.where(bonafide, "", np.where(rng.random(n) < 0.5, "print, glossy", 'replay "4k"'))
    videos = np.array([f"v{i // 5}" for i in range(n)], dtype=object)
    data = ScoreSet.of("pad", scores, bonafide, types, videos, subjects=videos, pairs=np.arange(n))
    back = read_score_file(write_score_file(data, tmp_path / "s.csv"), "pad")
    assert np.array_equal(back.scores, data.scores) and np.array_equal(back.positive, data.positive)
    assert back.attack_names == data.attack_names and np.array_equal(back.attack_codes, data.attack_codes)
    assert all(np.array_equal(getattr(back, f), getattr(data, f)) for f in ("videos", "subjects", "pairs"))


def test_float32_scores_reproduce_foundpad_per_video():
    """FoundPAD's ``compute_video_score`` and ``test_model`` on float32 scores (its transcription in
    test_conventions.py, fed the float32 array the reference holds): video means, z-score and ROC in float32. Some
    bona fide videos score as low as the attacks (probabilities near 1e-8), where float32 merges them."""
    from test_conventions import ref_foundpad

    differ = 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        video_bonafide = rng.random(400) < 0.5
        videos = np.repeat(np.array([f"v{i}" for i in range(400)], dtype=object), 3)
        bonafide = np.repeat(video_bonafide, 3)
        high = np.repeat(rng.random(400) < 0.4, 3)
        logit = np.where(
            bonafide, np.where(high, rng.normal(3, 1, 1200), rng.normal(-17, 2, 1200)), rng.normal(-18, 2, 1200)
        )
        scores32 = (1 / (1 + np.exp(-logit))).astype(np.float32)
        data = ScoreSet.of("pad", scores32.astype(np.float64), bonafide, videos=videos)
        single = score_set(data, "foundpad:float32").values
        double = score_set(data, "foundpad").values
        _, apcer, bpcer, hter, eer, _ = ref_foundpad(scores32, bonafide, videos)
        assert (single["apcer"], single["bpcer"], single["eer"], single["hter"]) == (apcer, bpcer, eer, hter)
        differ += any(single[k] != double[k] for k in ("apcer", "bpcer", "hter", "auc"))
    assert differ >= 4  # measured: all 8

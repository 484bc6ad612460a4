"""Metric conventions: each reproduces its reference codebase exactly.

Every reference function below is transcribed from the named file and commit (only the embedding-to-distance
step is replaced by the cosine score it stands for) and run on seeded synthetic scores with ties.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from sklearn.metrics import auc, roc_curve
from sklearn.model_selection import KFold

from helpers.cli import overspec
from overspec.errors import DataError
from overspec.metrics.conventions import CONVENTIONS, ScoreSet, convention_for, conventions_for
from overspec.metrics.conventions.scoring import score_set
from overspec.score_files import score_report

FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


# --- deepinsight/insightface recognition/arcface_torch/eval/verification.py @ 166d74309f060d23d002dc60308bbf870d0ab753


def ref_calculate_accuracy(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict_issame, actual_issame))
    fp = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    tn = np.sum(np.logical_and(np.logical_not(predict_issame), np.logical_not(actual_issame)))
    fn = np.sum(np.logical_and(np.logical_not(predict_issame), actual_issame))
    tpr = 0 if (tp + fn == 0) else float(tp) / float(tp + fn)
    fpr = 0 if (fp + tn == 0) else float(fp) / float(fp + tn)
    acc = float(tp + tn) / dist.size
    return tpr, fpr, acc


def ref_calculate_roc(thresholds, dist, actual_issame, nrof_folds=10):
    """``calculate_roc`` with ``pca=0``; ``dist`` given instead of ``np.sum(np.square(e1 - e2), 1)``."""
    nrof_pairs = len(actual_issame)
    nrof_thresholds = len(thresholds)
    k_fold = KFold(n_splits=nrof_folds, shuffle=False)
    accuracy = np.zeros(nrof_folds)
    indices = np.arange(nrof_pairs)
    for fold_idx, (train_set, test_set) in enumerate(k_fold.split(indices)):
        acc_train = np.zeros(nrof_thresholds)
        for threshold_idx, threshold in enumerate(thresholds):
            _, _, acc_train[threshold_idx] = ref_calculate_accuracy(
                threshold, dist[train_set], actual_issame[train_set]
            )
        best_threshold_index = np.argmax(acc_train)
        _, _, accuracy[fold_idx] = ref_calculate_accuracy(
            thresholds[best_threshold_index], dist[test_set], actual_issame[test_set]
        )
    return accuracy


def ref_insightface_accuracy(cosine, issame):
    accuracy = ref_calculate_roc(np.arange(0, 4, 0.01), 2 - 2 * cosine, np.asarray(issame))
    return np.mean(accuracy), np.std(accuracy)  # test(): acc2, std2


# --- deepinsight/insightface recognition/_evaluation_/ijb/ijb_11.py @ 1b8d9281f16044b1dccafacc191ba3ddb5612022


def ref_ijb_tar_at_far(label, score):
    x_labels = [10**-6, 10**-5, 10**-4, 10**-3, 10**-2, 10**-1]
    fpr, tpr, _ = roc_curve(label, score)
    roc_auc = auc(fpr, tpr)
    fpr = np.flipud(fpr)
    tpr = np.flipud(tpr)
    row = []
    for fpr_iter in np.arange(len(x_labels)):
        _, min_index = min(list(zip(abs(fpr - x_labels[fpr_iter]), range(len(fpr)))))  # noqa: B905
        row.append(tpr[min_index])
    return roc_auc, row


# --- gurayozgur/MADation src/utils/utils.py @ f3e6397362fe2085ec23877cb96139990314d64f


def ref_get_apcer_op(apcer, bpcer, threshold, op):
    index = np.argmin(abs(apcer - op))
    return index, bpcer[index], threshold[index]


def ref_get_bpcer_op(apcer, bpcer, threshold, op):
    temp = abs(bpcer - op)
    min_val = np.min(temp)
    index = np.where(temp == min_val)[0][-1]
    return index, apcer[index], threshold[index]


def ref_get_eer_threhold(fpr, tpr, threshold):
    differ_tpr_fpr_1 = tpr + fpr - 1.0
    index = np.nanargmin(np.abs(differ_tpr_fpr_1))
    eer = fpr[index]
    return eer, index, threshold[index]


def ref_evaluate_mad_performance(prediction_scores, gt_labels):
    fpr, tpr, threshold = roc_curve(gt_labels, prediction_scores, pos_label=1)
    bpcer = 1 - tpr
    apcer = fpr
    eer, _, _ = ref_get_eer_threhold(fpr, tpr, threshold)
    _, apcer_bpcer20, _ = ref_get_bpcer_op(apcer, bpcer, threshold, 0.20)
    _, apcer_bpcer10, _ = ref_get_bpcer_op(apcer, bpcer, threshold, 0.10)
    _, apcer_bpcer1, _ = ref_get_bpcer_op(apcer, bpcer, threshold, 0.01)
    _, bpcer_apcer20, _ = ref_get_apcer_op(apcer, bpcer, threshold, 0.20)
    _, bpcer_apcer10, _ = ref_get_apcer_op(apcer, bpcer, threshold, 0.10)
    _, bpcer_apcer1, _ = ref_get_apcer_op(apcer, bpcer, threshold, 0.01)
    return {
        "auc_score": auc(fpr, tpr),
        "eer": eer,
        "apcer_bpcer20": apcer_bpcer20,
        "apcer_bpcer10": apcer_bpcer10,
        "apcer_bpcer1": apcer_bpcer1,
        "bpcer_apcer20": bpcer_apcer20,
        "bpcer_apcer10": bpcer_apcer10,
        "bpcer_apcer1": bpcer_apcer1,
    }


def ref_madation(scores, bonafide):
    """src/training/trainer.py ``test_model``: z-scored bona fide probabilities, labels 1 = bona fide."""
    stats = [np.mean(scores), np.std(scores)]
    return ref_evaluate_mad_performance((scores - stats[0]) / stats[1], bonafide.astype(int))


# --- gurayozgur/FoundPAD src/utils/utils.py @ c8558a7da2eb1eb239a3ed1bb40eeeaff77db918


def ref_get_eer_threhold_cross_db(fpr, tpr, threshold):
    differ_tpr_fpr_1 = tpr + fpr - 1.0
    right_index = np.nanargmin(np.abs(differ_tpr_fpr_1))
    best_th = threshold[right_index]
    eer = fpr[right_index]
    return eer, best_th, right_index


def ref_performances_cross_db(prediction_scores, gt_labels, pos_label=1):
    fpr, tpr, threshold = roc_curve(gt_labels, prediction_scores, pos_label=pos_label)
    val_eer, val_threshold, right_index = ref_get_eer_threhold_cross_db(fpr, tpr, threshold)
    test_auc = auc(fpr, tpr)
    FRR = 1 - tpr
    HTER = (fpr + FRR) / 2.0
    return test_auc, fpr[right_index], FRR[right_index], HTER[right_index], val_eer, val_threshold


def ref_compute_video_score(video_ids, predictions, labels):
    predictions_dict, labels_dict = defaultdict(list), defaultdict(list)
    for i in range(len(video_ids)):
        video_key = video_ids[i]
        predictions_dict[video_key].append(predictions[i])
        labels_dict[video_key].append(labels[i])
    new_predictions, new_labels, new_video_ids = [], [], []
    for video_indx in list(dict.fromkeys(video_ids)):  # reference: list(set(video_ids)), see below
        new_video_ids.append(video_indx)
        scores = np.mean(predictions_dict[video_indx])
        label = labels_dict[video_indx][0]
        new_predictions.append(scores)
        new_labels.append(label)
    return new_predictions, new_labels, new_video_ids


def ref_foundpad(scores, bonafide, videos):
    """src/training/trainer.py ``test_model``: per-video scores, z-scored, then ``performances_cross_db``.

    ``compute_video_score`` orders videos by ``list(set(video_ids))``, an order that changes with
    PYTHONHASHSEED and with it the last bits of the z-score's mean; the transcription above uses the order
    of first appearance (overspec's) so that the comparison is deterministic."""
    scores, labels, _ = ref_compute_video_score(list(videos), scores, bonafide.astype(int))
    scores, labels = np.asarray(scores), np.asarray(labels)
    stats = [np.mean(scores), np.std(scores)]
    return ref_performances_cross_db((scores - stats[0]) / stats[1], labels)


# --- synthetic score sets: a few thousand rows, scores rounded so that ties are common


def verification_set(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    genuine = rng.random(n) < 0.5
    cosine = np.where(genuine, rng.normal(0.55, 0.15, n), rng.normal(0.1, 0.12, n))
    return np.clip(np.round(cosine, 2), -1, 1), genuine


def attack_set(seed: int, n: int = 3000, decimals: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    bonafide = rng.random(n) < 0.35
    logit = np.where(bonafide, rng.normal(1.5, 1.0, n), rng.normal(-1.5, 1.2, n))
    return np.round(1 / (1 + np.exp(-logit)), decimals), bonafide


def run(name: str, kind: str, scores, positive, videos=None) -> dict:
    convention = CONVENTIONS.get(name)
    data = ScoreSet.of(kind, scores, positive, videos=videos)
    if convention.prepare is not None:
        data = convention.prepare(data)
    return convention.metrics(data)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_insightface_matches_verification_py_and_ijb_11(seed):
    cosine, genuine = verification_set(seed)
    got = run("insightface", "verification", cosine, genuine)
    mean, std = ref_insightface_accuracy(cosine, genuine)
    assert got["accuracy"] == mean and got["accuracy_std"] == pytest.approx(std, abs=1e-12)
    roc_auc, tars = ref_ijb_tar_at_far(genuine.astype(int), cosine)
    assert got["auc"] == pytest.approx(roc_auc, abs=1e-6)
    assert [got[f"tar_at_far_{t:g}"] for t in FAR_TARGETS] == tars


@pytest.mark.parametrize(("seed", "decimals"), [(0, 3), (1, 2), (2, 3)])
def test_madation_matches_evaluate_mad_performance(seed, decimals):
    scores, bonafide = attack_set(seed, decimals=decimals)
    got = run("madation", "mad", scores, bonafide)
    ref = ref_madation(scores, bonafide)
    assert got["auc"] == pytest.approx(ref["auc_score"], abs=1e-6)
    assert got["eer"] == ref["eer"]
    for op, tag in ((0.01, "1"), (0.1, "10"), (0.2, "20")):
        assert got[f"bpcer_at_apcer_{op:g}"] == ref[f"bpcer_apcer{tag}"]
        assert got[f"apcer_at_bpcer_{op:g}"] == ref[f"apcer_bpcer{tag}"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_foundpad_matches_performances_cross_db_per_video(seed):
    scores, bonafide = attack_set(seed, n=3000, decimals=2)
    rng = np.random.default_rng(seed + 10)
    video_label = rng.random(600) < 0.35
    videos = np.array([f"v{i}" for i in rng.integers(0, 600, 3000)], dtype=object)
    bonafide = video_label[[int(v[1:]) for v in videos]]
    scores = np.round(np.where(bonafide, scores + 0.1, scores - 0.1).clip(0, 1), 2)
    got = run("foundpad", "pad", scores, bonafide, videos)
    test_auc, apcer, bpcer, hter, eer, _ = ref_foundpad(scores, bonafide, videos)
    assert got["auc"] == pytest.approx(test_auc, abs=1e-6)
    assert (got["apcer"], got["bpcer"], got["eer"]) == (apcer, bpcer, eer)
    assert got["hter"] == pytest.approx(hter, abs=1e-12)
    frame = run("foundpad", "pad", scores, bonafide)  # no video column: every row scores
    assert frame["hter"] == pytest.approx(ref_performances_cross_db(scores, bonafide.astype(int))[3], abs=1e-12)


def test_per_species_figures_against_a_hand_computed_case():
    # bona fide 0.9 0.8 0.7 0.6; print attacks 0.75 0.1; replay attacks 0.65 0.55 0.2 0.1
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.75, 0.1, 0.65, 0.55, 0.2, 0.1])
    bonafide = np.arange(10) < 4
    types = np.array([""] * 4 + ["print"] * 2 + ["replay"] * 4, dtype=object)
    # each sample three times (the rates are the same) so that 20 % targets are resolvable (>= 5 of each class)
    data = ScoreSet.of("pad", np.repeat(scores, 3), np.repeat(bonafide, 3), np.repeat(types, 3))
    got = score_set(data, "iso").values
    # print: APCER <= 0.2 needs the 0.75 attack rejected -> threshold above 0.75 -> 2 of 4 bona fide rejected
    assert got["bpcer_at_apcer_0.2@print"] == 0.5
    # replay: threshold 0.7 rejects the 0.65 attack, keeps 0.9 0.8 0.7 -> APCER 0, BPCER 1/4
    assert got["bpcer_at_apcer_0.2@replay"] == 0.25
    assert got["worst_bpcer_at_apcer_0.2"] == 0.5
    # BPCER <= 0.2 means accepting all four bona fide (threshold 0.6): print 1/2 accepted, replay 1/4
    assert got["apcer_at_bpcer_0.2@print"] == 0.5 and got["apcer_at_bpcer_0.2@replay"] == 0.25
    assert got["worst_apcer_at_bpcer_0.2"] == 0.5
    # once each: 2 print attacks cannot resolve APCER 20 %, 4 bona fide cannot resolve BPCER 20 %
    once = score_set(ScoreSet.of("pad", scores, bonafide, types), "iso")
    assert once.values["bpcer_at_apcer_0.2@print"] is None and once.values["apcer_at_bpcer_0.2@print"] is None
    assert once.unresolved["bpcer_at_apcer_0.2@print"] == "needs >= 5 print attack samples, has 2"
    assert once.unresolved["apcer_at_bpcer_0.2@replay"] == "needs >= 5 bona fide samples, has 4"
    assert once.unresolved["worst_bpcer_at_apcer_0.2"].startswith("needs every attack type resolved; needs >= 5")
    assert once.values["apcer@print"] == 0.5 and once.values["apcer_max"] == 0.5


def test_a_convention_must_serve_the_kind():
    assert conventions_for("verification") == ["insightface", "iso"]
    assert conventions_for("mad") == ["iso", "madation"] and conventions_for("pad") == ["foundpad", "iso"]
    with pytest.raises(DataError, match="convention 'madation' does not score pad files; conventions for pad: "):
        convention_for("madation", "pad")


def write_rows(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_conventions_through_the_command(tmp_path):
    cosine, genuine = verification_set(3, n=1000)
    v = write_rows(tmp_path / "v.csv", ["score", "label"], zip(cosine, genuine.astype(int), strict=True))
    out = overspec("score", "verification", str(v), "--convention", "insightface", "--json", "--bootstrap", "20")
    report = json.loads(out.stdout)
    metrics = report["metrics"]
    assert report["convention"] == "insightface" and metrics["accuracy"] == ref_insightface_accuracy(cosine, genuine)[0]
    assert metrics["tar_at_far_0.01"] == ref_ijb_tar_at_far(genuine.astype(int), cosine)[1][4]
    # about 500 impostor pairs: FAR 1e-3 and below are not measured (insightface's code prints a number there)
    assert metrics["tar_at_far_0.001"] is None and "impostor pairs" in report["unresolved"]["tar_at_far_0.001"]
    resolved = {"accuracy", "accuracy_std", "auc", "tar_at_far_0.01", "tar_at_far_0.1"}
    assert set(report["ci"]) == resolved and "eer" not in metrics

    scores, bonafide = attack_set(4, n=1000)
    labels = np.where(bonafide, "bonafide", "attack")
    m = write_rows(tmp_path / "m.csv", ["score", "label"], zip(scores, labels, strict=True))
    report = json.loads(
        overspec("score", "mad", str(m), "--convention", "madation", "--json", "--bootstrap", "0").stdout
    )
    ref = ref_madation(scores, bonafide)
    metrics = report["metrics"]
    assert report["convention"] == "madation" and metrics["eer"] == ref["eer"]
    assert [metrics[f"bpcer_at_apcer_{x}"] for x in ("0.01", "0.1", "0.2")] == [
        ref["bpcer_apcer1"],
        ref["bpcer_apcer10"],
        ref["bpcer_apcer20"],
    ]

    videos = np.array([f"clip{i // 4}" for i in range(1000)], dtype=object)
    video_bonafide = np.repeat(bonafide[::4], 4)
    rows = zip(scores, np.where(video_bonafide, "bonafide", "attack"), videos, strict=True)
    p = write_rows(tmp_path / "p.csv", ["score", "label", "video"], rows)
    report = json.loads(overspec("score", "pad", str(p), "--convention", "foundpad", "--json").stdout)
    hter = ref_foundpad(scores, video_bonafide, videos)[3]
    assert report["convention"] == "foundpad" and report["metrics"]["hter"] == pytest.approx(hter, abs=1e-12)
    assert report["n_bonafide"] + report["n_attack"] == 250 and report["n_rows"] == 1000
    low, high = report["ci"]["hter"]
    assert low <= report["metrics"]["hter"] <= high and "over samples" in report["ci_method"]

    wrong = overspec("score", "pad", str(p), "--convention", "madation")
    assert wrong.returncode == 2 and "conventions for pad: foundpad, iso" in wrong.stderr


def test_iso_stays_the_default_with_flat_per_species_keys(tmp_path):
    scores, bonafide = attack_set(5, n=600)
    types = np.where(bonafide, "", np.where(np.arange(600) % 3, "print", "replay"))
    rows = zip(scores, np.where(bonafide, "bonafide", "attack"), types, strict=True)
    path = write_rows(tmp_path / "m.csv", ["score", "label", "attack_type"], rows)
    report = score_report(path, "mad", n_bootstrap=20)
    metrics = report["metrics"]
    assert report["convention"] == "iso" and report["attack_types"] == ["print", "replay"]
    assert metrics["worst_bpcer_at_apcer_0.1"] == max(metrics[f"bpcer_at_apcer_0.1@{t}"] for t in ("print", "replay"))
    assert metrics["mean_eer"] == np.mean([metrics["eer@print"], metrics["eer@replay"]])
    assert {k for k in report["ci"] if k.startswith("apcer_at_bpcer") and k.endswith("@print")} == {
        f"apcer_at_bpcer_{x}@print" for x in ("0.01", "0.05", "0.1", "0.2")
    }

"""Every metric against an independent reference: scikit-learn, brute force, or a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score, roc_curve, top_k_accuracy_score

from overspec.errors import DataError
from overspec.metrics import (
    accuracy_topk,
    apcer_at_bpcer,
    attack_detection_report,
    bpcer_at_apcer,
    check_scores,
    eer,
    kfold_accuracy,
    mean_per_class_recall,
    roc,
    roc_auc,
    tar_at_far,
)
from overspec.metrics.bootstrap import bootstrap_ci


def score_sets():
    """Random, tied, all-equal, tiny, separable and inverted score sets."""
    rng = np.random.default_rng(0)
    yield rng.normal(size=200) + np.r_[np.ones(80), np.zeros(120)], np.r_[np.ones(80), np.zeros(120)].astype(bool)
    yield np.round(rng.normal(size=300), 1), rng.random(300) < 0.3  # many ties
    yield np.zeros(10), np.r_[np.ones(4), np.zeros(6)].astype(bool)  # all equal
    yield np.array([0.3, 0.7]), np.array([True, False])  # tiny and inverted
    yield np.r_[np.arange(5) + 10.0, np.arange(7)], np.r_[np.ones(5), np.zeros(7)].astype(bool)  # separable
    yield rng.integers(0, 3, 50).astype(float), rng.random(50) < 0.5


def brute_points(s, p):
    """(threshold, far, tar) for every distinct score, by plain loops."""
    out = []
    for t in sorted(set(s.tolist()), reverse=True):
        far = sum(1 for x, y in zip(s, p, strict=True) if x >= t and not y) / (~p).sum()
        tar = sum(1 for x, y in zip(s, p, strict=True) if x >= t and y) / p.sum()
        out.append((t, far, tar))
    return out


@pytest.mark.parametrize(("s", "p"), list(score_sets()))
def test_roc_and_auc_equal_scikit_learn(s, p):
    far, tar, thresholds = roc(s, p)
    sk_far, sk_tar, sk_thresholds = roc_curve(p, s, drop_intermediate=False)
    np.testing.assert_allclose(far, sk_far)
    np.testing.assert_allclose(tar, sk_tar)
    np.testing.assert_array_equal(thresholds[1:], sk_thresholds[1:])
    assert roc_auc(s, p) == pytest.approx(roc_auc_score(p, s), abs=1e-12)


@pytest.mark.parametrize(("s", "p"), list(score_sets()))
def test_eer_tar_at_far_and_iso_operating_points_equal_brute_force(s, p):
    points = brute_points(s, p)
    gaps = [abs(far - (1 - tar)) for _, far, tar in points]
    best = min(range(len(points)), key=lambda i: (round(gaps[i], 12), (points[i][1] + 1 - points[i][2]) / 2))
    t, far, tar = points[best]
    result = eer(s, p)
    assert result.eer == pytest.approx((far + 1 - tar) / 2) and result.threshold == t
    for target in (0.0, 0.01, 0.1, 0.5):
        allowed = [tar for _, far, tar in points if far <= target] + [0.0]
        assert tar_at_far(s, p, target) == pytest.approx(max(allowed))
        # bona fide = positive: APCER = far, BPCER = 1 - tar
        assert bpcer_at_apcer(s, p, target) == pytest.approx(
            min([1 - tar for _, f, tar in points if f <= target] + [1.0])
        )
        assert apcer_at_bpcer(s, p, target) == pytest.approx(min(f for _, f, tar in points if 1 - tar <= target))


def test_hand_computed_iso_case():
    # bona fide 0.9 0.6 0.4 ; attacks: print 0.7 0.2, replay 0.5 0.1
    s = np.array([0.9, 0.6, 0.4, 0.7, 0.2, 0.5, 0.1])
    b = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    types = np.array(["", "", "", "print", "print", "replay", "replay"], object)
    r = attack_detection_report(s, b, types, threshold=0.55)
    # at t=0.55: bona fide rejected: 0.4 -> BPCER 1/3; print accepted: 0.7 -> 1/2; replay: none -> 0
    assert r.bpcer == pytest.approx(1 / 3) and r.apcer_per_attack == {"print": 0.5, "replay": 0.0}
    assert r.apcer_max == 0.5 and r.apcer == pytest.approx(0.25)
    assert r.acer == pytest.approx((0.5 + 1 / 3) / 2) and r.hter == pytest.approx((0.25 + 1 / 3) / 2)
    # EER: t=0.6 gives APCER 1/4 (0.7), BPCER 1/3 (0.4): |gap| = 1/12, the smallest available
    assert r.eer_threshold == 0.6 and r.eer == pytest.approx((0.25 + 1 / 3) / 2)
    assert r.bpcer_at_apcer["0.2"] == pytest.approx(2 / 3)  # APCER <= 0.2 needs t > 0.7 -> only 0.9 accepted
    assert r.apcer_at_bpcer["0.2"] == pytest.approx(0.5)  # BPCER 0 needs t <= 0.4 -> 0.7, 0.5 accepted


def test_kfold_accuracy_equals_brute_force_threshold_search():
    rng = np.random.default_rng(3)
    g = rng.random(200) < 0.5
    s = rng.normal(size=200) + 1.5 * g
    result = kfold_accuracy(s, g, folds=10)
    accuracies = []
    for fold in np.array_split(np.arange(200), 10):
        train = np.setdiff1d(np.arange(200), fold)
        candidates = np.unique(np.r_[s, s - 1e-9, s + 1e-9])
        best_acc = max(((s[train] >= t) == g[train]).mean() for t in candidates)
        # any threshold reaching the training optimum: the chosen one must reach it too
        chosen = result.thresholds[len(accuracies)]
        assert ((s[train] >= chosen) == g[train]).mean() == pytest.approx(best_acc)
        accuracies.append(((s[fold] >= chosen) == g[fold]).mean())
    assert result.mean == pytest.approx(np.mean(accuracies)) and 0.7 < result.mean < 0.9


def test_classification_metrics_equal_scikit_learn():
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(300, 12)), rng.integers(0, 12, 300)
    for k in (1, 5):
        assert accuracy_topk(logits, labels, k=k) == pytest.approx(
            top_k_accuracy_score(labels, logits, k=k, labels=np.arange(12))
        )
    assert mean_per_class_recall(logits, labels) == pytest.approx(balanced_accuracy_score(labels, logits.argmax(1)))
    with pytest.raises(DataError, match="top-5 accuracy needs at least 5 classes"):
        accuracy_topk(logits[:, :3], labels % 3, k=5)


def test_ties_go_to_the_lowest_class_index():
    """``[1, 3, 3, 0, 3]``: torch 2.14's CPU ``topk`` ranks index 2 first; overspec ranks 1, 2, 4 (argmax's rule)."""
    row = np.array([[1.0, 3.0, 3.0, 0.0, 3.0]])
    assert [accuracy_topk(row, [label], k=1) for label in range(5)] == [0, 1, 0, 0, 0]
    assert [accuracy_topk(row, [label], k=2) for label in range(5)] == [0, 1, 1, 0, 0]
    assert accuracy_topk(row, [4], k=3) == 1 and accuracy_topk(row, [0], k=4) == 1
    assert mean_per_class_recall(row, [1]) == 1 and mean_per_class_recall(row, [2]) == 0  # top-1 and recall agree


def test_duplicated_class_names_tie_exactly_and_the_first_wins():
    """OpenAI's ImageNet names repeat ("sunglasses" twice): the two classes get one zero-shot weight vector."""
    from overspec.protocols.result import correct_top1
    from overspec.protocols.zeroshot import zero_shot_logits, zero_shot_weights

    vocabulary = {"a photo of a cat": 0, "a photo of a sunglasses": 1, "a photo of a dog": 2}
    table = np.random.default_rng(0).normal(size=(3, 8))
    weights = zero_shot_weights(
        lambda texts: table[[vocabulary[t] for t in texts]],
        ["cat", "sunglasses", "dog", "sunglasses"],
        ["a photo of a {c}"],
    )
    assert np.array_equal(weights[:, 1], weights[:, 3])
    features = table[[1, 1, 0, 2]] + np.random.default_rng(1).normal(scale=0.01, size=(4, 8))
    logits = zero_shot_logits(features, weights)
    assert np.array_equal(logits[:, 1], logits[:, 3])  # an exact tie, image by image
    labels = np.array([1, 3, 0, 2])  # the second image is of the later "sunglasses"
    assert accuracy_topk(logits, labels, k=1) == 0.75 and accuracy_topk(logits, labels, k=2) == 1
    assert correct_top1(logits, labels).tolist() == [True, False, True, True]


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, np.nan, 0.3], [1, 0, 1], "score at index 1 is nan"),
        ([0.1, 0.2], [1, 1], "every label is positive"),
        ([0.1, 0.2], [1, 2], "label at index 1 is 2"),
        ([0.1, 0.2, 0.3], [1, 0], "3 scores but 2 labels"),
        ([[0.1, 0.2]], [[1, 0]], "must be 1-D"),
    ],
)
def test_score_validation_messages(scores, labels, message):
    with pytest.raises(DataError, match=message):
        check_scores(scores, labels)


def test_stratified_bootstrap_interval():
    rng = np.random.default_rng(0)
    values = rng.normal(size=400)
    labels = np.r_[np.zeros(100), np.ones(300)]

    def statistic(index):
        assert set(labels[index]) == {0.0, 1.0}  # both classes in every resample
        return {"mean0": float(values[index][labels[index] == 0].mean())}

    low, high = bootstrap_ci(statistic, labels, n_resamples=500, seed=1)["mean0"]
    mean, se = values[:100].mean(), values[:100].std(ddof=1) / 10
    assert low == pytest.approx(mean - 1.96 * se, abs=0.05) and high == pytest.approx(mean + 1.96 * se, abs=0.05)
    assert bootstrap_ci(statistic, labels, n_resamples=50, seed=2) == bootstrap_ci(
        statistic, labels, n_resamples=50, seed=2
    )


def test_bounded_bootstrap_keeps_seeded_intervals_and_rescales_a_subsample():
    from overspec.metrics.bootstrap import bootstrap_intervals

    rng = np.random.default_rng(3)
    values = rng.normal(size=20_000)
    labels = rng.random(20_000) < 0.3

    def statistic(index):
        return {"mean1": float(values[index][labels[index]].mean())}

    exact = bootstrap_ci(statistic, labels, n_resamples=200, seed=4)
    ordered = bootstrap_intervals(statistic, labels, n_resamples=200, seed=4, order=np.argsort(-values))
    assert ordered.intervals["mean1"] == pytest.approx(exact["mean1"], abs=1e-12) and ordered.rows == 20_000
    capped = bootstrap_intervals(statistic, labels, n_resamples=200, seed=4, max_rows=4_000)
    assert capped.rows < 20_000 and "rescaled" in capped.method
    (low, high), (cap_low, cap_high) = exact["mean1"], capped.intervals["mean1"]
    assert cap_high - cap_low == pytest.approx(high - low, rel=0.25)
    assert cap_low < statistic(np.arange(20_000))["mean1"] < cap_high


def _kfold_by_loop(s, g, folds):
    """The fold-by-fold search kfold_accuracy replaced (every midpoint of the training scores tried, per fold)."""
    accuracies, thresholds = [], []
    for test in np.array_split(np.arange(len(s)), folds):
        train = np.setdiff1d(np.arange(len(s)), test, assume_unique=True)
        unique = np.unique(s[train])
        candidates = np.r_[unique[0] - 1.0, (unique[:-1] + unique[1:]) / 2, unique[-1] + 1.0]
        correct = [((s[train] >= t) == g[train]).sum() for t in candidates]
        thresholds.append(float(candidates[int(np.argmax(correct))]))
        accuracies.append(float(((s[test] >= thresholds[-1]) == g[test]).mean()))
    return float(np.mean(accuracies)), float(np.std(accuracies)), tuple(accuracies), tuple(thresholds)


@pytest.mark.parametrize("seed", range(40))
def test_kfold_accuracy_equals_the_fold_by_fold_search_exactly(seed):
    # coarse scores (ties within and across folds), repeated rows (a bootstrap resample), one class rare
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 120))
    g = rng.random(n) < rng.choice([0.5, 0.15])
    g[:2] = [True, False]
    s = np.round(rng.normal(size=n) + 1.2 * g, int(rng.integers(0, 3)))
    if seed % 2:
        index = np.sort(rng.integers(0, n, n))
        s, g = s[index], g[index]
    folds = int(rng.choice([2, 5, 10]))
    got = kfold_accuracy(s, g, folds=folds)
    assert (got.mean, got.std, got.fold_accuracies, got.thresholds) == _kfold_by_loop(s, g, folds)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_recall_per_class_mean_is_mean_per_class_recall_exactly_on_resamples():
    # the frontier's paired bootstrap recomputes mean per-class recall from stored outcomes and labels
    from overspec.metrics.classification import recall_per_class_mean, recall_per_class_means

    rng = np.random.default_rng(4)
    logits, labels = rng.normal(size=(300, 12)), rng.integers(0, 12, 300)
    for _ in range(20):
        rows = rng.integers(0, 60, 60)  # few samples: some classes absent from the resample
        z, y = logits[rows], labels[rows]
        predicted = z.argmax(1)
        by_list = float(np.mean([(predicted[y == c] == c).mean() for c in np.unique(y)]))
        assert recall_per_class_mean(predicted == y, y) == mean_per_class_recall(z, y) == by_list
        assert by_list == pytest.approx(balanced_accuracy_score(y, predicted))
    # rows of resamples at once, by class codes: each row as the function gives it alone
    predicted = logits.argmax(1)
    rows = rng.integers(0, 300, (50, 40))
    codes = np.unique(labels, return_inverse=True)[1]
    at_once = recall_per_class_means(predicted[rows] == labels[rows], codes[rows], 12)
    assert list(at_once) == [mean_per_class_recall(logits[r], labels[r]) for r in rows]

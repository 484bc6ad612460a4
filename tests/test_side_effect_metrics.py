"""Morph and attack acceptance, and 1:N identification: each metric against a brute-force transcription of its
definition on hand-made and random score sets (ties at the threshold included), the threshold at a named FAR
reproducing the verification set's FAR, and the score sets' export."""

from __future__ import annotations

import math

import numpy as np
import pytest

from overspec.errors import DataError
from overspec.metrics.identification import cmc, fpir, mated_ranks, search, tpir_at_fpir
from overspec.metrics.side_effects import (
    Comparisons,
    comparison_intervals,
    read_comparisons,
    score_comparisons,
    write_comparisons,
)
from overspec.metrics.vulnerability import (
    false_match_rate,
    false_non_match_rate,
    iapmr,
    mmpmr,
    prodavg_mmpmr,
    rmmr,
    threshold_at_far,
)

# ---- brute-force transcriptions of the definitions (loops over plain Python values) ----


def brute_threshold(impostor, far):
    """The lowest candidate threshold (every impostor score, and -inf) whose FAR, #{s > t} / N, is at most far."""
    candidates = sorted(set(float(s) for s in impostor)) + [-math.inf]
    ok = [t for t in candidates if sum(s > t for s in impostor) / len(impostor) <= far + 1e-12]
    return min(ok)


def brute_mmpmr(rows, tau):
    """rows: (morph, subject, score). Scherhag 2017 with MinMax over several probes."""
    morphs = {}
    for m, n, s in rows:
        morphs.setdefault(m, {}).setdefault(n, []).append(s)
    hits = [min(max(p) for p in subjects.values()) > tau for subjects in morphs.values()]
    return sum(hits) / len(hits)


def brute_prodavg(rows, tau):
    morphs = {}
    for m, n, s in rows:
        morphs.setdefault(m, {}).setdefault(n, []).append(s)
    total = 0.0
    for subjects in morphs.values():
        product = 1.0
        for probes in subjects.values():
            product *= sum(p > tau for p in probes) / len(probes)
        total += product
    return total / len(morphs)


def brute_rank(row, gallery, mate):
    """1 + number of non-mated identities scoring at least the mated identity (identity score: best entry)."""
    best = {}
    for score, identity in zip(row, gallery, strict=True):
        best[identity] = max(best.get(identity, -math.inf), score)
    return 1 + sum(v >= best[mate] for k, v in best.items() if k != mate)


def brute_tpir(similarity, probes, gallery, target):
    enrolled = set(gallery)
    tops = [max(row) for row, p in zip(similarity, probes, strict=True) if p not in enrolled]
    tau = brute_threshold(tops, target)
    hits = []
    for row, p in zip(similarity, probes, strict=True):
        if p in enrolled:
            mated = max(s for s, g in zip(row, gallery, strict=True) if g == p)
            hits.append(brute_rank(row, gallery, p) == 1 and mated > tau)
    return sum(hits) / len(hits), tau


# ---- the operating threshold ----


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("far", [0.001, 0.01, 0.05, 0.1, 0.29, 0.5])
def test_threshold_at_far_is_the_lowest_threshold_within_the_target(seed, far):
    rng = np.random.default_rng(seed)
    impostor = np.round(rng.normal(0, 1, int(rng.integers(1000, 1400))), 1 + seed % 3)  # rounding: many ties
    tau = threshold_at_far(impostor, far)
    assert tau == brute_threshold(impostor.tolist(), far)
    reached = false_match_rate(impostor, tau)
    assert reached <= far
    if len(np.unique(impostor)) == len(impostor):
        assert reached == math.floor(far * len(impostor) + 1e-9) / len(impostor)


def test_threshold_reproduces_the_far_exactly_without_ties():
    impostor = np.arange(1000, dtype=float) / 1000  # 1,000 distinct scores
    for far in (0.001, 0.01, 0.1):
        tau = threshold_at_far(impostor, far)
        assert false_match_rate(impostor, tau) == far  # FAR 0.1 % of 1,000: exactly one impostor accepted
        assert np.sum(impostor > tau) == round(far * 1000)
    assert threshold_at_far(impostor, 1.0) == -np.inf


def test_threshold_ties_at_the_cut_are_rejected_together():
    impostor = np.array([0.9, 0.8, 0.8, 0.8, 0.1] + [0.0] * 5)  # FAR 0.2 would accept two, but three tie at 0.8
    tau = threshold_at_far(impostor, 0.2)
    assert tau == 0.8 and false_match_rate(impostor, tau) == 0.1
    assert false_non_match_rate([0.8, 0.81], tau) == 0.5  # a genuine score equal to the threshold is a non-match


def test_threshold_refuses_a_rate_outside_zero_one():
    with pytest.raises(DataError, match="FAR target 0"):
        threshold_at_far([0.1, 0.2], 0)


# ---- morph and attack acceptance ----

HAND_ROWS = [  # (morph, subject, score of one probe of that subject)
    ("A", 1, 0.5), ("A", 1, 0.7), ("A", 2, 0.6),  # subject 2's best equals tau: A is not accepted
    ("B", 3, 0.9), ("B", 4, 0.65), ("B", 4, 0.61),
    ("C", 5, 0.7), ("C", 5, 0.5), ("C", 6, 0.8), ("C", 6, 0.2),
]  # fmt: skip


def test_mmpmr_and_prodavg_by_hand():
    m, n, s = zip(*HAND_ROWS, strict=True)
    assert mmpmr(s, m, n, 0.6) == pytest.approx(2 / 3)  # B and C match both contributors; A ties on subject 2
    assert prodavg_mmpmr(s, m, n, 0.6) == pytest.approx((0 + 1 + 0.25) / 3)
    assert rmmr(2 / 3, 0.1) == pytest.approx(1 + 2 / 3 - 0.9)
    assert iapmr([0.6, 0.61, 0.2, 0.9], 0.6) == 0.5  # the tie at 0.6 is not a match


@pytest.mark.parametrize("seed", range(8))
def test_morph_metrics_equal_their_definitions_on_random_sets(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for morph in range(int(rng.integers(5, 40))):
        for subject in rng.choice(100, size=int(rng.integers(2, 4)), replace=False):  # two or three contributors
            for _ in range(int(rng.integers(1, 4))):
                rows.append((f"m{morph}", f"s{subject}", round(float(rng.uniform(0, 1)), 1)))  # ties
    m, n, s = zip(*rows, strict=True)
    for tau in (0.3, 0.5, 0.7, float(s[0])):  # the last is a score in the set: ties at the threshold
        assert mmpmr(s, m, n, tau) == pytest.approx(brute_mmpmr(rows, tau))
        assert prodavg_mmpmr(s, m, n, tau) == pytest.approx(brute_prodavg(rows, tau))
        attacks = np.array(s)
        assert iapmr(attacks, tau) == pytest.approx(sum(v > tau for v in s) / len(s))


def random_morph_set(seed, n_impostor=2000):
    rng = np.random.default_rng(seed)
    genuine = np.round(rng.normal(0.6, 0.15, 300), 2)
    impostor = np.round(rng.normal(0.1, 0.1, n_impostor), 2)
    rows = []
    for morph in range(60):
        method = ("blend", "gan")[morph % 2]
        for subject in (f"s{morph}", f"s{morph + 1}"):
            for probe in range(2):
                rows.append((f"m{morph}", subject, f"{subject}_p{probe}", method, round(rng.normal(0.35, 0.15), 2)))
    m, n, p, k, s = zip(*rows, strict=True)
    data = Comparisons.of(
        "morph_acceptance",
        np.r_[genuine, impostor, s],
        ["genuine"] * len(genuine) + ["impostor"] * len(impostor) + ["morph"] * len(s),
        morph=[""] * (len(genuine) + len(impostor)) + list(m),
        subject=[""] * (len(genuine) + len(impostor)) + list(n),
        probe=[""] * (len(genuine) + len(impostor)) + list(p),
        method=[""] * (len(genuine) + len(impostor)) + list(k),
    )
    return data, genuine, impostor, rows


def test_morph_acceptance_scores_every_key_by_the_definitions():
    data, genuine, impostor, rows = random_morph_set(0)
    scored = score_comparisons(data, far=0.01)
    tau = brute_threshold(impostor.tolist(), 0.01)
    assert scored.decisions["threshold"] == tau
    triples = [(m, n, s) for m, n, _, _, s in rows]
    fnmr = sum(g <= tau for g in genuine) / len(genuine)
    v = scored.values
    assert v["far"] == pytest.approx(sum(i > tau for i in impostor) / len(impostor)) and v["far"] <= 0.01
    assert v["fnmr"] == pytest.approx(fnmr)
    assert v["mmpmr"] == pytest.approx(brute_mmpmr(triples, tau))
    assert v["prodavg_mmpmr"] == pytest.approx(brute_prodavg(triples, tau))
    assert v["rmmr"] == pytest.approx(1 + brute_mmpmr(triples, tau) - (1 - fnmr))
    for method in ("blend", "gan"):
        mine = [(m, n, s) for m, n, _, k, s in rows if k == method]
        assert v[f"mmpmr@{method}"] == pytest.approx(brute_mmpmr(mine, tau))
    assert scored.counts == {"n_test": 60, "n_genuine": 300, "n_impostor": 2000}


def test_a_far_the_verification_set_cannot_resolve_is_refused():
    data, *_ = random_morph_set(0, n_impostor=500)
    with pytest.raises(DataError, match=r"500 impostor pairs; a threshold at FAR 0.001 needs >= 1000: raise"):
        score_comparisons(data, far=0.001)


def test_attack_acceptance_per_type_and_worst():
    rng = np.random.default_rng(3)
    impostor = rng.normal(0, 0.1, 200)
    attacks = np.round(rng.normal(0.2, 0.2, 90), 2)
    types = np.array(["print", "replay", "mask"])[np.arange(90) % 3]
    data = Comparisons.of(
        "attack_acceptance",
        np.r_[impostor, attacks],
        ["impostor"] * 200 + ["attack"] * 90,
        subject=[""] * 200 + [f"s{i % 30}" for i in range(90)],
        attack_type=[""] * 200 + list(types),
        sample=[""] * 200 + [f"a{i}" for i in range(90)],
    )
    scored = score_comparisons(data, far=0.1)
    tau = brute_threshold(impostor.tolist(), 0.1)
    per = {t: sum(a > tau for a, k in zip(attacks, types, strict=True) if k == t) / 30 for t in set(types)}
    assert scored.values["iapmr"] == pytest.approx(sum(a > tau for a in attacks) / 90)
    for t, value in per.items():
        assert scored.values[f"iapmr@{t}"] == pytest.approx(value)
    assert scored.values["worst_iapmr"] == pytest.approx(max(per.values()))
    assert "fnmr" not in scored.values  # no genuine rows: no FNMR, no RMMR-like figure


# ---- identification ----


def test_identification_by_hand_with_ties():
    gallery = ["a", "b", "c", "c"]  # c enrolled twice: its best entry counts
    similarity = np.array(
        [
            [0.9, 0.2, 0.3, 0.1],  # a: rank 1
            [0.5, 0.5, 0.1, 0.2],  # b ties with a: pessimistic rank 2
            [0.4, 0.8, 0.1, 0.7],  # c's best entry 0.7 < b's 0.8: rank 2
            [0.3, 0.2, 0.6, 0.1],  # x, not enrolled: top score 0.6
            [0.1, 0.9, 0.2, 0.2],  # y, not enrolled: top score 0.9
        ]
    )
    searches = search(similarity, ["a", "b", "c", "x", "y"], gallery)
    assert mated_ranks(searches).tolist() == [1, 2, 2]
    assert cmc(searches, 1) == pytest.approx(1 / 3) and cmc(searches, 5) == 1.0
    tpir, tau = tpir_at_fpir(searches, 0.5)  # one of two non-mated searches may return a candidate: tau = 0.6
    assert tau == 0.6 and fpir(searches, tau) == 0.5 and tpir == pytest.approx(1 / 3)
    # 0.6 equals x's top score: x is not returned (score > tau), so FPIR 0.5 is reached, not exceeded


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("twice", [True, False])
def test_identification_equals_its_definition_on_random_searches(seed, twice):
    rng = np.random.default_rng(seed)
    gallery = [f"id{i}" for i in range(12)] + [f"id{i}" for i in range(0, 12, 3) if twice]  # some with two entries
    gallery = [gallery[k] for k in rng.permutation(len(gallery))]
    probes = [f"id{i}" for i in rng.integers(0, 20, 120)]  # ids 12..19 are not enrolled
    similarity = np.round(rng.normal(0, 0.3, (len(probes), len(gallery))), 1)  # ties everywhere
    for i, p in enumerate(probes):
        similarity[i] += 0.4 * np.array([g == p for g in gallery])
    similarity = np.round(similarity, 1)
    searches = search(similarity, probes, gallery)
    enrolled = [i for i, p in enumerate(probes) if p in gallery]
    ranks = [brute_rank(similarity[i], gallery, probes[i]) for i in enrolled]
    assert mated_ranks(searches).tolist() == [min(r, 6) for r in ranks]  # beyond the 5 kept candidates: 6
    for k in (1, 5):
        assert cmc(searches, k) == pytest.approx(sum(r <= k for r in ranks) / len(ranks))
    for target in (0.1, 0.25):
        tpir, tau = tpir_at_fpir(searches, target)
        expected, expected_tau = brute_tpir(similarity.tolist(), probes, gallery, target)
        assert tau == expected_tau and tpir == pytest.approx(expected)
        assert fpir(searches, tau) <= target


def identification_set(seed=0, galleries=("G1", "G2")):
    """IJB-C-like: probes of 40 subjects; G1 enrols subjects 0-19, G2 20-39, so each probe is mated in one."""
    rng = np.random.default_rng(seed)
    probes = [(f"p{i}", f"s{i % 40}") for i in range(240)]
    members = {"G1": range(0, 20), "G2": range(20, 40)}
    scores, roles, ids = [], [], {"probe": [], "subject": [], "gallery": []}
    full = {}
    for gallery in galleries:
        names = [f"s{k}" for k in members[gallery]]
        similarity = np.round(rng.normal(0, 0.2, (len(probes), len(names))), 2)
        similarity += 0.45 * np.array([[n == s for n in names] for _, s in probes])
        searches = search(similarity, [s for _, s in probes], names)
        full[gallery] = searches
        for i, (probe, subject) in enumerate(probes):
            row = [("mated", searches.mated[i])] if searches.is_mated[i] else []
            row += [("nonmated", v) for v in searches.others[i] if np.isfinite(v)]
            for role, value in row:
                scores.append(value)
                roles.append(role)
                ids["probe"].append(probe)
                ids["subject"].append(subject)
                ids["gallery"].append(gallery)
    return Comparisons.of("identification", scores, roles, **ids), full


def test_identification_comparisons_score_per_gallery_and_their_mean():
    data, full = identification_set()
    scored = score_comparisons(data)
    for gallery, searches in full.items():
        assert scored.values[f"cmc_1@{gallery}"] == cmc(searches, 1)
        assert scored.values[f"tpir_at_fpir_0.01@{gallery}"] == tpir_at_fpir(searches, 0.01)[0]
    assert scored.values["cmc_5"] == pytest.approx((cmc(full["G1"], 5) + cmc(full["G2"], 5)) / 2)
    assert scored.counts == {"n_test": 240}


def test_open_set_points_without_enough_non_mated_searches_are_unresolved():
    data, _ = identification_set(galleries=("G1",))
    number = np.array([int(p[1:]) for p in data.ids["probe"]])
    data = data.subset(np.flatnonzero((number < 80) | np.isin(data.ids["subject"], [f"s{k}" for k in range(20)])))
    scored = score_comparisons(data)  # 40 non-mated searches of G1: FPIR 1 % needs 100, FPIR 10 % needs 10
    assert scored.values["tpir_at_fpir_0.01"] is None
    assert scored.unresolved == {"tpir_at_fpir_0.01": "needs >= 100 non-mated searches, has 40"}
    assert scored.values["tpir_at_fpir_0.1"] is not None and "cmc_1" in scored.values


# ---- export and intervals ----


@pytest.mark.parametrize("kind", ["morph_acceptance", "identification"])
def test_comparisons_round_trip_through_their_file(kind, tmp_path):
    data = random_morph_set(1)[0] if kind == "morph_acceptance" else identification_set(1)[0]
    back = read_comparisons(write_comparisons(data, tmp_path / "scores.csv"))
    assert back.kind == kind and np.array_equal(back.scores, data.scores)
    assert all(np.array_equal(back.ids[c], data.ids[c]) for c in data.ids)
    far = {"far": 0.01} if kind == "morph_acceptance" else {}
    assert score_comparisons(back, **far).values == score_comparisons(data, **far).values


def test_a_comparison_file_without_its_kind_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("score,role\n0.1,genuine\n")
    with pytest.raises(DataError, match=r"x.csv, line 1: expected `# kind: KIND`"):
        read_comparisons(path)


def test_intervals_cover_the_estimates_and_resample_whole_units():
    data, *_ = random_morph_set(2)
    scored = score_comparisons(data, far=0.01)
    found = comparison_intervals(data, scored, n_resamples=60)
    for key in ("mmpmr", "prodavg_mmpmr", "rmmr", "fnmr"):
        low, high = found.intervals[key]
        assert low <= scored.values[key] <= high and low < high
    assert "far" not in found.intervals or found.intervals["far"][0] == found.intervals["far"][1]  # threshold fixed
    assert "morphs" in found.method
    ident, _ = identification_set(3)
    found = comparison_intervals(ident, score_comparisons(ident), n_resamples=40)
    assert "probe subjects" in found.method and "cmc_1@G1" in found.intervals


def insightface_evaluation(query_feats, gallery_feats, mask, fars=(0.01, 0.1)):
    """recognition/_evaluation_/ijb/ijb_1n.py ``evaluation``, transcribed: top-1/top-5 from an argsort of the
    similarities, then per FAR the ceil(Q * far)-th largest non-mated pair score as threshold and the share of
    mated scores above it."""
    import heapq

    query_num = query_feats.shape[0]
    similarity = np.dot(query_feats, gallery_feats.T)
    top_inds = np.argsort(-similarity)
    top1 = sum(top_inds[i, 0] == mask[i] for i in range(query_num)) / query_num
    top5 = sum(mask[i] in top_inds[i, 0:5] for i in range(query_num)) / query_num
    required_topk = [math.ceil(query_num * x) for x in fars]
    top_sims = similarity.copy()
    pos_sims = []
    for i in range(query_num):
        pos_sims.append(top_sims[i, mask[i]])
        top_sims[i, mask[i]] = -2.0
    pos_sims = np.array(pos_sims)
    neg_sims = heapq.nlargest(max(required_topk), top_sims[np.where(top_sims > -2.0)])
    recalls = [np.sum(pos_sims > neg_sims[pos - 1]) / query_num for pos in required_topk]
    return top1, top5, recalls


@pytest.mark.parametrize("seed", range(4))
def test_insightface_convention_equals_its_ijb_1n_evaluation(seed):
    from overspec.metrics.side_effects import identification_comparisons

    rng = np.random.default_rng(seed)
    n_ids, n_probes, dim = 30, 120, 16
    gallery = rng.normal(size=(n_ids, dim))
    mask = rng.integers(0, n_ids, n_probes)  # every probe enrolled: insightface's gen_mask
    probes = gallery[mask] + rng.normal(0, 1.2, (n_probes, dim))
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    top1, top5, recalls = insightface_evaluation(probes, gallery, mask)
    subjects = [f"s{m}" for m in mask]
    data = identification_comparisons(
        probes, (np.arange(n_probes), subjects), {"union": (gallery, [f"s{i}" for i in range(n_ids)])},
        pair_top=math.ceil(n_probes * 0.1), block=50,
    )  # fmt: skip
    scored = score_comparisons(data, convention="insightface")
    assert scored.values["cmc_1"] == pytest.approx(top1) and scored.values["cmc_5"] == pytest.approx(top5)
    assert [scored.values["tpir_at_fpir_0.01"], scored.values["tpir_at_fpir_0.1"]] == pytest.approx(recalls)
    assert scored.unresolved == {}  # iso's open-set TPIR needs non-mated searches; insightface's does not
    assert score_comparisons(data).values["tpir_at_fpir_0.1"] is None

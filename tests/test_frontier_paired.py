"""The frontier's paired bootstrap (frontier/paired.py, frontier/summary.py) against a brute-force loop over the
same resamples, on a hand-made run: a face verification benchmark (k-fold accuracy), a MAD benchmark with attack
types and subjects (mean EER, a cluster bootstrap) and two general datasets, each model's per-sample data written
as `overspec run` writes it."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from overspec.analysis.frontier import draw, hypervolume, interval, pareto_mask, value_at
from overspec.frontier.config import FrontierSettings
from overspec.frontier.paired import Benchmark, GeloSpec, GeneralSet, load_general, paired_draws
from overspec.frontier.points import PointFile
from overspec.frontier.summary import _compared, summarise
from overspec.metrics.bootstrap import _stratified_subsample, resample_indices
from overspec.metrics.classification import accuracy_topk, mean_per_class_recall
from overspec.metrics.conventions import ScoreSet
from overspec.metrics.conventions.scoring import score_set
from overspec.metrics.intervals import wilson_interval
from overspec.metrics.verification import kfold_accuracy
from overspec.results import ResultStore
from overspec.results.store import ResultRow
from overspec.score_files import write_score_file

N_BOOT, SEED, FOLDS = 100, 7, 5
MODELS = ("b", "m@1", "m@2", "r@1", "s")  # the base, method m's points (fr), method r's (mad), a specialist
SHIFT = {"b": 0.0, "m@1": 0.4, "m@2": 0.8, "r@1": 0.3, "s": 1.0}  # how far each model separates the classes
GENERAL = {"d1": 40, "d2": 56}  # test samples of each general dataset
HEADLINE = {"d1": "acc1", "d2": "mean_per_class_recall"}
LABELS = {d: (np.arange(n) * 7) % 4 for d, n in GENERAL.items()}  # four classes, interleaved


def _verification(rng, shift: float, base_noise: np.ndarray, genuine: np.ndarray) -> ScoreSet:
    scores = np.round(0.3 * base_noise + shift * genuine + 0.15 * rng.normal(size=len(genuine)), 3)
    return ScoreSet.of("verification", scores, genuine, pairs=np.arange(len(genuine)))


def _mad(rng, shift: float, base_noise: np.ndarray, bonafide, types, subjects) -> ScoreSet:
    scores = np.round(base_noise + 2 * shift * bonafide + 0.4 * rng.normal(size=len(bonafide)), 2)
    return ScoreSet.of("mad", scores, bonafide, types, subjects=subjects)


N_PAIRS = 30


def write_run(out: Path, *, n_pairs: int = N_PAIRS) -> dict:
    """A run directory: results.sqlite, scores/ and predictions/; returns what went in, by model."""
    rng = np.random.default_rng(0)
    genuine = np.arange(n_pairs) % 2 == 0
    pair_noise = rng.normal(size=n_pairs)
    bonafide = np.r_[np.ones(12, bool), np.zeros(16, bool)]
    types = np.r_[[""] * 12, ["print"] * 8, ["screen"] * 8]
    subjects = np.array([f"p{i // 2}" for i in range(len(bonafide))])  # two rows per subject
    mad_noise = rng.normal(size=len(bonafide))
    general_base = {d: rng.random(n) < 0.7 for d, n in GENERAL.items()}
    store = ResultStore(out / "results.sqlite")
    made: dict = {}
    for k, model in enumerate(MODELS):
        base = None if model == "b" else "b"
        common = {"run_id": "t", "model": model, "arch": "a", "metric": "headline", "base": base, "model_task": "fr"}
        fr = _verification(rng, SHIFT[model], pair_noise, genuine)
        mad = _mad(rng, SHIFT[model], mad_noise, bonafide, types, subjects)
        accuracy = kfold_accuracy(fr.scores, fr.positive, folds=FOLDS).mean
        mean_eer = score_set(mad, "iso").values["mean_eer"]
        made[model] = {"fr": fr, "mad": mad, "fr_value": accuracy, "mad_value": mean_eer}
        for cell, data, dataset, task, protocol, metric, value, details in (
            (f"v{k}", fr, "pairs", "fr", "face_verification", "accuracy", accuracy, {"folds": FOLDS}),
            (f"a{k}", mad, "morphs", "mad", "attack_detection", "mean_eer", mean_eer, {}),
        ):
            write_score_file(data, out / "scores" / f"{cell}.csv")
            meta = {"cell": cell, "model": model, "kind": data.kind, "convention": "iso", "threshold": None}
            (out / "scores" / f"{cell}.json").write_text(json.dumps(meta))
            low, high = (0.0, 1.0) if task == "mad" else wilson_interval(value, len(data))
            row = ResultRow(
                **common,
                dataset=dataset,
                task=task,
                protocol=protocol,
                value=value,
                ci_low=low,
                ci_high=high,
                higher_is_better=task == "fr",
                headline_metric=metric,
                convention="iso",
            )
            store.add_cell(cell, [row], model=model, dataset=dataset, protocol=protocol, details=details)
        for dataset, base_correct in general_base.items():
            flip = rng.random(len(base_correct)) < 0.1 * SHIFT[model]  # each model differs from the base a little
            correct = base_correct ^ flip
            made[model][dataset] = correct
            cell = f"g{k}{dataset}"
            (out / "predictions").mkdir(exist_ok=True)
            np.savez(out / "predictions" / f"{cell}.npz", correct=correct, label=LABELS[dataset])
            # the run's value: the protocol's metric of logits whose top-1 is right exactly where `correct` says
            logits = np.eye(4)[np.where(correct, LABELS[dataset], (LABELS[dataset] + 1) % 4)]
            metric = HEADLINE[dataset]
            value = (accuracy_topk if metric == "acc1" else mean_per_class_recall)(logits, LABELS[dataset])
            made[model][f"{dataset}_value"] = value
            low, high = wilson_interval(value, len(correct))
            row = ResultRow(
                **common,
                dataset=dataset,
                task="general",
                protocol="linear_probe",
                value=value,
                ci_low=low,
                ci_high=high,
                headline_metric=metric,
                convention="lbfgs",
            )
            store.add_cell(cell, [row], model=model, dataset=dataset, protocol="linear_probe", details={})
    store.close()
    return made


def experiment() -> tuple[SimpleNamespace, list[PointFile]]:
    methods = [
        {"name": "m", "task": "fr", "model": "unused.yaml", "grid": [1, 2]},
        {"name": "r", "task": "mad", "model": "unused.yaml", "grid": [1]},
    ]
    settings = FrontierSettings(base="b", methods=methods, n_boot=N_BOOT, seed=SEED)
    points = [
        PointFile(n.split("@")[0], "fr" if n[0] == "m" else "mad", float(n[-1]), n, Path("x")) for n in MODELS[1:4]
    ]
    models = [SimpleNamespace(name="b", base=None), SimpleNamespace(name="s", base="b")]
    return SimpleNamespace(frontier=settings, model_entries=lambda: models), points


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def brute_force(made: dict) -> dict:
    """Each model's biometric score per task and GELO per draw, by the public functions, one draw at a time."""
    fr_rows = [
        np.sort(i) for i in resample_indices(made["b"]["fr"].positive, _rng("fr/pairs/face_verification"), N_BOOT)
    ]
    mad = made["b"]["mad"]
    codes = np.unique(mad.subjects, return_inverse=True)[1]
    mad_rows = [
        np.sort(i) for i in resample_indices(mad.positive, _rng("mad/morphs/attack_detection"), N_BOOT, clusters=codes)
    ]
    general_rows = {d: _rng(f"general/{d}").integers(0, n, (N_BOOT, n)) for d, n in GENERAL.items()}
    found = {"fr": {}, "mad": {}, "gelo": {}}
    for model, data in made.items():
        found["fr"][model] = np.array(
            [kfold_accuracy(data["fr"].scores[i], data["fr"].positive[i], folds=FOLDS).mean for i in fr_rows]
        )
        found["mad"][model] = np.array(
            [1 - score_set(data["mad"].subset(i), "iso").values["mean_eer"] for i in mad_rows]
        )
    for model in made:
        if model == "b":
            found["gelo"][model] = np.ones(N_BOOT)
            continue
        ratios = []
        for k in range(N_BOOT):
            mine = [by_hand(made[model][d], d, general_rows[d][k]) for d in GENERAL]
            base = [by_hand(made["b"][d], d, general_rows[d][k]) for d in GENERAL]
            ratios.append((sum(mine) / 2) / (sum(base) / 2))
        found["gelo"][model] = np.array(ratios)
    return found


def by_hand(correct: np.ndarray, dataset: str, rows: np.ndarray) -> float:
    """A dataset's headline on the resampled test samples: top-1 accuracy, or the mean over the classes drawn of
    their share of correct samples."""
    correct, labels = correct[rows], LABELS[dataset][rows]
    if HEADLINE[dataset] == "acc1":
        return correct.sum() / len(correct)
    classes = sorted(set(labels.tolist()))
    return sum(correct[labels == c].sum() / (labels == c).sum() for c in classes) / len(classes)


def percentiles(values) -> list:
    """The 2.5 and 97.5 percentiles of the finite draws; none where fewer than half are finite."""
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) / 2:
        return [None, None]
    return [pytest.approx(np.percentile(finite, 2.5), abs=1e-12), pytest.approx(np.percentile(finite, 97.5), abs=1e-12)]


def test_paired_bootstrap_equals_a_brute_force_loop_over_the_same_resamples(tmp_path):
    made = write_run(tmp_path)
    exp, points = experiment()
    summary = summarise(tmp_path, exp, points)
    assert summary["paired"]["parametric_fallback"] == {}
    assert summary["paired"]["test_sets"]["mad/morphs/attack_detection"]["unit"] == "subjects"
    reference = brute_force(made)
    for task, names, curve in (("fr", ["b", "m@1", "m@2", "s"], "m"), ("mad", ["b", "r@1", "s"], "r")):
        data = summary["tasks"][task]
        assert [p["model"] for p in data["points"]] == names
        # the point estimates are the stored rows' values
        key = f"{task}_value"
        for p in data["points"]:
            stored = made[p["model"]][key]
            assert p["biometric"] == (stored if task == "fr" else 1 - stored)
        x = np.column_stack([reference[task][n] for n in names])
        y = np.column_stack([reference["gelo"][n] for n in names])
        members = [names.index(n) for n in data["curves"][curve]["models"]]
        hv = [hypervolume(dx, dy, (dx[0], 0.0)) for dx, dy in zip(x, y, strict=True)]
        assert data["hypervolume"]["all"]["ci"] == percentiles(hv)
        gain = data["matched"]["gain"]  # matched at an equal gain: each draw's base score plus the gain
        assert data["matched"]["biometric"] == pytest.approx(data["base_biometric"] + gain)
        matched = [value_at(dx[members], dy[members], dx[0] + gain) for dx, dy in zip(x, y, strict=True)]
        best = max(members[1:], key=lambda i: data["points"][i]["biometric"])  # the draws of best point - base
        assert data["matched"]["beats_base_share"][curve] == pytest.approx(np.mean(x[:, best] > x[:, 0]))
        assert data["matched"]["methods"][curve]["ci"] == percentiles(matched)
        share = np.mean([pareto_mask(dx, dy) for dx, dy in zip(x, y, strict=True)], axis=0)
        assert [p["pareto_share"] for p in data["points"]] == pytest.approx(list(share))
        # each point's intervals: the percentiles of its own paired column, the same draws as every statistic
        for k, p in enumerate(data["points"]):
            assert p["biometric_ci"] == percentiles(x[:, k]) and p["gelo_ci"] == percentiles(y[:, k])
            assert p["intervals"]["biometric"] == "paired"
            stored = made[p["model"]][key]
            rows = wilson_interval(stored, N_PAIRS) if task == "fr" else (0.0, 1.0)
            assert p["biometric_ci_rows"] == pytest.approx(list(rows))  # the rows' own, kept for reference
    gelo = summary["models"]["s"]["gelo"]  # the point estimate: analyse's GELO of the stored rows
    means = [np.mean([made[m][f"{d}_value"] for d in GENERAL]) for m in ("s", "b")]
    assert gelo == pytest.approx(means[0] / means[1], rel=1e-15)


def test_models_without_per_sample_data_fall_back_and_say_why(tmp_path):
    write_run(tmp_path)
    (tmp_path / "predictions" / "g2d1.npz").unlink()  # m@2's outcomes on d1: an old run
    with np.load(tmp_path / "predictions" / "g3d2.npz") as data:  # r@1's: outcomes without labels
        np.savez(tmp_path / "predictions" / "g3d2.npz", correct=data["correct"])
    other = "".join(f"0.{k},{'genuine' if k % 2 else 'impostor'},{k}\n" for k in range(1, 10))
    (tmp_path / "scores" / "v4.csv").write_text("score,label,pair\n" + other)  # s: other rows
    exp, points = experiment()
    summary = summarise(tmp_path, exp, points)
    fallback = summary["paired"]["parametric_fallback"]
    assert set(fallback) == {"m@2", "r@1", "s"} and set(fallback["m@2"]) == {"gelo"} and set(fallback["s"]) == {"fr"}
    assert "no predictions/g2d1.npz" in fallback["m@2"]["gelo"]
    assert "d2's headline mean_per_class_recall needs each sample's class" in fallback["r@1"]["gelo"]
    assert "re-scoring scores/v4.csv gives accuracy" in fallback["s"]["fr"]
    assert summary["tasks"]["fr"]["hypervolume"]["all"]["ci"][0] is not None  # still drawn (parametrically)


def _sets(rng, n: int = 60) -> tuple[ScoreSet, ScoreSet, np.ndarray, np.ndarray]:
    genuine = np.arange(n) % 2 == 0
    noise = rng.normal(size=n)
    a = ScoreSet.of("verification", noise + genuine, genuine)
    b = ScoreSet.of("verification", noise + genuine + 0.01 * rng.normal(size=n), genuine)  # nearly a's scores
    correct = rng.random(400) < 0.7
    near = correct ^ (rng.random(400) < 0.03)
    return a, b, correct, near


def _bench(sets: dict) -> Benchmark:
    score = {m: (lambda d: kfold_accuracy(d.scores, d.positive, folds=5).mean) for m in sets}
    return Benchmark("fr/pairs/face_verification", "fr", True, sets, score)


def _general(outcomes: dict) -> list[GeneralSet]:
    return [GeneralSet("general/d/linear_probe", "d", "linear_probe", "acc1", outcomes)]


def test_identical_models_give_zero_width_intervals_of_their_difference():
    a, _, correct, _ = _sets(np.random.default_rng(1))
    specs = [GeloSpec(m, "base", "linear_probe", ("d",)) for m in ("one", "two")]
    outcomes = {"base": correct ^ (np.arange(400) % 7 == 0), "one": correct, "two": correct.copy()}
    found = paired_draws([_bench({"one": a, "two": a})], _general(outcomes), specs, n_boot=300, seed=0)
    assert interval(found.x[("one", "fr")] - found.x[("two", "fr")]) == (0.0, 0.0)
    assert interval(found.y["one"] - found.y["two"]) == (0.0, 0.0)
    assert np.ptp(found.y["one"]) > 0  # the draws themselves vary
    compared = _compared({"one": (0.9, found.y["one"]), "two": (0.9, found.y["two"])}, "gelo")
    assert compared["two"]["difference"] == {"to": "one", "value": 0.0, "ci": [0.0, 0.0]}


def test_paired_intervals_of_a_difference_are_narrower_than_independent_ones():
    a, b, correct, near = _sets(np.random.default_rng(2))
    specs = [GeloSpec(m, "base", "linear_probe", ("d",)) for m in ("a", "b")]
    outcomes = {"base": np.ones(400, bool), "a": correct, "b": near}  # base at 1: GELO is each model's accuracy
    found = paired_draws([_bench({"a": a, "b": b})], _general(outcomes), specs, n_boot=1000, seed=0)
    for one, two in ((found.x[("a", "fr")], found.x[("b", "fr")]), (found.y["a"], found.y["b"])):
        sd = [np.std(one), np.std(two)]
        independent = draw(np.zeros(2), np.zeros(2), np.array(sd), np.zeros(2), n=1000, seed=0).x
        paired_width = np.subtract(*interval(one - two)[::-1])
        independent_width = np.subtract(*interval(independent[:, 0] - independent[:, 1])[::-1])
        assert paired_width < 0.5 * independent_width


def test_a_score_set_above_max_rows_is_drawn_as_the_protocols_bootstrap_draws_it():
    """A fixed stratified subsample of m rows, the same for every model, resampled within each class; each
    model's draw its full-set value plus sqrt(m / n) times the deviation from its subsample value."""
    rng = np.random.default_rng(4)
    n, m = 400, 100
    genuine = rng.random(n) < 0.3
    sets = {k: ScoreSet.of("verification", rng.normal(size=n) + (1 + k) * genuine, genuine) for k in range(2)}
    score = {k: (lambda d: kfold_accuracy(d.scores, d.positive, folds=5).mean) for k in sets}
    bench = Benchmark("fr/big/face_verification", "fr", True, sets, score, max_rows=m)
    drawn, unpaired = bench.draws(50, SEED)
    assert unpaired == {} and bench.rows_resampled == m and "sqrt(100/400)" in bench.method
    stream = _rng("fr/big/face_verification")
    rows = _stratified_subsample(genuine, m, stream)
    draws = [np.sort(i) for i in resample_indices(genuine[rows], stream, 50)]
    for k, data in sets.items():
        full, local = score[k](data), score[k](data.subset(rows))
        expected = [full + np.sqrt(m / n) * (score[k](data.subset(rows[i])) - local) for i in draws]
        np.testing.assert_allclose(drawn[k], expected, rtol=0, atol=1e-15)
    # a headline the subsample leaves undefined: that model falls back, saying why
    fussy = {0: score[0], 1: lambda d: None if len(d) < n else score[1](d)}
    found = paired_draws(
        [Benchmark("fr/big/face_verification", "fr", True, sets, fussy, max_rows=m)], [], [], n_boot=10, seed=SEED
    )
    assert "400 rows above MAX_ROWS 100" in found.fallback[1]["fr"] and (1, "fr") not in found.x
    assert found.test_sets["fr/big/face_verification"]["rows_resampled"] == m


def test_draws_in_which_a_headline_is_undefined_are_counted_per_test_set():
    a, b, _, _ = _sets(np.random.default_rng(5))
    seen = []

    def sometimes(data):  # undefined in every third draw of model "b"
        seen.append(1)
        return None if len(seen) % 3 == 0 else kfold_accuracy(data.scores, data.positive, folds=5).mean

    score = {"a": lambda d: kfold_accuracy(d.scores, d.positive, folds=5).mean, "b": sometimes}
    found = paired_draws(
        [Benchmark("fr/pairs/face_verification", "fr", True, {"a": a, "b": b}, score)], [], [], n_boot=30, seed=0
    )
    entry = found.test_sets["fr/pairs/face_verification"]
    assert entry["undefined_draws"] == 10 and entry["undefined_by_model"] == {"b": 10}
    assert np.count_nonzero(np.isnan(found.x[("b", "fr")])) == 10


def _general_store(out: Path, zeroshot_labels: np.ndarray) -> list:
    """Models b and s on dataset d under two protocols; the zero-shot files' labels given."""
    rng = np.random.default_rng(6)
    store = ResultStore(out / "results.sqlite")
    (out / "predictions").mkdir()
    labels = np.arange(50) % 5
    for k, model in enumerate(("b", "s")):
        for protocol, mine in (("linear_probe", labels), ("zeroshot", zeroshot_labels)):
            correct = rng.random(50) < 0.6
            cell = f"{model}{protocol}"
            np.savez(out / "predictions" / f"{cell}.npz", correct=correct, label=mine)
            row = ResultRow(
                run_id="t",
                model=model,
                arch="a",
                dataset="d",
                task="general",
                protocol=protocol,
                metric="headline",
                value=float(correct.mean()),
                base=None if k == 0 else "b",
                headline_metric="acc1",
            )
            store.add_cell(cell, [row], model=model, dataset="d", protocol=protocol, details={})
    rows = store.rows(current=True)
    store.close()
    return rows


def test_one_dataset_under_two_protocols_is_one_test_set_with_one_resample_per_draw(tmp_path):
    rows = _general_store(tmp_path, np.arange(50) % 5)
    specs = [GeloSpec("s", "b", p, ("d",)) for p in ("linear_probe", "zeroshot")]
    why: dict = {}
    sets = load_general(tmp_path, rows, specs, "b", why)
    assert why == {} and [g.protocol for g in sets] == ["linear_probe", "zeroshot"]
    for one, two in zip(sets[0].indices(30, SEED), sets[1].indices(30, SEED), strict=True):
        np.testing.assert_array_equal(one, two)
    found = paired_draws([], sets, specs, n_boot=30, seed=SEED)
    assert set(found.test_sets) == {"general/d"} and set(found.test_sets["general/d"]["protocols"]) == {
        "linear_probe",
        "zeroshot",
    }
    # other samples under one protocol (same count, other classes): not one test set, so not paired
    other = tmp_path / "other"
    other.mkdir()
    rows = _general_store(other, (np.arange(50) + 1) % 5)
    why = {}
    load_general(other, rows, specs, "b", why)
    assert "labels other samples of d than predictions/blinear_probe.npz" in why["s"]["gelo"]


def test_two_headline_rows_of_one_model_on_one_benchmark_fall_back_and_say_why(tmp_path):
    made = write_run(tmp_path)
    store = ResultStore(tmp_path / "results.sqlite")
    data = made["s"]["fr"]
    write_score_file(data, tmp_path / "scores" / "v4b.csv")
    meta = {"cell": "v4b", "model": "s", "kind": "verification", "convention": "iso", "threshold": None}
    (tmp_path / "scores" / "v4b.json").write_text(json.dumps(meta))
    row = ResultRow(
        run_id="t",
        model="s",
        arch="a",
        dataset="pairs",
        task="fr",
        protocol="face_verification",
        metric="headline",
        value=made["s"]["fr_value"],
        higher_is_better=True,
        model_task="fr",
        base="b",
        headline_metric="accuracy",
        convention="other",
    )
    store.add_cell("v4b", [row], model="s", dataset="pairs", protocol="face_verification", details={"folds": FOLDS})
    store.close()
    exp, points = experiment()
    summary = summarise(tmp_path, exp, points)
    assert "2 headline rows on pairs under face_verification" in summary["paired"]["parametric_fallback"]["s"]["fr"]
    s = next(p for p in summary["tasks"]["fr"]["points"] if p["model"] == "s")
    assert s["intervals"] == {"biometric": "parametric", "gelo": "paired"}

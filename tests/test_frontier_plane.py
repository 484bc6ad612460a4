"""Which models stand on a task's frontier plane and what their coordinates are, on hand-made stored rows
(no per-sample files, so every interval is the parametric one): a side effect never counts as a task's
performance, error rates count as 1 − e, a regulariser's curve runs from its strongest weight, a model against
another base or with other benchmarks is left off with its reason, and methods are matched at half the smallest
best gain of the methods that beat the base in >= 97.5 % of the draws unless `match` says otherwise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from overspec.frontier.config import FrontierSettings
from overspec.frontier.points import PointFile
from overspec.frontier.summary import summarise
from overspec.results import ResultStore
from overspec.results.store import ResultRow

GENERAL = 0.8  # the base's linear-probe accuracy on the one general dataset
# model -> (its base, FR accuracy on `pairs`, GELO it is given, MAD EER or None)
MODELS = {
    "b": (None, 0.80, 1.0, 0.20),
    "l2@10": ("b", 0.82, 0.99, None),
    "l2@1": ("b", 0.86, 0.95, None),
    "l2@0.1": ("b", 0.90, 0.85, None),
    "w@0.5": ("b", 0.85, 1.0, None),
    "w@1": ("b", 0.92, 0.90, None),
    "r@1": ("b", None, 0.97, 0.10),
    "s": ("b", 0.93, 0.80, None),
    "dino": (None, 0.70, 1.0, None),
    "other": ("dino", 0.95, 0.99, None),
    "partial": ("b", None, 0.98, None),
}
POINTS = [("l2", "fr", 10.0), ("l2", "fr", 1.0), ("l2", "fr", 0.1), ("w", "fr", 0.5), ("w", "fr", 1.0)]
POINTS += [("r", "mad", 1.0)]


def _row(model, base, dataset, task, protocol, value, higher=True) -> ResultRow:
    return ResultRow(
        run_id="t",
        model=model,
        arch="a",
        dataset=dataset,
        task=task,
        protocol=protocol,
        metric="headline",
        value=value,
        ci_low=max(0.0, value - 0.02),
        ci_high=min(1.0, value + 0.02),
        higher_is_better=higher,
        model_task="fr",
        base=base,
        headline_metric="accuracy",
    )


def write_store(out) -> None:
    store = ResultStore(out / "results.sqlite")
    for k, (model, (base, fr, gelo, eer)) in enumerate(MODELS.items()):
        rows = [_row(model, base, "d1", "general", "linear_probe", GENERAL * gelo)]
        if fr is not None:
            rows.append(_row(model, base, "pairs", "fr", "face_verification", fr))
        # a side effect of the FR task (lower is better): were it counted, every FR score would change
        rows.append(_row(model, base, "morph_subjects", "fr", "morph_acceptance", 0.5, higher=False))
        if model == "partial":  # a verification score on another benchmark than the base's
            rows.append(_row(model, base, "pairs2", "fr", "face_verification", 0.99))
        if eer is not None:
            rows.append(_row(model, base, "morphs", "mad", "attack_detection", eer, higher=False))
        for i, row in enumerate(rows):
            store.add_cell(f"c{k}_{i}", [row], model=model, dataset=row.dataset, protocol=row.protocol, details={})
    store.close()


def experiment(**frontier):
    methods = [
        {"name": "l2", "task": "fr", "finetune": "unused.yaml", "strength": "l2sp_weight", "grid": [0.1, 1, 10]},
        {"name": "w", "task": "fr", "model": "unused.yaml", "grid": [0.5, 1]},
        {"name": "r", "task": "mad", "model": "unused.yaml", "grid": [1]},
    ]
    settings = FrontierSettings(base="b", methods=methods, n_boot=100, **frontier)
    entries = [SimpleNamespace(name=m, base=MODELS[m][0]) for m in ("b", "s", "dino", "other", "partial")]
    points = [PointFile(m, task, v, f"{m}@{v:g}", None) for m, task, v in POINTS]
    return SimpleNamespace(frontier=settings, model_entries=lambda: entries), points


def test_the_plane_holds_comparable_models_with_their_own_task_performance(tmp_path):
    write_store(tmp_path)
    exp, points = experiment()
    fr = summarise(tmp_path, exp, points, pair=False)["tasks"]["fr"]
    got = {p["model"]: (p["biometric"], p["gelo"]) for p in fr["points"]}
    for model in ("b", "l2@10", "l2@1", "l2@0.1", "w@0.5", "w@1", "s"):
        _, score, gelo, _ = MODELS[model]
        assert got[model] == (score, pytest.approx(gelo, rel=1e-12))  # the verification row alone: no side effect
    assert [p["model"] for p in fr["points"] if p["specialist"]] == ["s"]
    assert set(fr["excluded"]) == {"dino", "other", "partial"}
    assert "no GELO" in fr["excluded"]["dino"]  # another base model: no base of its own, so no GELO
    assert "against dino" in fr["excluded"]["other"]
    assert "pairs" in fr["excluded"]["partial"]
    # a regulariser's curve starts at its strongest weight (nearest the base), a scale's at its smallest
    assert fr["curves"]["l2"] == {"strengths": [None, 10.0, 1.0, 0.1], "models": ["b", "l2@10", "l2@1", "l2@0.1"]}
    assert fr["curves"]["w"]["models"] == ["b", "w@0.5", "w@1"]
    # best gains 0.10 (l2) and 0.12 (w): matched at half the smaller, FR 0.85
    assert fr["matched"]["gain"] == pytest.approx(0.05)
    assert fr["matched"]["biometric"] == pytest.approx(0.85)
    l2 = 0.99 + (0.85 - 0.82) / (0.86 - 0.82) * (0.95 - 0.99)  # between l2@10 and l2@1
    assert fr["matched"]["methods"]["l2"]["gelo"] == pytest.approx(l2)
    assert fr["matched"]["methods"]["w"]["gelo"] == pytest.approx(1.0)  # w@0.5 sits on the matched score
    assert fr["matched"]["methods"]["w"]["difference"]["to"] == "w"
    # Pareto by hand: w@0.5 (0.85, 1.0) beats b and l2@10; w@1 (0.92, 0.9) beats l2@0.1; l2@1 (0.86, 0.95) is
    # right of w@0.5 and above w@1; s is furthest right
    assert {p["model"] for p in fr["points"] if p["pareto"]} == {"w@0.5", "l2@1", "w@1", "s"}


def test_error_rates_count_as_one_minus_the_rate_and_match_can_be_set(tmp_path):
    write_store(tmp_path)
    exp, points = experiment(match={"fr": 0.88})
    summary = summarise(tmp_path, exp, points, pair=False)
    mad = {p["model"]: p["biometric"] for p in summary["tasks"]["mad"]["points"]}
    assert mad == {"b": pytest.approx(0.8), "r@1": pytest.approx(0.9)}
    fr = summary["tasks"]["fr"]
    assert fr["matched"]["biometric"] == pytest.approx(0.88)
    l2 = 0.95 + (0.88 - 0.86) / (0.90 - 0.86) * (0.85 - 0.95)
    assert fr["matched"]["methods"]["l2"]["gelo"] == pytest.approx(l2)
    assert summary["models"]["other"]["base"] == "dino"


def test_points_run_their_tasks_benchmarks_and_no_side_effect(tmp_path):
    from overspec.config import Experiment
    from overspec.frontier.run import frontier_experiment

    experiment = Experiment.model_validate(
        {
            "name": "x",
            "models": [{"name": "b", "spec": "b.yaml"}],
            "general": {"datasets": ["mnist"], "protocols": ["linear_probe"]},
            "biometric": [
                {"name": "pairs", "protocol": "face_verification", "path": "pairs.bin"},
                {"name": "morphs", "protocol": "attack_detection", "task": "mad", "path": "morphs"},
                {
                    "name": "morph_subjects",
                    "protocol": "morph_acceptance",
                    "path": "morph_subjects",
                    "options": {"verification": "pairs.bin", "far": 0.01},
                },
                {"name": "held_out", "protocol": "identification", "path": "ids"},
            ],
            "frontier": {"base": "b", "methods": [{"name": "w", "task": "fr", "model": "m.yaml", "grid": [1]}]},
        }
    )
    point = PointFile("w", "fr", 1.0, "w@1", tmp_path / "w.yaml")
    entry = frontier_experiment(experiment, [point]).model_entries()[-1]
    assert (entry.name, entry.base, entry.protocols) == ("w@1", "b", ["linear_probe", "face_verification"])


def test_a_point_named_like_a_model_fails_before_anything_trains(tmp_path):
    from overspec.config import Experiment
    from overspec.errors import ConfigError
    from overspec.frontier.run import run_frontier

    experiment = Experiment.model_validate(
        {
            "name": "x",
            "models": [{"name": "b", "spec": "b.yaml"}, {"name": "l2@1", "spec": "b.yaml"}],
            "general": {"datasets": ["mnist"], "protocols": ["linear_probe"]},
            "biometric": [{"name": "pairs", "protocol": "face_verification", "path": "pairs.bin"}],
            "frontier": {
                "base": "b",
                "methods": [
                    {"name": "l2", "task": "fr", "finetune": "ft.yaml", "strength": "l2sp_weight", "grid": [1]}
                ],
            },
        }
    )
    with pytest.raises(ConfigError, match="experiment x: key 'frontier.methods.0.finetune': fine-tune config"):
        run_frontier(experiment, out=tmp_path / "run")  # an Experiment is checked as a config file is
    (tmp_path / "ft.yaml").write_text(
        "name: ft\ntask: fr\nbase: b.yaml\ndata: faces\noutput: out\nmethod: full\nhead: {kind: cosface}\n"
    )
    experiment.frontier.methods[0].finetune = str(tmp_path / "ft.yaml")
    with pytest.raises(ConfigError, match="experiment x: frontier point l2@1 has the name of a model"):
        run_frontier(experiment, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_report_shows_frontier_json_and_says_what_it_left_off(tmp_path):
    import json

    from overspec.report.frontier import frontier_sections

    write_store(tmp_path)
    exp, points = experiment()
    exp.frontier.methods.append(exp.frontier.methods[2].model_copy(update={"name": "p", "task": "pad"}))
    summary = summarise(tmp_path, exp, points, pair=False)
    (tmp_path / "frontier.json").write_text(json.dumps(summary))
    sections, figures = frontier_sections(tmp_path)
    tables = dict(sections)
    assert tables["frontier_pad"].rows == [["the base b has no pad benchmark result"]]
    fr = tables["frontier_fr"]
    matched = summary["tasks"]["fr"]["matched"]["methods"]
    rows = {r[0]: dict(zip(fr.columns, r, strict=True)) for r in fr.rows}
    assert rows["l2"]["GELO at FR 0.850"].startswith(f"{matched['l2']['gelo']:.3f}")
    assert rows["w"]["vs best method"] == "best"
    assert rows["l2"]["vs best method"].startswith(f"{matched['l2']['difference']['value']:.3f}")
    assert rows["l2"]["reached in draws"] == f"{100 * matched['l2']['reached_share']:.0f} %"
    assert any("Left off this plane: other (its GELO is against dino" in note for note in fr.notes)
    assert [f.path.name for f in figures] == ["frontier_fr.png", "frontier_mad.png"]


def test_a_point_with_an_undefined_score_is_left_out_of_the_figure_not_a_crash(tmp_path):
    import json

    from overspec.report.frontier import frontier_sections

    write_store(tmp_path)
    exp, points = experiment()
    summary = summarise(tmp_path, exp, points, pair=False)
    fr = summary["tasks"]["fr"]
    undefined = next(p for p in fr["points"] if p["model"] == "l2@1")
    undefined.update(biometric=None, biometric_ci=None)  # an unresolved operating point stores no number
    next(p for p in fr["points"] if p["model"] == "s").update(gelo=None, gelo_ci=None)
    (tmp_path / "frontier.json").write_text(json.dumps(summary))
    _, figures = frontier_sections(tmp_path)
    assert figures[0].path.exists()


def test_a_noise_level_gainer_does_not_drag_the_matched_gain_to_zero(tmp_path, monkeypatch):
    # method n's only point beats the base by 0.001, inside the intervals (±0.02): it is not counted as gaining
    monkeypatch.setitem(MODELS, "n@1", ("b", 0.801, 0.99, None))
    write_store(tmp_path)
    exp, points = experiment()
    exp.frontier.methods.append(exp.frontier.methods[1].model_copy(update={"name": "n", "grid": [1]}))
    points.append(PointFile("n", "fr", 1.0, "n@1", None))
    fr = summarise(tmp_path, exp, points, pair=False)["tasks"]["fr"]
    shares = fr["matched"]["beats_base_share"]
    assert shares["l2"] >= 0.975 and shares["w"] >= 0.975 and 0.3 < shares["n"] < 0.975
    assert fr["matched"]["gain"] == pytest.approx(0.05)  # half of l2's 0.10, as without n (not 0.0005)
    assert "97.5 % of the draws" in fr["matched"]["rule"]
    # each point's interval is the percentiles of its draws: here the parametric ones matching the rows' ±0.02
    w = next(p for p in fr["points"] if p["model"] == "w@1")
    assert w["biometric_ci_rows"] == pytest.approx([0.90, 0.94])
    assert w["biometric_ci"] == pytest.approx([0.90, 0.94], abs=0.005) and w["intervals"]["biometric"] == "parametric"


def test_a_match_below_the_base_is_kept_and_warned_about(tmp_path):
    write_store(tmp_path)
    exp, points = experiment(match={"fr": 0.78})
    fr = summarise(tmp_path, exp, points, pair=False)["tasks"]["fr"]
    assert fr["matched"]["gain"] == pytest.approx(-0.02)
    assert "below the base's fr score 0.8" in fr["matched"]["warning"]
    assert "configured match" in fr["matched"]["rule"]

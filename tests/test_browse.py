"""`overspec browse`: the page's table holds exactly the stores' rows, its trade-off points are the GELOs of
analysis/gelo.py (and a ratio of means computed here) against gains computed by hand, the study's published points
are its tables' numbers, and the page fetches nothing. In a real browser: tests/test_browser.py."""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers.cli import overspec
from overspec.analysis.gelo import analyse
from overspec.errors import ConfigError, DataError
from overspec.report.browse import build_browse, tradeoff_figure
from overspec.report.browse_data import load_runs, published_points, tradeoff_points
from overspec.report.build import _records
from overspec.results.store import ResultRow, ResultStore

# model: (arch, base, tuned for); general headline values; the own-task benchmark's (value, ci_low, ci_high)
RUNS = {
    "a/run": {
        "arch": "ViT-B-16",
        "clip": ({"d1": 0.60, "d2": 0.50}, ("lfw", "fr", True, 0.80, 0.74, 0.84)),
        "fr": ({"d1": 0.45, "d2": 0.40}, ("lfw", "fr", True, 0.90, 0.85, 0.93)),
    },
    "b/run": {
        "arch": "ViT-L-14",
        "clip": ({"d1": 0.70, "d2": 0.60}, ("lfw", "fr", True, 0.85, 0.80, 0.90)),
        "fr": ({"d1": 0.70, "d2": 0.63}, ("lfw", "fr", True, 0.95, 0.90, 0.97)),
    },
    "mad-run": {  # a lower-is-better headline: the gain is the base's EER minus the model's
        "arch": "ViT-B-16",
        "clip": ({"d1": 0.60, "d2": 0.50}, ("smad", "mad", False, 0.30, 0.25, 0.36)),
        "mad": ({"d1": 0.58, "d2": 0.52}, ("smad", "mad", False, 0.12, 0.08, 0.15)),
    },
}


def _rows(label: str, model: str) -> list[ResultRow]:
    spec = RUNS[label]
    general, (bench, task, higher, value, low, high) = spec[model]
    base = None if model == "clip" else "clip"
    tuned = "general" if model == "clip" else task
    common = {"run_id": label, "model": model, "arch": spec["arch"], "base": base, "model_task": tuned}
    rows = []
    for dataset, v in general.items():
        for protocol, convention in (("zeroshot", "clip"), ("linear_probe", "lbfgs")):
            for metric in ("headline", "acc1"):
                rows.append(
                    ResultRow(
                        **common,
                        dataset=dataset,
                        task="general",
                        protocol=protocol,
                        metric=metric,
                        value=v + (0.01 if protocol == "linear_probe" else 0),
                        ci_low=v - 0.05,
                        ci_high=v + 0.05,
                        n=100,
                        headline_metric="acc1",
                        convention=convention,
                        ci_method="Wilson score interval over test samples",
                    )
                )
    protocol = "face_verification" if task == "fr" else "attack_detection"
    metric = "accuracy" if task == "fr" else "mean_eer"
    for name in ("headline", metric):
        rows.append(
            ResultRow(
                **common,
                dataset=bench,
                task=task,
                protocol=protocol,
                metric=name,
                value=value,
                ci_low=low,
                ci_high=high,
                n=40,
                higher_is_better=higher,
                headline_metric=metric,
                convention="iso",
            )
        )
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("browse")
    folders = []
    for label, spec in RUNS.items():
        folder = root / label
        store = ResultStore(folder / "results.sqlite")
        for model in ("clip", *(m for m in spec if m not in ("arch", "clip"))):
            by_cell: dict[tuple, list[ResultRow]] = {}
            for row in _rows(label, model):
                by_cell.setdefault((row.dataset, row.protocol), []).append(row)
            for (dataset, protocol), rows in by_cell.items():
                cell = f"{label}:{model}:{dataset}:{protocol}"
                store.add_cell(cell, rows, model=model, dataset=dataset, protocol=protocol, details={})
        store.close()
        folders.append(folder)
    (folders[0] / "report.html").write_text("<!doctype html><title>report</title>")
    return folders


class TableRows(HTMLParser):
    """The results table's body rows, with a numeric cell's exact stored value (its data-v) instead of its text."""

    def __init__(self):
        super().__init__()
        self.rows, self.body, self.exact = [], False, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tbody" and self.inside:
            self.body = True
        elif tag == "table":
            self.inside = attrs.get("id") == "results"
        elif self.body and tag == "tr":
            self.rows.append([])
        elif self.body and tag == "td":
            self.rows[-1].append(attrs.get("data-v", ""))
            self.exact = "data-v" in attrs

    inside = False

    def handle_data(self, data):
        if self.body and self.rows and self.rows[-1] and not self.exact:
            self.rows[-1][-1] += data

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.body = False
        if tag == "td":
            self.exact = False


def page_rows(page: str) -> list[list[str]]:
    parser = TableRows()
    parser.feed(page)
    return parser.rows


def test_the_table_holds_exactly_every_stored_row(runs, tmp_path):
    page = build_browse(runs, tmp_path / "compare.html").read_text()
    shown = Counter(
        (r[0], r[1], r[2], r[3], r[6], r[7], r[8], float(r[9]), float(r[10]), float(r[11]), int(r[12]), r[14])
        for r in page_rows(page)
    )
    stored = Counter()
    for label, folder in zip(RUNS, runs, strict=True):  # read with sqlite3 itself, not through the store class
        with sqlite3.connect(folder / "results.sqlite") as db:
            for row in db.execute(
                "SELECT model, arch, base, protocol, dataset, metric, value, ci_low, ci_high, n, convention "
                "FROM results"
            ):
                model, arch, base, protocol, dataset, metric, value, low, high, n, convention = row
                stored[
                    (label, model, arch, base or "", protocol, dataset, metric, value, low, high, n, convention)
                ] += 1
    assert shown == stored and sum(stored.values()) == 3 * 2 * 10  # exact values, not the rounded text
    assert re.search(r"<p id='row-count'>60 of 60 rows</p>", page)


def test_trade_off_points_are_gelo_against_the_gain_over_the_base(runs):
    loaded = load_runs(runs)
    assert [r.label for r in loaded] == list(RUNS)  # two folders named run: told apart by their parents
    points = {(p.source, p.protocol): p for p in tradeoff_points(loaded)}
    assert set(points) == {(label, p) for label in RUNS for p in ("zeroshot", "linear_probe")}
    for label in RUNS:
        model = "mad" if label == "mad-run" else "fr"
        general = {m: RUNS[label][m][0] for m in ("clip", model)}
        for protocol, shift in (("zeroshot", 0), ("linear_probe", 0.01)):
            point = points[(label, protocol)]
            ratio = sum(v + shift for v in general[model].values()) / sum(v + shift for v in general["clip"].values())
            run = next(r for r in loaded if r.label == label)
            (gelo,) = analyse(_records(run.rows)[0], protocols=[protocol])  # the report's analysis of these rows
            assert point.gelo == pytest.approx(ratio, rel=1e-12) and point.gelo == gelo.gelo
            assert point.gelo_ci == gelo.ci and point.model == model and point.base == "clip"
            _, _, higher, base_value, base_low, base_high = RUNS[label]["clip"][1]
            _, _, _, value, low, high = RUNS[label][model][1]
            if higher:
                gain, minus, plus = (
                    value - base_value,
                    math.hypot(value - low, base_high - base_value),
                    math.hypot(high - value, base_value - base_low),
                )
            else:  # lower is better: the gain falls when the model's error rises or the base's falls
                gain, minus, plus = (
                    base_value - value,
                    math.hypot(high - value, base_value - base_low),
                    math.hypot(value - low, base_high - base_value),
                )
            assert point.gain == pytest.approx(100 * gain, rel=1e-12)
            assert point.gain_errors == pytest.approx((100 * minus, 100 * plus), rel=1e-12)
    figure = tradeoff_figure(list(points.values()), [])
    plotted = sorted((x, y) for trace in figure.data for x, y in zip(trace.x, trace.y, strict=True))
    assert plotted == sorted((p.gain, p.gelo) for p in points.values())


def test_the_published_layer_is_the_studys_numbers():
    points = {(p.model, p.arch, p.protocol): p for p in published_points("chettaoui2025")}
    assert len(points) == 12 and all(p.published and p.gelo_ci is None for p in points.values())
    # by hand from chettaoui2025_biometric.csv and _summary.csv: MADation's EER 11.89 against CLIP's 23.59
    mad = points[("MADation", "ViT-B/16", "zeroshot")]
    assert (mad.gelo, mad.gain, mad.task) == (0.976, pytest.approx(23.59 - 11.89), "mad")
    pad = points[("FoundPAD", "ViT-L/14", "linear_probe")]  # HTER 43.0 against 31.37: a loss
    assert (pad.gelo, pad.gain) == (0.999, pytest.approx(31.37 - 43.0))
    fr = points[("FRoundation", "ViT-B/16", "zeroshot")]  # LFW, CFP-FP, AgeDB, CALFW, CPLFW, IJB-B, IJB-C
    ours = [99.3, 93.93, 88.9, 92.75, 90.67, 81.52, 85.63]
    clip = [93.33, 88.86, 74.67, 77.13, 79.23, 27.79, 32.4]
    assert (fr.gelo, fr.gain) == (0.688, pytest.approx(sum(o - c for o, c in zip(ours, clip, strict=True)) / 7))
    assert published_points("none") == []
    summary = Path(__file__).resolve().parents[1] / "src" / "overspec" / "reference" / "chettaoui2025_summary.csv"
    with pytest.raises(ConfigError, match=r"browse draws a bundled study's published models \(chettaoui2025\)"):
        published_points(summary)


def test_the_page_is_self_contained_and_links_each_report(runs, tmp_path):
    out = tmp_path / "pages" / "compare.html"
    page = build_browse(runs, out).read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page) and not re.search(r"<link[^>]*\bhref=", page)
    assert page.count("Plotly.newPlot(") == 4  # trade-off, GELO per model, a change map per protocol
    links = re.findall(r"<a href='([^']+)'>report</a>", page)
    assert len(links) == 1 and (out.parent / links[0]).resolve() == (runs[0] / "report.html").resolve()
    assert f"overspec report {runs[1]}" in page  # a run without a report says how to build it


def test_bad_run_folders_are_one_line(runs, tmp_path):
    with pytest.raises(DataError, match=r"nowhere: no results.sqlite there; give a run folder"):
        build_browse([tmp_path / "nowhere"], tmp_path / "x.html")
    with pytest.raises(ConfigError, match=r"the same run as .*; give each run once"):
        build_browse([runs[0], runs[0] / "results.sqlite"], tmp_path / "x.html")
    result = overspec("browse", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.html"))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "no results.sqlite" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.html").exists()


def test_a_run_of_base_models_only_still_gets_its_table(tmp_path):
    store = ResultStore(tmp_path / "bases" / "results.sqlite")
    rows = _rows("a/run", "clip")
    by_cell: dict[tuple, list[ResultRow]] = {}
    for row in rows:
        by_cell.setdefault((row.dataset, row.protocol), []).append(row)
    for (dataset, protocol), cell_rows in by_cell.items():
        store.add_cell(f"{dataset}:{protocol}", cell_rows, model="clip", dataset=dataset, protocol=protocol, details={})
    store.close()
    page = build_browse([tmp_path / "bases"], tmp_path / "compare.html", reference="none").read_text()
    assert len(page_rows(page)) == len(rows) and page.count("Plotly.newPlot(") == 2  # trade-off and GELO: empty
    assert "<h1>overspec browse: bases</h1>" in page and "no model of these runs has a base" in page


# a frontier run: model -> (tuned for, factor on the base's general headlines, {task: (score, ci_low, ci_high)})
FRONTIER_MODELS = {
    "clip": ("general", 1.0, {"fr": (0.80, 0.75, 0.85)}),
    "lora@0.5": ("fr", 0.97, {"fr": (0.86, 0.81, 0.90)}),
    "lora@1": ("fr", 0.90, {"fr": (0.92, 0.88, 0.95)}),
    "l2sp@1": ("fr", 0.99, {"fr": (0.83, 0.78, 0.87)}),
    "l2sp@10": ("fr", 1.01, {"fr": (0.79, 0.74, 0.84)}),
    "wise@1": ("fr", 0.95, {"fr": (0.78, 0.73, 0.83)}),  # never beats the base: "not reached"
    "fr-spec": ("fr", 0.85, {"fr": (0.95, 0.92, 0.97)}),  # the experiment's specialist: a star
    "mad@1": ("mad", 0.93, {"mad": (0.70, 0.60, 0.78)}),  # the base has no MAD result: that task has no frontier
}
FRONTIER_BASE_GENERAL = {"d1": 0.60, "d2": 0.50, "d3": 0.70, "d4": 0.40, "d5": 0.55}  # 5 datasets: GELO intervals


def frontier_run(folder: Path) -> Path:
    """A run folder whose frontier.json is written by overspec's own summary of its stored rows (no training: the
    rows are the points' results), as `overspec frontier` writes it."""
    from overspec._json import strict_dumps
    from overspec.config import Experiment, ModelEntry
    from overspec.frontier.points import PointFile
    from overspec.frontier.summary import summarise

    store = ResultStore(folder / "results.sqlite")
    for k, (model, (tuned, factor, scores)) in enumerate(FRONTIER_MODELS.items()):
        common = {"run_id": "frontier", "model": model, "arch": "ViT-B-16", "model_task": tuned}
        common["base"] = None if model == "clip" else "clip"
        for i, (dataset, v) in enumerate(FRONTIER_BASE_GENERAL.items()):
            value = v * factor * (1 + 0.02 * ((i + k) % 3 - 1) * (model != "clip"))  # GELO's bootstrap has a spread
            row = ResultRow(
                **common, dataset=dataset, task="general", protocol="zeroshot", metric="headline", value=value,
                ci_low=value - 0.04, ci_high=value + 0.04, n=100, headline_metric="acc1", convention="clip",
            )  # fmt: skip
            store.add_cell(f"{model}:{dataset}", [row], model=model, dataset=dataset, protocol="zeroshot", details={})
        for task, (value, low, high) in scores.items():
            protocol = "face_verification" if task == "fr" else "attack_detection"
            row = ResultRow(
                **common, dataset=f"{task}-bench", task=task, protocol=protocol, metric="headline", value=value,
                ci_low=low, ci_high=high, n=60, headline_metric="accuracy", convention="iso",
            )  # fmt: skip
            store.add_cell(
                f"{model}:{task}", [row], model=model, dataset=f"{task}-bench", protocol=protocol, details={}
            )
    store.close()
    methods = [
        {"name": "lora", "task": "fr", "model": "lora.yaml", "grid": [0.5, 1]},
        {"name": "l2sp", "task": "fr", "finetune": "ft.yaml", "strength": "l2sp_weight", "grid": [1, 10]},
        {"name": "wise", "task": "fr", "model": "full.yaml", "grid": [1]},
        {"name": "mad", "task": "mad", "model": "mad.yaml", "grid": [1]},
    ]
    experiment = Experiment(
        name="frontier",
        models=[ModelEntry(name="clip", spec="clip.yaml"), ModelEntry(name="fr-spec", spec="fr.yaml", base="clip")],
        frontier={"base": "clip", "methods": methods, "n_boot": 200},
    )
    points = []
    for name in FRONTIER_MODELS:
        if "@" in name:
            method, value = name.split("@")
            task = FRONTIER_MODELS[name][0]
            points.append(PointFile(method, task, float(value), name, folder / f"{method}.yaml"))
    (folder / "frontier.json").write_text(strict_dumps(summarise(folder, experiment, points), indent=1))
    return folder


def _estimate(value, ci) -> tuple:
    return (value, None if ci is None or None in ci else tuple(ci))


def test_the_frontier_block_is_frontier_json_as_written(runs, tmp_path):
    import json

    folder = frontier_run(tmp_path / "frontier")
    written = json.loads((folder / "frontier.json").read_text())
    (run, other) = load_runs([folder, runs[0]])
    assert other.frontier is None and run.frontier.base == "clip" and run.frontier.interval == written["interval"]
    assert (
        list(run.frontier.tasks) == ["fr", "mad"]
        and run.frontier.tasks["mad"].error == written["tasks"]["mad"]["error"]
    )
    fr, expected = run.frontier.tasks["fr"], written["tasks"]["fr"]
    assert [
        (p.model, (p.biometric.value, p.biometric.ci), (p.gelo.value, p.gelo.ci), p.pareto, p.specialist)
        for p in fr.points
    ] == [
        (
            p["model"],
            _estimate(p["biometric"], p["biometric_ci"]),
            _estimate(p["gelo"], p["gelo_ci"]),
            p["pareto"],
            p["specialist"],
        )
        for p in expected["points"]
    ]
    assert [(c.method, list(c.models), list(c.strengths)) for c in fr.curves] == [
        (m, c["models"], c["strengths"]) for m, c in expected["curves"].items()
    ]
    # the regulariser's curve runs from the base toward its weakest weight; the specialist is a star, on the front
    assert [c.models for c in fr.curves][:2] == [("clip", "lora@0.5", "lora@1"), ("clip", "l2sp@10", "l2sp@1")]
    assert [p.model for p in fr.points if p.specialist] == ["fr-spec"] and fr.points[-1].pareto
    assert (fr.matched_biometric, fr.matched_gain) == (expected["matched"]["biometric"], expected["matched"]["gain"])
    assert {m: (e.value, e.ci) for m, e in fr.matched.items()} == {
        m: _estimate(v["gelo"], v["ci"]) for m, v in expected["matched"]["methods"].items()
    }
    assert fr.matched["wise"].value is None and fr.matched["lora"].value is not None  # "not reached", and reached
    assert {m: (e.value, e.ci) for m, e in fr.hypervolume.items()} == {
        m: _estimate(v["value"], v["ci"]) for m, v in expected["hypervolume"].items()
    }
    assert fr.hypervolume["all"].ci is not None
    assert {m: (to, (e.value, e.ci)) for m, (to, e) in fr.difference.items()} == {
        m: (v["difference"]["to"], _estimate(v["difference"]["value"], v["difference"]["ci"]))
        for m, v in expected["matched"]["methods"].items()
    }
    assert fr.reached == {m: v["reached_share"] for m, v in expected["matched"]["methods"].items()}

    # keys added by later versions are ignored; a missing one is a one-line error naming it
    extended = json.loads(json.dumps(written))
    extended["paired"] = {"seed": 1}
    extended["tasks"]["fr"]["points"][0]["rank"] = 3
    extended["tasks"]["fr"]["matched"]["methods"]["lora"]["rank"] = {"gelo": 0.1, "ci": [0.0, 0.2]}
    extended["tasks"]["fr"]["hypervolume"]["differences"] = {"lora-wise": {"value": 0.1}}
    (folder / "frontier.json").write_text(json.dumps(extended))
    assert load_runs([folder])[0].frontier.tasks == run.frontier.tasks
    del extended["tasks"]["fr"]["points"][1]["pareto"]
    (folder / "frontier.json").write_text(json.dumps(extended))
    with pytest.raises(DataError, match=r"frontier.json: field tasks.fr.points\[1\].pareto missing or not true or"):
        load_runs([folder])
    (folder / "frontier.json").write_text("{")
    with pytest.raises(DataError, match=r"frontier.json: not readable JSON .*; rerun `overspec frontier CONFIG`"):
        load_runs([folder])


def test_the_page_shows_the_frontier_of_runs_that_have_one(runs, tmp_path):
    from overspec.report.browse_frontier import frontier_figure

    folder = frontier_run(tmp_path / "frontier")
    page = build_browse([folder, runs[0]], tmp_path / "compare.html", reference="none").read_text()
    assert page.count("Plotly.newPlot(") == 4 + 1  # trade-off, GELO, 2 change maps; the FR frontier, no MAD one
    assert "<option value='frontier-pane-0'>frontier · FR</option>" in page
    assert "frontier · MAD (no frontier)" in page and "the base clip has no mad benchmark result" in page
    assert re.search(r"No frontier.json \(written by <code>overspec frontier CONFIG</code>\) in: run\.", page)
    # the matched table's exact numbers are the file's
    fr = load_runs([folder])[0].frontier.tasks["fr"]
    cells = re.findall(r"<tr data-method='([^']*)'><td>[^<]*</td>(.*?)</tr>", page)
    shown = {
        m: re.findall(r"<td class='num'( data-v='[^']*')?( data-lo='[^']*' data-hi='[^']*')?>", row) for m, row in cells
    }
    assert shown["wise"][0] == ("", "") and shown["lora"][0] == (
        f" data-v='{fr.matched['lora'].value!r}'",
        f" data-lo='{fr.matched['lora'].ci[0]!r}' data-hi='{fr.matched['lora'].ci[1]!r}'",
    )
    assert ">not reached<" in page and set(shown) == {"lora", "l2sp", "wise", ""}

    frontier = load_runs([folder])[0].frontier
    figure = frontier_figure(frontier, fr)
    roles = [t.meta["role"] for t in figure.data]
    assert roles == ["pareto", "band", "curve", "band", "curve", "band", "curve", "others", "base"]
    pareto = sorted((p.biometric.value, p.gelo.value) for p in fr.points if p.pareto)
    assert list(zip(figure.data[0].x, figure.data[0].y, strict=True)) == pareto and len(pareto) >= 2
    assert [list(t.x) for t in figure.data if t.meta["role"] == "curve"] == [
        [next(p for p in fr.points if p.model == m).biometric.value for m in c.models] for c in fr.curves
    ]
    (line,) = [s for s in figure.layout.shapes if s.line.dash == "dot"]
    assert line.x0 == line.x1 == fr.matched_biometric


def test_a_page_without_frontier_runs_has_no_frontier_view(runs, tmp_path):
    page = build_browse(runs, tmp_path / "compare.html", reference="none").read_text()
    assert "frontier-view" not in page and "frontier-choice" not in page

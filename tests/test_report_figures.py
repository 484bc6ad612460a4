"""The report's figures and tables on a stored run: DET/ROC/score figures from the stored score sets (PNG, SVG,
PDF, captioned), GELO whiskers, a readable heatmap (none below 2 x 2), LaTeX that pdflatex compiles, and the results
table `overspec run` ends with."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from overspec.metrics.conventions import ScoreSet
from overspec.report.plots import luminance, text_colour
from overspec.report.tables import Table, latex_escape
from overspec.results import ResultRow, ResultStore
from overspec.score_files import write_score_file

GENERAL = {("clip", "digits"): 0.80, ("clip", "photos"): 0.60, ("fr", "digits"): 0.70, ("fr", "photos"): 0.58}
GENERAL |= {("mad", "digits"): 0.79, ("mad", "photos"): 0.62}
BIOMETRIC = {("clip", "lfw"): 0.70, ("fr", "lfw"): 0.90, ("clip", "mad_bench"): 0.30, ("mad", "mad_bench"): 0.10}
TASKS = {"fr": "fr", "mad": "mad"}


def _row(model, dataset, value, **extra) -> ResultRow:
    identity = {"model_task": TASKS[model], "base": "clip"} if model in TASKS else {}
    return ResultRow("r", model, "ViT-B-16", dataset, metric="headline", value=value, n=500, **identity, **extra)


def _scores(kind: str, seed: int, separation: float) -> ScoreSet:
    rng = np.random.default_rng(seed)
    if kind == "verification":
        positive = np.r_[np.ones(300, bool), np.zeros(700, bool)]
        return ScoreSet.of(kind, rng.normal(size=1000) + separation * positive, positive)
    positive = np.r_[np.ones(200, bool), np.zeros(300, bool)]
    types = np.r_[[""] * 200, ["FaceMorpher"] * 100, ["OpenCV"] * 100, ["MorDIFF"] * 100]
    shift = np.r_[np.zeros(200), np.zeros(100), np.full(100, 0.5), np.full(100, 1.0)]
    return ScoreSet.of(kind, rng.normal(size=500) + separation * positive - shift * ~positive, positive, types)


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory) -> Path:
    """A run's store and exported score sets, written as `overspec run` writes them: CLIP and its FR and MAD
    specialists on two general datasets (zero-shot), a verification and a MAD benchmark."""
    out = tmp_path_factory.mktemp("run")
    store = ResultStore(out / "results.sqlite")
    for (model, dataset), value in GENERAL.items():
        row = _row(model, dataset, value, task="general", protocol="zeroshot", headline_metric="acc1")
        store.add_cell(f"{model}-{dataset}", [row], model=model, dataset=dataset, protocol="zeroshot", details={})
    for i, ((model, dataset), value) in enumerate(BIOMETRIC.items()):
        kind, protocol, metric, higher = (
            ("verification", "face_verification", "accuracy", True)
            if dataset == "lfw"
            else ("mad", "attack_detection", "mean_eer", False)
        )
        task = "fr" if kind == "verification" else "mad"
        cell = f"{model}-{dataset}"
        row = _row(model, dataset, value, task=task, protocol=protocol, headline_metric=metric, higher_is_better=higher)
        store.add_cell(cell, [row], model=model, dataset=dataset, protocol=protocol, details={})
        path = write_score_file(_scores(kind, i, 1.0 + 1.5 * (model != "clip")), out / "scores" / f"{cell}.csv")
        command = ["overspec", "score", kind, str(path), "--convention", "iso"]
        meta = {"cell": cell, "model": model, "dataset": dataset, "protocol": protocol, "kind": kind}
        path.with_suffix(".json").write_text(json.dumps(meta | {"convention": "iso", "command": command}))
    store.close()
    return out


@pytest.fixture(scope="module")
def report(stored_run) -> Path:
    from overspec.report import build_report

    build_report(stored_run, reference="none")
    return stored_run


@pytest.mark.slow
def test_biometric_figures_are_drawn_per_benchmark_in_three_formats_with_captions(report):
    figures = report / "figures"
    for name in ("det_lfw", "roc_lfw", "scores_lfw", "det_mad_bench", "roc_mad_bench", "scores_mad_bench"):
        for suffix in ("png", "svg", "pdf"):
            assert (figures / f"{name}.{suffix}").stat().st_size > 1000, (name, suffix)
    captions = {p.stem: p.read_text() for p in figures.glob("*.txt")}
    assert captions["det_lfw"].startswith(
        "DET curves on lfw (300 genuine and 700 impostor pairs): FAR against FRR on normal-deviate axes, models "
        "clip (base), fr (fine-tuned from clip); one panel. Markers: the lowest FRR at FAR at or below 0.01%, 0.1%"
    )
    # the MAD benchmark: pooled and one panel per attack type; the convention's APCER points
    assert (
        "panels: all attacks, FaceMorpher, MorDIFF, OpenCV (each type against every bona fide)"
        in captions["roc_mad_bench"]
        and "1%, 5%, 10%, 20% APCER operating points" in captions["roc_mad_bench"]
    )
    page = (report / "report.html").read_text()
    assert "<figcaption>DET curves on lfw" in page and "<figcaption>gelo" not in page
    assert "_DET curves on mad_bench" in (report / "report.md").read_text()


def test_det_figure_draws_the_curves_it_computes(stored_run, tmp_path):
    """The lines in the DET figure are the probit of scikit-learn's det_curve of each stored score set."""
    import matplotlib.pyplot as plt
    from scipy.stats import norm
    from sklearn.metrics import det_curve

    from overspec.report import biometric

    entries = biometric.read_score_sets(stored_run, {"fr": "clip"})["lfw"]
    drawn = []
    original = biometric.save
    biometric.save = lambda figure, *a, **k: drawn.append(figure) or original(figure, *a, **k)
    try:
        biometric.det_figure("lfw", entries, tmp_path)
    finally:
        biometric.save = original
    lines = [
        line
        for line in drawn[0].axes[0].get_lines()
        if line.get_label() in ("clip (base)", "fr (fine-tuned from clip)")
    ]
    floor = biometric._floor(entries)
    for line, entry in zip(lines, entries, strict=True):
        fpr, fnr, _ = det_curve(entry.data.positive.astype(int), entry.data.scores)
        expected = norm.ppf(np.clip(fpr, floor, 1 - floor)), norm.ppf(np.clip(fnr, floor, 1 - floor))
        np.testing.assert_allclose(line.get_xdata(), expected[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(line.get_ydata(), expected[1], rtol=0, atol=1e-12)
    plt.close("all")


@pytest.mark.slow
def test_a_rebuilt_report_reuses_its_biometric_figures_until_a_score_file_changes(report, tmp_path):
    from overspec.report import build_report

    run = shutil.copytree(report, tmp_path / "run")
    drawn = {p.name: p.stat().st_mtime_ns for p in (run / "figures").glob("*_lfw.png")}
    build_report(run, reference="none")
    assert {p.name: p.stat().st_mtime_ns for p in (run / "figures").glob("*_lfw.png")} == drawn
    assert "<figcaption>DET curves on lfw" in (run / "report.html").read_text()
    score_file = next((run / "scores").glob("fr-lfw.csv"))
    score_file.write_text(score_file.read_text())  # rewritten, as a rerun of the cell writes it
    build_report(run, reference="none")
    assert all(p.stat().st_mtime_ns > drawn[p.name] for p in (run / "figures").glob("*_lfw.png"))


@pytest.mark.slow
def test_general_figures_carry_their_intervals_and_say_so(report):
    summary = json.loads((report / "summary.json").read_text())
    caption = (report / "figures" / "gelo.txt").read_text()
    assert caption.startswith("GELO per model and protocol (zeroshot)") and "whiskers: 95% interval" in caption
    assert (report / "figures" / "change_zeroshot.png").exists()  # 2 models x 2 datasets
    assert "red: loss, blue: gain" in (report / "figures" / "change_zeroshot.txt").read_text()
    assert set(summary["gelo_ci"]["zeroshot"]) == {"fr", "mad"}
    assert "whiskers: the GELO's 95% bootstrap interval" in (report / "figures" / "tradeoff.txt").read_text()


def test_a_heatmap_only_from_two_by_two():
    from overspec.report.plots import heatmap_fits

    assert heatmap_fits({"a": {"x": 0.1, "y": 0.2}, "b": {"x": 0.0}})
    assert not heatmap_fits({"a": {"x": 0.1, "y": 0.2}}) and not heatmap_fits({"a": {"x": 0.1}, "b": {"x": 0.2}})


@pytest.mark.slow
def test_a_one_dataset_run_gets_the_changes_table_and_no_heatmap(stored_run, tmp_path):
    import sqlite3

    from overspec.report import build_report

    run = shutil.copytree(stored_run, tmp_path / "run", ignore=shutil.ignore_patterns("figures", "scores"))
    with sqlite3.connect(run / "results.sqlite") as db:
        db.execute("DELETE FROM results WHERE dataset = 'photos'")
    build_report(run, reference="none")
    assert not (run / "figures" / "change_zeroshot.png").exists()
    assert "Change against the base, zeroshot" in (run / "report.md").read_text()


def test_heatmap_text_contrasts_with_its_cell():
    # WCAG: white 1, black 0, mid grey #777 0.184; black text on white, white on dark red and dark blue
    assert luminance((1, 1, 1)) == pytest.approx(1) and luminance((0, 0, 0)) == 0
    assert luminance((0x77 / 255,) * 3) == pytest.approx(0.1845, abs=1e-4)
    import matplotlib

    cmap = matplotlib.colormaps["RdBu"]
    assert text_colour(cmap(0.0)) == "white" and text_colour(cmap(1.0)) == "white" and text_colour(cmap(0.5)) == "black"
    for x in np.linspace(0, 1, 21):  # every colour of the map: the chosen text reaches WCAG AA's large-text ratio
        light = luminance(cmap(x))
        ratio = (light + 0.05) / 0.05 if text_colour(cmap(x)) == "black" else 1.05 / (light + 0.05)
        assert ratio >= 3, x


SPECIALS = "# $ % & ~ _ ^ \\ { } ↑ ↓ ≥ ⚠ é ü 中"


def test_latex_escapes_every_special_character_and_unicode():
    text = latex_escape(SPECIALS)
    assert text.isascii()
    unescaped = re.sub(r"\\[a-zA-Z]+|\\[#$%&_{}'\"]|\$\\[a-z]+\$|\$\^\\dagger\$|\{|\}", "", text)
    assert not set(unescaped) & set("#$%&~_^\\{}"), unescaped
    assert "$\\uparrow$" in text and "$\\downarrow$" in text and "$\\geq$" in text


@pytest.mark.slow
def test_every_table_has_a_caption_and_a_label(report):
    for tex in (report / "tables").glob("*.tex"):
        source = tex.read_text()
        assert "\\caption{" in source and f"\\label{{tab:{tex.stem.replace('_', '-')}}}" in source, tex.name
        assert source.isascii(), tex.name


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (apt-get install texlive-latex-base)")
def test_the_reports_latex_tables_compile_with_pdflatex(report, tmp_path):
    tables = sorted((report / "tables").glob("*.tex"))
    special = Table(f"Every special character: {SPECIALS}", ["a", f"b {SPECIALS}"], [["1", SPECIALS]], [SPECIALS])
    (tmp_path / "special.tex").write_text(special.latex("special"))
    inputs = "\n".join(f"\\input{{{p.as_posix()}}}" for p in [*tables, tmp_path / "special.tex"])
    document = (
        f"\\documentclass{{article}}\n\\usepackage{{booktabs}}\n\\begin{{document}}\n{inputs}\n\\end{{document}}\n"
    )
    (tmp_path / "doc.tex").write_text(document)
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000 and len(tables) >= 3
    assert "Missing character" not in (tmp_path / "doc.log").read_text()


@pytest.mark.slow
def test_the_results_table_shows_each_models_headline_and_gelo(report):
    from rich.console import Console

    from overspec.report.console import results_table

    console = Console(width=120, record=True)
    console.print(results_table(report))
    text = console.export_text()
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.count("│") > 3]
    header = [[c.strip() for c in line.split("┃")[1:-1]] for line in text.splitlines()[2:4]]
    assert header == [
        ["", "", "", "clip", "fr", "mad"],
        ["dataset", "protocol", "metric", "(general)", "(fr)", "(mad)"],
    ]
    assert rows[0] == ["digits", "zeroshot", "acc1 ↑", "80.00", "70.00", "79.00"]
    assert rows[3] == ["mad_bench", "attack_detection", "mean_eer ↓", "30.00", "", "10.00"]
    summary = json.loads((report / "summary.json").read_text())
    (low, high), gelo = summary["gelo_ci"]["zeroshot"]["fr"], summary["gelo"]["zeroshot"]["fr"]
    assert rows[4][:4] == ["GELO", "zeroshot", "95% interval", ""] and rows[4][4] == f"{gelo:.3f}"
    assert rows[5][4] == f"[{low:.3f}, {high:.3f}]"  # the report's interval


def test_a_sweeps_knee_only_where_the_interval_excludes_the_straight_line():
    from overspec.sweep import SweepPoint, knee

    def curve(half_width):
        # GELO along the line from (0.5, 1.0) to (0.9, 0.9) would be 0.95 at 0.7; the middle point bends to 0.99
        values = [(0.5, 1.0), (0.7, 0.99), (0.9, 0.9)]
        return [
            SweepPoint(s, "", g, b, gelo_low=g - half_width, gelo_high=g + half_width)
            for s, (b, g) in zip((0, 0.5, 1), values, strict=True)
        ]

    tight, wide = curve(0.01), curve(0.05)
    knee(tight)
    knee(wide)
    assert [p.knee for p in tight] == [False, True, False]  # 0.95 outside [0.98, 1.00]
    assert json.loads(json.dumps([asdict(p) for p in tight]))[1]["knee"] is True  # as sweep.json stores it
    assert not any(p.knee for p in wide)  # 0.95 inside [0.94, 1.04]: the bend is within the noise


def test_the_sweeps_curve_has_its_band_and_says_why_there_is_no_knee(tmp_path):
    from overspec.sweep import SweepPoint, knee
    from overspec.sweep.curve import _plot

    points = [
        SweepPoint(s, "", g, b, gelo_low=g - 0.01, gelo_high=g + 0.012)
        for s, b, g in ((0, 0.6, 1.0), (0.5, 0.7, 1.004), (1, 0.8, 1.002))
    ]
    knee(points)
    _plot(points, tmp_path, "fr")
    assert all((tmp_path / f"sweep.{suffix}").exists() for suffix in ("png", "svg", "pdf"))
    caption = (tmp_path / "sweep.txt").read_text()
    assert "band: the GELO's 95% bootstrap interval" in caption and caption.rstrip().endswith(
        "no knee: no point bends away from the straight line between the ends beyond its interval."
    )


def test_a_curve_of_many_points_is_thinned_to_how_it_looks():
    from overspec.report.biometric import thin
    from overspec.report.curves import det, probit

    rng = np.random.default_rng(1)
    positive = rng.random(200_000) < 0.3
    curve = det(rng.normal(size=200_000) + positive, positive)
    x, y = probit(curve.far, floor=1e-5), probit(curve.frr, floor=1e-5)
    keep = thin(x, y)
    assert len(x) > 100_000 and len(keep) < 8_000 and keep[0] == 0 and keep[-1] == len(x) - 1
    # every dropped point is in the grid cell of the last point kept before it: the drawn shape is the same
    last = keep[np.searchsorted(keep, np.arange(len(x)), side="right") - 1]
    assert np.all(np.abs(x - x[last]) <= np.ptp(x) / 2000) and np.all(np.abs(y - y[last]) <= np.ptp(y) / 2000)
    assert np.array_equal(thin(x[:500], y[:500]), np.arange(500))

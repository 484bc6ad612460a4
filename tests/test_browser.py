"""The report and the browse page in a real browser: Playwright driving Chromium (Debian's chromium package: the
browser Playwright downloads itself is unreachable offline). Every figure loads, the console stays clean, nothing is
fetched from the network, the table filters and sorts, and the plotted GELOs are the runs' own. Screenshots go to
``$OVERSPEC_ARTIFACTS/screenshots`` (default ``artifacts/screenshots``), kept by CI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from helpers.runs import frontier_run, three_runs
from overspec.report.browse import build_browse

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("OVERSPEC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> list[Path]:
    """Three small real runs (an FR and a MAD specialist of one tiny CLIP, an FR specialist of a wider one)."""
    return three_runs(tmp_path_factory.mktemp("three_runs"))


@pytest.fixture(scope="session")
def frontier(runs) -> Path:
    """A real `overspec frontier` run over the FR run's base and specialist (helpers/runs.py)."""
    return frontier_run(runs[0].parents[1])


@pytest.fixture(scope="session")
def shots() -> Path:
    folder = Path(os.environ.get("OVERSPEC_ARTIFACTS") or REPO / "artifacts") / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A fresh Chromium profile per module; each test opens its own page."""
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (apt-get install chromium, or set OVERSPEC_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=ARGS,
            viewport={"width": 1400, "height": 900},
        )
        yield context
        context.close()


class Watched:
    """A page with its console errors, uncaught exceptions and every request it made."""

    def __init__(self, context, url: str):
        self.page = context.new_page()
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url, wait_until="load")

    def assert_clean(self):
        assert self.errors == []
        assert [u for u in self.requests if not u.startswith(("file:", "data:"))] == []  # offline: nothing fetched


def test_the_report_shows_every_figure(browser, runs, shots):
    watched = Watched(browser, (runs[0] / "report.html").as_uri())
    page = watched.page
    sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.alt])")
    assert len(sizes) >= 4 and all(complete and width > 0 for complete, width, _ in sizes), sizes
    assert page.locator("table").count() >= 3
    watched.assert_clean()
    page.screenshot(path=str(shots / "report.png"), full_page=True)
    page.close()


def test_the_browse_page_over_three_runs(browser, runs, shots, tmp_path):
    out = build_browse(runs, tmp_path / "compare.html")
    watched = Watched(browser, out.as_uri())
    page = watched.page
    plots = page.locator(".js-plotly-plot")
    assert plots.count() == 4  # trade-off, GELO per model, the change map of each general protocol
    page.wait_for_function("[...document.querySelectorAll('.js-plotly-plot')].every(d => d.querySelector('.main-svg'))")

    # the plotted GELOs are those each run's own report wrote in summary.json (build_report's code path)
    expected = sorted(
        (protocol, round(gelo, 12))
        for run in runs
        for protocol, by_model in json.loads((run / "summary.json").read_text())["gelo"].items()
        for gelo in by_model.values()
    )
    traces = page.evaluate(
        "() => document.getElementById('tradeoff').data"
        ".filter(t => !t.name.endsWith('(published)')).map(t => [t.xaxis, t.y])"
    )
    axis_protocol = {"x": "zeroshot", "x2": "linear_probe"}
    plotted = sorted((axis_protocol[axis or "x"], round(y, 12)) for axis, ys in traces for y in ys)
    assert plotted == expected and len(plotted) == 6
    page.locator("#tradeoff").screenshot(path=str(shots / "browse_tradeoff.png"))

    # every stored row is a table row; filtering by dataset keeps exactly the lfw rows
    rows = page.locator("#results tbody tr")
    total = sum(len((run / "results.csv").read_text().strip().splitlines()) - 1 for run in runs)
    assert rows.count() == total and page.locator("#row-count").inner_text() == f"{total} of {total} rows"
    page.fill("#results input[aria-label='filter dataset']", "lfw")
    visible = page.eval_on_selector_all(
        "#results tbody tr", "rows => rows.filter(r => r.style.display !== 'none').map(r => r.cells[7].textContent)"
    )
    lfw = sum(
        1 for run in runs for line in (run / "results.csv").read_text().splitlines()[1:] if line.split(",")[3] == "lfw"
    )
    assert 0 < len(visible) == lfw < total and set(visible) == {"lfw"}
    assert page.locator("#row-count").inner_text() == f"{lfw} of {total} rows"
    page.locator("#results").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "browse_filtered.png"), full_page=True)

    # sorting by value: ascending, then descending, by the stored numbers
    header = page.locator("#results thead tr:first-child th", has_text="value").first
    values = "rows => rows.filter(r => r.style.display !== 'none').map(r => parseFloat(r.cells[9].dataset.v))"
    header.click()
    ascending = page.eval_on_selector_all("#results tbody tr", values)
    header.click()
    descending = page.eval_on_selector_all("#results tbody tr", values)
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True) and len(ascending) == lfw
    page.fill("#results input[aria-label='filter dataset']", "")
    assert page.locator("#row-count").inner_text() == f"{total} of {total} rows"
    watched.assert_clean()
    page.screenshot(path=str(shots / "browse.png"), full_page=True)

    # each run's report is one click away (a relative link)
    with page.expect_navigation():
        page.locator("a", has_text="report").first.click()
    assert page.url == (runs[0] / "report.html").resolve().as_uri() and page.locator("h1").inner_text()
    page.close()


def test_the_frontier_view_draws_frontier_json(browser, runs, frontier, shots, tmp_path):
    written = json.loads((frontier / "frontier.json").read_text())
    fr = written["tasks"]["fr"]
    out = build_browse([frontier, runs[1]], tmp_path / "frontier.html", reference="none")
    watched = Watched(browser, out.as_uri())
    page = watched.page
    page.wait_for_function("[...document.querySelectorAll('.js-plotly-plot')].every(d => d.querySelector('.main-svg'))")
    options = page.eval_on_selector_all("#frontier-choice option", "os => os.map(o => o.textContent)")
    assert options == ["fr-frontier · FR", "fr-frontier · MAD (no frontier)"]
    assert "No frontier.json" in page.locator("#frontier-view").inner_text()  # the MAD run has none

    # choosing a run/task shows its pane only: MAD says why it has no frontier, then back to FR
    page.select_option("#frontier-choice", label="fr-frontier · MAD (no frontier)")
    assert page.locator("#frontier-pane-1").is_visible() and not page.locator("#frontier-pane-0").is_visible()
    assert written["tasks"]["mad"]["error"] in page.locator("#frontier-pane-1").inner_text()
    page.select_option("#frontier-choice", label="fr-frontier · FR")
    assert page.locator("#frontier-pane-0").is_visible() and not page.locator("#frontier-pane-1").is_visible()

    figure = page.evaluate(
        "() => { const g = document.getElementById('frontier-0'); return {width: g._fullLayout.width, "
        "shapes: g.layout.shapes, traces: g.data.map(t => ({meta: t.meta, x: Array.from(t.x), y: Array.from(t.y), "
        "models: (t.customdata || []).map(c => c[0])}))}; }"
    )
    traces = figure["traces"]
    stars = [p for p in fr["points"] if p["specialist"]]
    # the Pareto frontier, a band and a curve per method, the other models as stars, the base
    assert [t["meta"]["role"] for t in traces] == ["pareto", *["band", "curve"] * len(fr["curves"]), "others", "base"]
    pareto = sorted((p["biometric"], p["gelo"]) for p in fr["points"] if p["pareto"])
    assert list(zip(traces[0]["x"], traces[0]["y"], strict=True)) == pareto and pareto
    points = {p["model"]: p for p in fr["points"]}
    curves = [t for t in traces if t["meta"]["role"] == "curve"]
    assert [t["meta"]["method"] for t in curves] == list(fr["curves"])  # frontier.json's order
    for trace, curve in zip(curves, fr["curves"].values(), strict=True):
        assert trace["models"] == curve["models"] and curve["models"][0] == written["base"]  # from the base
        assert trace["x"] == [points[m]["biometric"] for m in curve["models"]]
        assert trace["y"] == [points[m]["gelo"] for m in curve["models"]]
    assert traces[-2]["models"] == [p["model"] for p in stars] == ["fr-specialist"]
    assert traces[-2]["y"] == [p["gelo"] for p in stars] and traces[-1]["models"] == [written["base"]]
    dotted = [s for s in figure["shapes"] if s["line"].get("dash") == "dot"]
    assert [(s["x0"], s["x1"]) for s in dotted] == [(fr["matched"]["biometric"],) * 2]
    assert figure["width"] > 800  # drawn at the pane's width, not hidden's

    # hovering a point names its model and strength with both values and their intervals
    page.evaluate("() => Plotly.Fx.hover('frontier-0', [{curveNumber: 2, pointNumber: 2}])")
    hover = page.locator("#frontier-0 .hoverlayer").text_content()  # SVG: no inner_text
    model = fr["curves"][curves[0]["meta"]["method"]]["models"][2]
    low, high = points[model]["gelo_ci"]
    assert model in hover and f"{points[model]['gelo']:.3f} [{low:.3f}, {high:.3f}]" in hover, hover

    # the matched table: each method's GELO at the matched score (or "not reached") and the hypervolumes, exactly
    cells = page.eval_on_selector_all(
        "#frontier-0-table tbody tr",
        "rows => rows.map(r => [r.dataset.method, [...r.querySelectorAll('td.num')].map(c => "
        "[c.dataset.v === undefined ? null : +c.dataset.v, c.dataset.lo === undefined ? null : +c.dataset.lo, "
        "c.dataset.hi === undefined ? null : +c.dataset.hi, c.textContent])])",
    )

    def triple(value, ci):
        return [value, *(ci if ci and None not in ci and value is not None else [None, None])]

    expected = [
        [
            m,
            [
                triple(v["gelo"], v["ci"]),
                triple(v["difference"]["value"], v["difference"]["ci"]),  # to the best method, same draws
                [v["reached_share"], None, None],
                triple(fr["hypervolume"][m]["value"], fr["hypervolume"][m]["ci"]),
            ],
        ]
        for m, v in fr["matched"]["methods"].items()
    ] + [["", [triple(fr["hypervolume"]["all"]["value"], fr["hypervolume"]["all"]["ci"])]]]
    assert [[m, [c[:3] for c in row]] for m, row in cells] == expected
    assert all((c[3] == "not reached") == (c[0] is None) for _, row in cells for c in row)
    watched.assert_clean()
    page.locator("#frontier-view").screenshot(path=str(shots / "browse_frontier.png"))
    page.close()

"""The frontier's intervals on a real frontier run: ``summarise`` timed with the paired bootstrap (every test set
resampled once per draw, the same indices for every model) and with the parametric one it replaced (independent
normals per point), for 1,000 and 2,000 draws, and the intervals each gives.

The run's frontier.json, results.sqlite, scores/ and predictions/ are copied into a temporary directory (the run
itself is only read); the frontier settings and points are rebuilt from its frontier.json.

    python bench/frontier_bootstrap.py [RUN_DIR]     # default: /tmp/frontier-qs/run/frontier (the quickstart's)
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from overspec.frontier.config import FrontierSettings
from overspec.frontier.points import PointFile
from overspec.frontier.summary import summarise

# the quickstart frontier's methods (quickstart/frontier.py): a regulariser's strength pulls toward the base
TOWARD_BASE = {"l2-sp": "l2sp_weight", "distillation": "distill_weight"}


def copy_run(run: Path, into: Path) -> Path:
    for name in ("frontier.json", "results.sqlite"):
        shutil.copy2(run / name, into / name)
    for name in ("scores", "predictions"):
        shutil.copytree(run / name, into / name)
    return into


def bases(out: Path) -> dict[str, str | None]:
    """model -> its base, from the stored rows (an older frontier.json does not record it)."""
    from overspec.results import ResultStore

    store = ResultStore(out / "results.sqlite", create=False)
    found = {r.model: r.base for r in store.rows(current=True)}
    store.close()
    return found


def rebuild(summary: dict, n_boot: int, base_of: dict | None = None) -> tuple[SimpleNamespace, list[PointFile]]:
    """The experiment (its frontier settings, model names and bases) and points a frontier.json was made from."""
    methods, points = [], []
    for task, data in summary["tasks"].items():
        for name, curve in data["curves"].items():
            strength = TOWARD_BASE.get(name, "scale")
            source = {"finetune": "unused.yaml"} if strength != "scale" else {"model": "unused.yaml"}
            grid = [s for s in curve["strengths"] if s is not None]
            methods.append({"name": name, "task": task, "strength": strength, "grid": grid, **source})
            points += [
                PointFile(name, task, s, m, Path("unused")) for s, m in zip(grid, curve["models"][1:], strict=True)
            ]
    settings = FrontierSettings(
        base=summary["base"], methods=methods, n_boot=n_boot, gelo_protocols=summary["gelo_protocols"]
    )
    base_of = base_of or {}
    models = [SimpleNamespace(name=m, base=d.get("base") or base_of.get(m)) for m, d in summary["models"].items()]
    return SimpleNamespace(frontier=settings, model_entries=lambda: models), points


def main(run: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = copy_run(run, Path(tmp))
        stored = json.loads((out / "frontier.json").read_text())
        for n_boot in (1000, 2000):
            experiment, points = rebuild(stored, n_boot, bases(out))
            for pair in (False, True):
                start = time.perf_counter()
                summary = summarise(out, experiment, points, pair=pair)
                seconds = time.perf_counter() - start
                label = "paired" if pair else "parametric"
                print(f"n_boot {n_boot} {label:>10}: summarise {seconds:.2f} s")
                if n_boot == 2000:
                    report(summary, label)
        print("parametric fallback:", json.dumps(summary["paired"]["parametric_fallback"]))
        experiment, points = rebuild(stored, 2000, bases(out))
        marginals(out, experiment, points, summary)
        # a matched score every gaining method reaches in most draws (the default is distillation's own score)
        experiment.frontier.match = {"fr": 0.82}
        for pair in (False, True):
            report(summarise(out, experiment, points, pair=pair), ("paired" if pair else "parametric") + " @0.82")


def marginals(out: Path, experiment, points, summary: dict) -> None:
    """Each point's own intervals: the stored rows' (Wilson over pairs; GELO's bootstrap) and the paired draws'."""
    from overspec.analysis.frontier import interval
    from overspec.frontier.summary import gelo_results, paired_of
    from overspec.results import ResultStore

    store = ResultStore(out / "results.sqlite", create=False)
    rows, details = store.rows(current=True), store.details()
    store.close()
    settings = experiment.frontier
    names = [m.name for m in experiment.model_entries()] + [p.name for p in points]
    results = gelo_results(out, rows, settings.gelo_protocols)
    found = paired_of(out, rows, details, settings, ["fr"], names, results)
    for p in summary["tasks"]["fr"]["points"]:
        m = p["model"]
        x, y = interval(found.x[(m, "fr")]), interval(found.y[m]) if m in found.y else (1.0, 1.0)
        print(
            f"    {m:>16}: FR rows {_ci(p['biometric_ci_rows'])} paired {_ci(x)}; GELO rows "
            f"{_ci(p['gelo_ci_rows'])} paired {_ci(y)}"
        )


def _ci(ci) -> str:
    return "[" + ", ".join("—" if v is None else f"{v:.4f}" for v in ci) + "]" if ci else "—"


def report(summary: dict, label: str) -> None:
    for task, data in summary["tasks"].items():
        hv = data["hypervolume"]
        print(
            f"  {label} {task}: hypervolume all {hv['all']['value']:.4f} {_ci(hv['all']['ci'])} (width "
            f"{hv['all']['ci'][1] - hv['all']['ci'][0]:.4f})"
        )
        matched = data["matched"]
        biometric = "—" if matched["biometric"] is None else f"{matched['biometric']:.4f}"
        print(f"    matched at {biometric} (beats the base in: {matched.get('beats_base_share')})")
        for method, m in matched["methods"].items():
            diff = m.get("difference")
            extra = f"; − {diff['to']}: {_ci(diff['ci'])}" if diff else ""
            gelo = "—" if m["gelo"] is None else f"{m['gelo']:.4f}"
            print(f"    matched GELO {method}: {gelo} {_ci(m['ci'])}{extra}")
        shares = {p["model"]: p.get("pareto_share") for p in data["points"]}
        print(f"    on the front in: {shares}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/frontier-qs/run/frontier"))

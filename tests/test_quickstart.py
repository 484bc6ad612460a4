"""The quickstart at reduced size: real weights, real images, the full report."""

from __future__ import annotations

import csv

import pytest

from overspec.quickstart.run import quickstart


@pytest.mark.slow
def test_quickstart_small(tmp_path):
    report = quickstart(tmp_path / "qs", scale=0.15, sweep=False, log=lambda line: None)
    out = tmp_path / "qs"
    assert report == out / "report.html"
    for name in ("results.csv", "report.md", "report.html", "figures/gelo.png", "figures/tradeoff.png", "NOTES.md"):
        assert (out / name).exists(), name
    with open(out / "results.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == "headline"]
    models = {r["model"] for r in rows}
    assert models == {"effnet", "effnet-fr", "effnet-mad", "effnet-pad", "sface"}
    assert {r["protocol"] for r in rows} == {"zeroshot", "linear_probe", "face_verification", "attack_detection"}
    assert not [r for r in rows if r["model"] == "sface" and r["task"] == "general"]
    text = (out / "report.md").read_text()
    assert "Which data is synthesised" in text and "morphs synthesised by blending" in text

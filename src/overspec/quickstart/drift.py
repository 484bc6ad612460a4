"""The quickstart's drift analysis: its three specialists against EfficientNet-Lite0, layer by layer, on held-out
face images (the MAD test split's bona fide views of faces no specialist trained on) and on every general dataset,
each on a seeded subset of at most ``N`` images (what keeps the added time small)."""

from __future__ import annotations

from pathlib import Path

N = 200


def drift_settings(data: dict[str, Path], datasets: list[str]) -> dict:
    faces = {"name": "faces", "path": str(Path(data["mad"]).parent / "mad" / "test" / "bonafide"), "images": "face"}
    return {"drift": {"datasets": [faces, *datasets], "n": N}}

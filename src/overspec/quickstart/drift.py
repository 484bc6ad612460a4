"""The quickstart's drift analysis: its three specialists against EfficientNet-Lite0, layer by layer, on held-out
face images (the MAD test split's bona fide views of faces no specialist trained on) and on the test split of every
general dataset. Drift runs before the cells, and its one pass per model fills the final-feature cache the cells
read for those test splits, so what it adds is the hooks, the comparisons and the 50 face images."""

from __future__ import annotations

from pathlib import Path


def drift_settings(data: dict[str, Path], datasets: list[str]) -> dict:
    faces = {"name": "faces", "path": str(Path(data["mad"]).parent / "mad" / "test" / "bonafide"), "images": "face"}
    return {"drift": {"datasets": [faces, *datasets]}}

"""Layer-wise representation drift of a fine-tuned model from its base on one image set.

For every layer (``features/layers.py``) of both models, on the same images: debiased linear CKA with its
permutation null and calibrated score, and mutual k-NN overlap with its chance level
(``metrics/similarity.py``). Features come from ``features/layer_extract.py``: one forward pass per model and
image set for all layers, cached; the comparison reads one layer of each model at a time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from overspec.errors import ConfigError, DataError, ModelError

if TYPE_CHECKING:
    from overspec.data.images import ImageSource
    from overspec.features.layer_extract import LayerFeatures

SCHEMA_VERSION = 1
DEFAULT_K = 10
DEFAULT_PERMUTATIONS = 16


@dataclass(frozen=True)
class LayerDrift:
    """One layer's similarity of base and fine-tuned features (1 = the same representation)."""

    layer: str
    token: str
    cka: float
    null_mean: float
    null_std: float
    calibrated: float  # (cka - null_mean) / (1 - null_mean)
    mutual_knn: float
    knn_chance: float  # k / (n - 1): unrelated features


@dataclass
class DriftResult:
    model: str
    base: str
    dataset: str
    n: int
    k: int
    permutations: int
    layers: list[LayerDrift]
    identity: dict = field(default_factory=dict)  # fingerprints of model, base and images

    def document(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "overspec.drift",
            "model": self.model,
            "base": self.base,
            "dataset": self.dataset,
            "n": self.n,
            "k": self.k,
            "permutations": self.permutations,
            "calibrated": "(cka - null_mean) / (1 - null_mean)",
            "identity": self.identity,
            "layers": [asdict(x) for x in self.layers],
        }

    @classmethod
    def from_document(cls, data: dict) -> DriftResult:
        fields = ("model", "base", "dataset", "n", "k", "permutations", "identity")
        return cls(**{f: data[f] for f in fields}, layers=[LayerDrift(**x) for x in data["layers"]])


def select_layers(names: list[str], wanted: str | list | None) -> list[int]:
    """Positions of the layers ``wanted`` names: ``all`` (or None), or a list (comma-separated text) of layer
    names (``block 3``, ``embedding``) or positions (0-based, negative from the end: -1 is the embedding)."""
    if wanted is None or wanted == "all":
        return list(range(len(names)))
    items = [w.strip() for w in wanted.split(",")] if isinstance(wanted, str) else [str(w) for w in wanted]
    chosen = []
    for item in items:
        if item in names:
            chosen.append(names.index(item))
            continue
        try:
            position = int(item)
        except ValueError:
            position = None
        if position is None or not -len(names) <= position < len(names):
            raise ConfigError(
                f"layers: {item!r} is neither a layer of this model ({', '.join(names)}) nor a position "
                f"-{len(names)}..{len(names) - 1}; give `all` or a list of these"
            )
        chosen.append(position % len(names))
    return sorted(set(chosen))


def compare_layers(
    base: LayerFeatures,
    tuned: LayerFeatures,
    *,
    layers: str | list | None = "all",
    k: int = DEFAULT_K,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> list[LayerDrift]:
    """Drift per layer of ``tuned`` from ``base`` (same images, same layer list), one layer in memory at a time."""
    from overspec.metrics.similarity import cka_with_null, knn_chance, mutual_knn

    names = [x.name for x in base.layers]
    if names != [x.name for x in tuned.layers] or [x.token for x in base.layers] != [x.token for x in tuned.layers]:
        raise ModelError(
            f"base and fine-tuned model have different layers ({len(base.layers)}: {names[0]} .. {names[-1]} vs "
            f"{len(tuned.layers)}: {tuned.layers[0].name} .. {tuned.layers[-1].name}); drift compares models of "
            "one architecture"
        )
    if base.n != tuned.n:
        raise DataError(f"base and fine-tuned features cover {base.n} and {tuned.n} images; give both the same")
    out = []
    for index in select_layers(names, layers):
        x, y = base.load(index), tuned.load(index)
        cka = cka_with_null(x, y, permutations=permutations, seed=seed)
        out.append(
            LayerDrift(
                layer=names[index],
                token=base.layers[index].token,
                cka=cka.cka,
                null_mean=cka.null_mean,
                null_std=cka.null_std,
                calibrated=cka.calibrated,
                mutual_knn=mutual_knn(x, y, k=k),
                knn_chance=knn_chance(base.n, k),
            )
        )
    return out


def drift_images(data: str | Path, *, split: str = "test", root: str | Path | None = None, n: int | None = None,
                 seed: int = 0) -> tuple[str, ImageSource]:  # fmt: skip
    """``(name, images)``: the ``split`` of a catalog dataset or dataset folder (as ``eval`` takes), or every image
    under a folder with no dataset layout (e.g. face crops); ``n``: a seeded random subset of that many images."""
    from overspec.data.catalog import catalog
    from overspec.data.images import ImageFiles, list_images
    from overspec.data.loading import FOLDER_LAYOUTS, load_dataset
    from overspec.data.sources import SOURCES

    text = str(data)
    folder = Path(root) if root is not None else Path(text)
    plain = (
        text not in catalog()
        and folder.is_dir()
        and not any(SOURCES.get(layout).detect(folder) for layout in FOLDER_LAYOUTS)
    )
    if plain:
        name, images = folder.name, ImageFiles(list_images(folder), root=folder)
    else:
        dataset = load_dataset(text, root=root)
        if split not in dataset.splits:
            raise DataError(f"{dataset.name} has no split {split!r} (it has {', '.join(sorted(dataset.splits))})")
        name, images = dataset.name, dataset.splits[split].images
    if n is not None and n < len(images):
        if n < 4:
            raise ConfigError(f"n: drift needs at least 4 images (debiased CKA), got {n}")
        chosen = np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
        images = images.subset(chosen.tolist())
    return name, images


def drift(
    base,
    model,
    data: str | Path,
    *,
    layers: str | list | None = "all",
    n: int | None = None,
    split: str = "test",
    root: str | Path | None = None,
    k: int = DEFAULT_K,
    permutations: int = DEFAULT_PERMUTATIONS,
    device: str | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> DriftResult:
    """Layer-wise drift of ``model`` from ``base`` (model references, spec files or loaded encoders) on ``data``."""
    from overspec.features.layer_extract import extract_layers
    from overspec.models import load_model

    name, images = drift_images(data, split=split, root=root, n=n)
    encoders = []
    for ref in (base, model):
        encoder = ref if hasattr(ref, "encode_image") else load_model(ref, device=device)
        encoders.append(encoder)
    features = [
        extract_layers(e, images, batch_size=batch_size, num_workers=num_workers, progress=progress) for e in encoders
    ]
    return DriftResult(
        model=encoders[1].name,
        base=encoders[0].name,
        dataset=name,
        n=len(images),
        k=k,
        permutations=permutations,
        layers=compare_layers(*features, layers=layers, k=k, permutations=permutations),
        identity={
            "model": encoders[1].fingerprint,
            "base": encoders[0].fingerprint,
            "images": images.fingerprint,
        },
    )

"""Every layer's features in one forward pass (forward hooks), cached under content keys like final features.

One cache entry per (model, data, preprocessing, compute, layer list) under ``$OVERSPEC_CACHE/layers``: a folder
with ``meta.json`` (the layers and their tokens) and one sub-folder per layer holding that layer's chunks, then
its ``features.npy``, written and verified as ``features/cache.py`` writes final features. Rows are flushed every
``chunk_rows`` images, so extraction holds at most a chunk of every layer in memory, and the analysis reads one
layer at a time (``LayerFeatures.load``): never all layers x all images at once. An interrupted extraction resumes
after the last chunk every layer has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from overspec._hashing import digest
from overspec._paths import cache_dir, cache_writable
from overspec._progress import progress_bar
from overspec.compute import compute_for
from overspec.errors import DataError
from overspec.features.cache import CacheEntry, FeatureCache, quarantine, verified_load
from overspec.features.extract import _check_finite, _worker_message, default_batch_size, default_workers
from overspec.features.layers import Layer, locate_layers

if TYPE_CHECKING:
    from overspec.data.images import ImageSource
    from overspec.models.encoder import Encoder


@dataclass
class LayerFeatures:
    """The layers of one model on one image set; ``load(i)`` reads layer i's ``(n, D)`` float32 features."""

    layers: list[Layer]
    n: int
    folder: Path | None = None  # the cache entry (None: held in memory)
    arrays: list[np.ndarray] = field(default_factory=list)

    def load(self, index: int) -> np.ndarray:
        if self.folder is None:
            return self.arrays[index]
        found = verified_load(_layer_folder(self.folder, index) / "features.npy", rows=self.n)
        if found is None:
            raise DataError(f"layer features {self.folder} lost layer {index}; run again to recompute it")
        return found


def _layer_folder(folder: Path, index: int) -> Path:
    return folder / f"layer_{index:03d}"


def layer_cache() -> FeatureCache:
    return FeatureCache(cache_dir() / "layers")


def extract_layers(
    encoder: Encoder,
    dataset: ImageSource,
    *,
    cache: FeatureCache | None | bool = True,
    batch_size: int | None = None,
    num_workers: int | None = None,
    chunk_rows: int = 1024,
    progress: bool = True,
    amp: bool = True,
) -> LayerFeatures:
    """Every layer of ``encoder`` (``features/layers.py``) on ``dataset``, one forward pass per batch."""
    layers = locate_layers(encoder)
    n = len(dataset)
    if cache is True:
        cache = layer_cache() if cache_writable() else None
    if not cache:
        arrays = _compute(encoder, layers, dataset, 0, batch_size, num_workers, progress, amp, None, chunk_rows)
        return LayerFeatures(layers, n, arrays=arrays)
    compute = compute_for(encoder.device, amp=amp).key
    key = cache.key(
        model=digest({"model": encoder.fingerprint, "layers": [x.__dict__ for x in layers]}),
        dataset=dataset.fingerprint,
        preprocess=digest(encoder.preprocess.model_dump()),
        compute=compute,
    )
    meta = {
        "model": encoder.name,
        "model_fingerprint": encoder.fingerprint,
        "dataset": dataset.fingerprint,
        "compute": compute,
        "layers": [x.__dict__ for x in layers],
    }
    folder = cache.folder(key)
    if _finished(folder, len(layers), n):
        return LayerFeatures(layers, n, folder)
    with cache.open(key, n_rows=n, meta=meta) as entry:
        if not _finished(folder, len(layers), n):  # another process may have finished while we waited
            entries = [CacheEntry(_layer_folder(folder, i), n) for i in range(len(layers))]
            start = _resume_row(entries)
            _compute(encoder, layers, dataset, start, batch_size, num_workers, progress, amp, entries, chunk_rows)
            for layer_entry in entries:
                layer_entry.finish()
            share_embedding(encoder, dataset, LayerFeatures(layers, n, folder), amp=amp)
        del entry
    return LayerFeatures(layers, n, folder)


def share_embedding(encoder: Encoder, dataset: ImageSource, features: LayerFeatures, *, amp: bool = True) -> None:
    """The pass that gave every layer gave the final features too (``encode_image``, as ``extract_features``
    computes them): they go into the final-feature cache, so a protocol on the same images runs no second pass."""
    from overspec.features.extract import feature_key

    cache = FeatureCache()
    key = feature_key(cache, encoder, dataset, amp=amp)
    if (cache.folder(key) / "features.npy").exists():
        return
    meta = {"model": encoder.name, "model_fingerprint": encoder.fingerprint, "dataset": dataset.fingerprint,
            "compute": compute_for(encoder.device, amp=amp).key, "from": "layer extraction"}  # fmt: skip
    with cache.open(key, n_rows=features.n, meta=meta) as entry:
        if entry.final.exists():
            return
        for _, path in entry.chunks():  # an interrupted extraction's rows: all of them are here
            path.unlink()
            path.with_name(path.name + ".json").unlink(missing_ok=True)
        entry.write_chunk(0, features.load(len(features.layers) - 1))
        entry.finish()


def _finished(folder: Path, count: int, n: int) -> bool:
    """Every layer's final file is there (each is verified when it is loaded)."""
    return all((_layer_folder(folder, i) / "features.npy").exists() for i in range(count))


def _resume_row(entries: list[CacheEntry]) -> int:
    """The row every layer has reached; chunks beyond it (a run stopped between two layers' writes) are dropped."""
    for layer_entry in entries:
        layer_entry.folder.mkdir(parents=True, exist_ok=True)
        if layer_entry.final.exists():
            quarantine(layer_entry.final)  # a layer finished alone: its rows are written again with the others
    row = min(layer_entry.resume_row() for layer_entry in entries)
    for layer_entry in entries:
        for start, path in layer_entry.chunks():
            if start >= row:
                path.unlink()
                path.with_name(path.name + ".json").unlink(missing_ok=True)
    return row


def _compute(encoder, layers, dataset, start, batch_size, num_workers, progress, amp, entries, chunk_rows):
    """Run the forward passes with a hook on every block; rows go to ``entries`` (or are returned)."""
    import torch
    from torch.utils.data import DataLoader, Subset

    batch_size = batch_size or default_batch_size(encoder.device)
    rows_per_chunk = batch_size * max(1, math.ceil(chunk_rows / batch_size))
    n = len(dataset)
    loader = DataLoader(
        Subset(dataset.with_transform(encoder.preprocess.transform()), range(start, n)),
        batch_size=batch_size,
        num_workers=default_workers() if num_workers is None else num_workers,
        pin_memory=encoder.device.type == "cuda",
    )
    captured: dict[int, torch.Tensor] = {}
    modules = dict(encoder.module.named_modules())
    handles = []
    for index, layer in enumerate(layers[:-1]):

        def hook(_module, _inputs, output, index=index, layer=layer):
            # a copy: a class token is a view that would keep the block's whole (N, tokens, width) output alive
            captured[index] = layer.reduce(output).to("cpu", torch.float32, copy=True)

        handles.append(modules[layer.module].register_forward_hook(hook))
    pending: list[list[np.ndarray]] = [[] for _ in layers]
    row, seen = start, start
    use_amp = amp and encoder.device.type == "cuda"
    try:
        with progress_bar(progress, f"layer features of {encoder.name}", n, start) as advance:
            for batch in loader:
                captured.clear()
                with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=use_amp):
                    embedding = encoder.encode_image(batch.to(encoder.device, non_blocking=True)).float().cpu()
                outputs = [captured[i].numpy() for i in range(len(layers) - 1)] + [embedding.numpy()]
                for index, array in enumerate(outputs):
                    _check_finite(array, encoder, dataset, seen)
                    pending[index].append(array)
                seen += len(batch)
                advance(len(batch))
                if entries is not None and seen - row >= rows_per_chunk:
                    row = _flush(entries, row, pending)
    except DataError as exc:
        raise DataError(_worker_message(exc)) from None
    finally:
        for handle in handles:
            handle.remove()
    if entries is not None:
        _flush(entries, row, pending)
        return None
    return [np.concatenate(parts) for parts in pending]


def _flush(entries: list[CacheEntry], row: int, pending: list[list[np.ndarray]]) -> int:
    if not pending[0]:
        return row
    count = 0
    for layer_entry, parts in zip(entries, pending, strict=True):
        rows = np.concatenate(parts)
        layer_entry.write_chunk(row, rows)
        parts.clear()
        count = len(rows)
    return row + count

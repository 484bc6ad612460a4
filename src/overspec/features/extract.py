"""Batched image-feature extraction through the cache."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from overspec._hashing import digest
from overspec._paths import cache_writable
from overspec._progress import progress_bar
from overspec._threads import usable_cores
from overspec.compute import compute_for
from overspec.errors import DataError, ModelError
from overspec.features.cache import FeatureCache, verified_load

if TYPE_CHECKING:
    from overspec.data.images import ImageSource
    from overspec.models.encoder import Encoder


def default_workers() -> int:
    """DataLoader workers decoding next to the forward pass: one core left to torch, at most 8."""
    return min(8, usable_cores() - 1)


# Images per forward pass when none is asked for. On a CPU, a ViT's elementwise work (activations, layer norms,
# residual sums) is memory-bound: at 64 images a layer's temporaries (ViT-B/32: 64 x 50 tokens x 3,072 x 4 bytes =
# 39 MB) leave the caches and glibc's heap (allocations above 32 MB are mapped and unmapped on every use). On 2
# cores 16 images per pass ran 8 % faster than 64 over alternating rounds (single runs: -6 % to +20 %;
# bench/extraction.py --batches 16,64). GPUs want large batches.
DEFAULT_BATCH_SIZE = {"cpu": 16, "cuda": 64}


def default_batch_size(device) -> int:
    return DEFAULT_BATCH_SIZE.get(getattr(device, "type", str(device)), 64)


def extract_features(
    encoder: Encoder,
    dataset: ImageSource,
    *,
    cache: FeatureCache | None | bool = True,
    batch_size: int | None = None,
    num_workers: int | None = None,
    chunk_rows: int = 4096,
    progress: bool = True,
    amp: bool = True,
    description: str | None = None,
) -> np.ndarray:
    """``(len(dataset), D)`` float32 image embeddings of ``encoder``, computed once and cached.

    Batches run under ``torch.inference_mode`` (and fp16 autocast on CUDA when ``amp``). Results are
    written every ``chunk_rows`` rows, so an interrupted call resumes where it stopped. ``cache=False``
    computes without reading or writing the cache. ``batch_size``: images per forward pass, by default sized to
    the encoder's device (``DEFAULT_BATCH_SIZE``); features do not depend on it.
    """
    batch_size = batch_size or default_batch_size(encoder.device)
    if cache is True:
        cache = FeatureCache()
    n = len(dataset)
    if not cache:
        return _compute(encoder, dataset, 0, n, batch_size, num_workers, progress, amp, description, None, chunk_rows)
    key = feature_key(cache, encoder, dataset, amp=amp)
    found = cache.get(key, rows=n)
    if found is not None:
        return found
    if not cache_writable():  # read-only: compute, and leave the cache as it is
        return _compute(encoder, dataset, 0, n, batch_size, num_workers, progress, amp, description, None, chunk_rows)
    meta = {
        "model": encoder.name,
        "model_fingerprint": encoder.fingerprint,
        "dataset": dataset.fingerprint,
        "compute": compute_for(encoder.device, amp=amp).key,
    }
    with cache.open(key, n_rows=n, meta=meta) as entry:
        if entry.final.exists():  # another process finished while we waited for the lock
            found = verified_load(entry.final, rows=n)
            if found is not None:
                return found
        start = entry.resume_row()
        _compute(encoder, dataset, start, n, batch_size, num_workers, progress, amp, description, entry, chunk_rows)
        return entry.finish()


def feature_key(cache: FeatureCache, encoder: Encoder, dataset: ImageSource, *, amp: bool = True) -> str:
    """The cache key of ``encoder``'s final features of ``dataset`` (layer extraction fills the same entry)."""
    return cache.key(
        model=encoder.fingerprint,
        dataset=dataset.fingerprint,
        preprocess=digest(encoder.preprocess.model_dump()),
        compute=compute_for(encoder.device, amp=amp).key,
    )


def _compute(encoder, dataset, start, stop, batch_size, num_workers, progress, amp, description, entry, chunk_rows):
    import torch
    from torch.utils.data import DataLoader, Subset

    rows_per_chunk = batch_size * max(1, math.ceil(chunk_rows / batch_size))
    transformed = dataset.with_transform(encoder.preprocess.transform())
    workers = default_workers() if num_workers is None else num_workers
    loader = DataLoader(
        Subset(transformed, range(start, stop)),
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=encoder.device.type == "cuda",
    )
    use_amp = amp and encoder.device.type == "cuda"
    pending: list[np.ndarray] = []
    row = seen = start
    with progress_bar(progress, description or f"embedding with {encoder.name}", stop, start) as advance:
        try:
            for batch in loader:
                with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=use_amp):
                    batch = batch.to(encoder.device, non_blocking=True)  # from pinned memory on CUDA
                    pending.append(encoder.encode_image(batch).float().cpu().numpy())
                _check_finite(pending[-1], encoder, dataset, seen)
                seen += len(batch)
                advance(len(batch))
                if entry is not None and sum(len(p) for p in pending) >= rows_per_chunk:
                    row = _flush(entry, row, pending)
        except DataError as exc:
            raise DataError(_worker_message(exc)) from None
    if entry is not None:
        _flush(entry, row, pending)
        return None
    return np.concatenate(pending) if pending else np.zeros((0, 0), np.float32)


def _check_finite(features: np.ndarray, encoder, dataset, first: int) -> None:
    """NaN or inf features (NaN weights, a NaN scale, fp16 overflow) are refused before they are cached."""
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        index = first + int(np.argmax(bad))
        paths = getattr(dataset, "paths", None)
        image = f" ({paths[index]})" if paths is not None and index < len(paths) else ""
        raise ModelError(
            f"{encoder.name}: the features of {int(bad.sum())} of {len(bad)} images from image {index}{image} on "
            "are NaN or inf; check the model's weights, scales and preprocessing (none are cached)"
        )


def _flush(entry, row: int, pending: list[np.ndarray]) -> int:
    if not pending:
        return row
    rows = np.concatenate(pending)
    entry.write_chunk(row, rows)
    pending.clear()
    return row + len(rows)


def _worker_message(exc: Exception) -> str:
    """A DataError raised in a loader worker arrives wrapped in the worker's traceback; keep its message."""
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return last.split("DataError: ", 1)[-1]

"""The feature cache: one entry per (model fingerprint, dataset fingerprint, preprocessing, compute setting).

An entry is a folder holding ``meta.json`` and, while extraction runs, chunk files
``rows_<start>.npy`` each written atomically (temporary file, then rename). A finished entry holds
``features.npy`` instead. An interrupted extraction leaves its chunks, and the next one resumes after
the last whole chunk. A file lock per entry makes two processes asking for the same features wait
for one another instead of computing them twice or interleaving writes.

Nothing is served unverified: every array file has a sidecar ``<file>.json`` written before the array is
renamed into place, with its shape, dtype and a BLAKE2b checksum of its bytes (computed once, at write). A
finished entry must also have the expected number of rows. A file that does not match (flipped bytes, another
array, a truncated write) is moved aside as ``*.corrupt``, one line on stderr says so, and the rows are computed
again. BLAKE2b reads at over 1 GB/s on one core, a small fraction of what computing the features costs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from overspec._atomic import atomic_open, atomic_write
from overspec._hashing import digest
from overspec._log import logger
from overspec._paths import cache_dir, cache_writable
from overspec.errors import CacheError

_CHUNK = re.compile(r"^rows_(\d{12})\.npy$")


def checksum(array: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).hexdigest()


def atomic_save(path: Path, array: np.ndarray) -> None:
    """Write ``array`` and its sidecar (shape, dtype, checksum); the array is renamed into place last, so a
    visible array always has its sidecar."""
    record = {"shape": list(array.shape), "dtype": str(array.dtype), "blake2b": checksum(array)}
    atomic_write(_sidecar(path), json.dumps(record))
    contiguous = np.ascontiguousarray(array)
    try:
        with atomic_open(path) as f:
            # header + raw bytes (what np.save writes) through Python's write, which raises on a short write;
            # np.save's C-level tofile loses a full disk's error in stdio buffering and leaves a truncated file
            np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(contiguous))
            f.write(memoryview(contiguous).cast("B"))
    except BaseException:
        _sidecar(path).unlink(missing_ok=True)
        raise


def verified_load(path: Path, *, rows: int | None = None) -> np.ndarray | None:
    """The array at ``path`` if it matches its sidecar (and has ``rows`` rows); else None, after moving the bad
    file aside and saying so in one line."""
    problem = None
    try:
        record = json.loads(_sidecar(path).read_text())
        array = np.load(path, allow_pickle=False)
        if list(array.shape) != record["shape"] or str(array.dtype) != record["dtype"]:
            problem = (
                f"holds a {array.dtype} array of shape {array.shape}, written as {record['dtype']} {record['shape']}"
            )
        elif checksum(array) != record["blake2b"]:
            problem = "does not match the checksum it was written with"
        elif rows is not None and array.shape[0] != rows:
            problem = f"has {array.shape[0]} rows, the dataset {rows}"
    except FileNotFoundError as exc:
        if not path.exists():
            return None
        problem, array = f"has no checksum record ({Path(exc.filename).name} is missing)", None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem, array = f"cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", None
    if problem is None:
        return array
    quarantine(path)
    logger(__name__).warning(f"cache file {path} {problem}; moved aside as .corrupt, computing again")
    return None


def cached_text_array(name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The array ``name`` in the cache's ``text`` folder (zero-shot weights, label embeddings), else ``compute()``'s,
    kept there when the cache is writable."""
    path = cache_dir() / "text" / f"{name}.npy"
    found = verified_load(path) if path.exists() else None
    if found is not None:
        return found
    array = compute()
    if cache_writable():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(path, array)
    return array


def quarantine(path: Path) -> None:
    for file in (path, _sidecar(path)):
        if file.exists():
            os.replace(file, file.with_name(file.name + ".corrupt"))


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


@dataclass
class CacheEntry:
    """One entry, used only while its lock is held."""

    folder: Path
    n_rows: int

    @property
    def final(self) -> Path:
        return self.folder / "features.npy"

    def chunks(self) -> list[tuple[int, Path]]:
        found = sorted((int(m.group(1)), p) for p in self.folder.iterdir() if (m := _CHUNK.match(p.name)))
        return found

    def resume_row(self) -> int:
        """Rows already extracted: the end of the contiguous run of verified chunks from row 0 (a chunk that
        fails its check, and every chunk after it, is dropped)."""
        row = 0
        chunks = self.chunks()
        for i, (start, path) in enumerate(chunks):
            array = verified_load(path) if start == row else None
            if array is None or array.shape[0] == 0:
                for _, later in chunks[i:]:
                    if later.exists():
                        quarantine(later)
                break
            row += array.shape[0]
        return row

    def write_chunk(self, start: int, rows: np.ndarray) -> None:
        atomic_save(self.folder / f"rows_{start:012d}.npy", rows)

    def finish(self) -> np.ndarray:
        parts = [verified_load(path) for _, path in self.chunks()]
        if any(p is None for p in parts):
            raise CacheError(f"cache entry {self.folder}: a chunk changed while extracting; run again")
        features = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
        if features.shape[0] != self.n_rows:
            raise CacheError(f"cache entry {self.folder} has {features.shape[0]} rows, expected {self.n_rows}")
        widths = {p.shape[1:] for p in parts}
        if len(widths) > 1:
            raise CacheError(f"cache entry {self.folder}: chunks of different widths {sorted(widths)}; delete it")
        atomic_save(self.final, features)
        for _, path in self.chunks():
            path.unlink()
            _sidecar(path).unlink(missing_ok=True)
        return features


class FeatureCache:
    """Content-addressed feature store under ``root`` (default ``$OVERSPEC_CACHE/features``)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else cache_dir() / "features"

    def key(self, *, model: str, dataset: str, preprocess: str, compute: str) -> str:
        """``compute``: ``Compute.key`` (``overspec/compute.py``), e.g. ``cuda-fp16-autocast``, ``cpu-fp32``."""
        return digest({"model": model, "dataset": dataset, "preprocess": preprocess, "compute": compute})

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str, *, rows: int | None = None) -> np.ndarray | None:
        """The finished, verified features for ``key`` (with ``rows`` rows), or None."""
        final = self.folder(key) / "features.npy"
        return verified_load(final, rows=rows) if final.exists() else None

    @contextmanager
    def open(self, key: str, *, n_rows: int, meta: dict) -> Iterator[CacheEntry]:
        """Hold ``key``'s lock and yield its entry (chunks of an interrupted run included)."""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / ".lock")):
            meta_file = folder / "meta.json"
            if meta_file.exists():
                stored = json.loads(meta_file.read_text())
                if stored.get("n_rows") != n_rows:
                    raise CacheError(
                        f"cache entry {folder} was started for {stored.get('n_rows')} rows, now {n_rows}; delete it"
                    )
            else:
                atomic_write(meta_file, json.dumps({**meta, "n_rows": n_rows}, indent=1, default=str))
            yield CacheEntry(folder, n_rows)

"""The feature cache: one entry per (model fingerprint, dataset fingerprint, preprocessing).

An entry is a folder holding ``meta.json`` and, while extraction runs, chunk files
``rows_<start>.npy`` each written atomically (temporary file, then rename). A finished entry holds
``features.npy`` instead. An interrupted extraction leaves its chunks, and the next one resumes after
the last whole chunk. A file lock per entry makes two processes asking for the same features wait
for one another instead of computing them twice or interleaving writes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from overspec._hashing import digest
from overspec._paths import cache_dir
from overspec.errors import CacheError

_CHUNK = re.compile(r"^rows_(\d{12})\.npy$")


def atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
        """Rows already extracted: the end of the contiguous run of chunks from row 0."""
        row = 0
        for start, path in self.chunks():
            if start != row:
                break
            row += np.load(path, mmap_mode="r").shape[0]
        return row

    def write_chunk(self, start: int, rows: np.ndarray) -> None:
        atomic_save(self.folder / f"rows_{start:012d}.npy", rows)

    def finish(self) -> np.ndarray:
        parts = [np.load(path) for _, path in self.chunks()]
        features = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
        if features.shape[0] != self.n_rows:
            raise CacheError(f"cache entry {self.folder} has {features.shape[0]} rows, expected {self.n_rows}")
        atomic_save(self.final, features)
        for _, path in self.chunks():
            path.unlink()
        return features


class FeatureCache:
    """Content-addressed feature store under ``root`` (default ``$OVERSPEC_CACHE/features``)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else cache_dir() / "features"

    def key(self, *, model: str, dataset: str, preprocess: str, compute: str) -> str:
        """``compute`` is the device type and arithmetic (e.g. ``cuda-fp16-autocast``, ``cpu-fp32``)."""
        return digest({"model": model, "dataset": dataset, "preprocess": preprocess, "compute": compute})

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> np.ndarray | None:
        """The finished features for ``key``, or None."""
        final = self.folder(key) / "features.npy"
        return np.load(final) if final.exists() else None

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
                tmp = folder / f".meta.{os.getpid()}.tmp"
                tmp.write_text(json.dumps({**meta, "n_rows": n_rows}, indent=1, default=str))
                os.replace(tmp, meta_file)
            yield CacheEntry(folder, n_rows)

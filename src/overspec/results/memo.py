"""Protocol results remembered by what they are computed from: a model's content (its spec fingerprint), the data's
content, the protocol and its options, the compute setting and overspec's own code. A rerun of ``overspec eval``
with all of these unchanged is answered from here without loading the model (or importing torch); a change to any
of them (a checkpoint replaced in place, one image rewritten, an edited source file) computes again."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from overspec._atomic import atomic_write
from overspec._hashing import digest
from overspec._json import strict_dumps
from overspec._paths import cache_dir, cache_writable
from overspec.protocols.result import ProtocolResult


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Digest of overspec's source files (about 150 small files: a few milliseconds)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def result_key(*, model: str, data: str, protocol: str, options: dict, compute: str) -> str:
    """``compute``: ``Compute.key`` (``overspec/compute.py``), the device type and arithmetic, as in a cell's key."""
    return digest(
        {
            "model": model,
            "data": data,
            "protocol": protocol,
            "options": options,
            "compute": compute,
            "code": code_fingerprint(),
        }
    )


def _path(key: str) -> Path:
    return cache_dir() / "results" / key[:2] / f"{key}.json"


def recall(key: str) -> ProtocolResult | None:
    """The remembered result for ``key``, or None (a file that does not read back as one is a miss)."""
    path = _path(key)
    try:
        stored = json.loads(path.read_text())
        if stored.pop("key") != key:
            return None
        return ProtocolResult(samples={}, **stored)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(key: str, result: ProtocolResult) -> ProtocolResult:
    """Keep ``result`` (without its per-sample arrays) unless the cache is read-only; returns it as it will be
    recalled (JSON values), so a first run and a rerun print the same."""
    kept = [f.name for f in dataclasses.fields(result) if f.name != "samples"]  # intervals too, where it has them
    text = strict_dumps({"key": key, **{f: getattr(result, f) for f in kept}}, default=str)
    if cache_writable():
        path = _path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    stored = json.loads(text)
    del stored["key"]
    return ProtocolResult(samples={}, **stored)

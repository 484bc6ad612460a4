"""Content hashes of weight files and directories, memoised by (path, size, mtime) in the cache."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from overspec._paths import cache_dir, cache_writable


def digest(obj: object) -> str:
    """Stable sha256 hex of a JSON-serialisable object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes; rehashing a multi-GB checkpoint on every load is avoided by a memo."""
    path = Path(path).resolve()
    stat = path.stat()
    memo = cache_dir() / "filehash" / digest([str(path), stat.st_size, stat.st_mtime_ns])
    if memo.exists():
        return memo.read_text().strip()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    value = h.hexdigest()
    if cache_writable():
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
            tmp.write_text(value)
            os.replace(tmp, memo)
        except OSError:  # a full or read-only disk: the digest is still right, only not remembered
            pass
    return value


def path_sha256(path: str | Path) -> str:
    """sha256 of a file, or of every file in a directory (relative names and contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return digest([[str(p.relative_to(path)), file_sha256(p)] for p in files])

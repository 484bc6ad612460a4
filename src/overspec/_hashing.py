"""Content hashes of weight files, directories and image files, memoised in the cache."""

from __future__ import annotations

import hashlib
import json
import os
import stat as st
from pathlib import Path

from overspec._atomic import atomic_write
from overspec._paths import cache_dir, cache_writable
from overspec._progress import progress_bar
from overspec.errors import StorageError

# above these, the first read of a dataset's files or of a checkpoint takes seconds: it gets a progress bar
PROGRESS_FILES, PROGRESS_BYTES = 2_000, 1 << 30


def digest(obj: object) -> str:
    """Stable sha256 hex of a JSON-serialisable object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes; rehashing a multi-GB checkpoint on every load is avoided by a memo keyed by
    path, size, mtime, ctime and inode (a rewrite in place with the old mtime restored still changes ctime)."""
    path = Path(path).resolve()
    stat = path.stat()
    memo = cache_dir() / "filehash" / digest([str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino])
    if memo.exists():
        return memo.read_text().strip()
    h = hashlib.sha256()
    big = stat.st_size > PROGRESS_BYTES
    with open(path, "rb") as f, progress_bar(big, f"hashing {path.name}", stat.st_size) as advance:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
            advance(len(block))
    value = h.hexdigest()
    if cache_writable():
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(memo, value)
        except (OSError, StorageError):  # a full or read-only disk: the digest is still right, only not remembered
            pass
    return value


def path_sha256(path: str | Path) -> str:
    """sha256 of a file, or of every file in a directory (relative names and contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return digest([[str(p.relative_to(path)), file_sha256(p)] for p in files])


def regular_stat(path: str | Path) -> os.stat_result:
    """``os.stat(path)`` (links followed) of a regular file; else an ``OSError`` whose ``strerror`` says what the
    path is instead."""
    stat = os.stat(path)
    if not st.S_ISREG(stat.st_mode):
        kinds = {st.S_ISDIR: "a folder", st.S_ISFIFO: "a named pipe", st.S_ISSOCK: "a socket"}
        kind = next((name for is_kind, name in kinds.items() if is_kind(stat.st_mode)), "a device")
        raise OSError(0, f"not a regular file but {kind}", str(path))
    return stat


def content_digests(paths: list[Path]) -> list[str]:
    """BLAKE2b of each file's bytes, read once and remembered by (path, size, mtime, ctime, inode) in
    ``<cache>/content.sqlite``. The ctime and inode catch a file rewritten in place with its old size and mtime
    restored (``cp`` + ``touch -r``; ``rsync -t`` writes a new inode): both change on any write and cannot be set
    back. ``OVERSPEC_VERIFY=content`` digests every file again on every call. Only regular files are read (a
    named pipe or a link to a device would be read forever): anything else is an ``OSError`` naming it."""
    import sqlite3

    keys = []
    for path in paths:
        stat = regular_stat(path)
        keys.append(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{stat.st_ino}")
    remembered: dict[str, str] = {}
    db = None
    if os.environ.get("OVERSPEC_VERIFY") != "content" and cache_writable():
        try:
            cache_dir().mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(cache_dir() / "content.sqlite"), timeout=60)
            db.execute("CREATE TABLE IF NOT EXISTS digests (key TEXT PRIMARY KEY, digest TEXT)")
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                query = f"SELECT key, digest FROM digests WHERE key IN ({','.join('?' * len(chunk))})"
                remembered.update(db.execute(query, chunk).fetchall())
        except sqlite3.Error:  # an unreadable memo is only a slower run
            db = None
    found, new = [], []
    unread = sum(key not in remembered for key in keys)
    with progress_bar(unread > PROGRESS_FILES, "reading files to fingerprint the data", unread) as advance:
        for path, key in zip(paths, keys, strict=True):
            if key not in remembered:
                with open(path, "rb") as f:
                    remembered[key] = hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
                new.append((key, remembered[key]))
                advance(1)
            found.append(remembered[key])
    if db is not None:
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?)", new)
        except sqlite3.Error:
            pass
        db.close()
    return found

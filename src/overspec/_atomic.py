"""Writing a file all at once: to a temporary sibling, renamed into place when complete. The temporary file is
removed whatever happens (a full disk must not fill further on each retry), and a disk that refuses the write
(full, read-only, no permission) is one line naming the file and the fix."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from overspec.errors import StorageError

_FIXES = {
    errno.ENOSPC: "no space left on its disk; free some, or point OVERSPEC_CACHE / --out at a larger disk",
    errno.EDQUOT: "the disk quota is used up; free some, or point OVERSPEC_CACHE / --out elsewhere",
    errno.EFBIG: "the file size limit is reached (ulimit -f, or the file system's own); raise it or write elsewhere",
    errno.EROFS: "its disk is read-only; point OVERSPEC_CACHE / --out at a writable folder",
    errno.EACCES: "no permission to write there; point OVERSPEC_CACHE / --out at a writable folder",
}


def disk_refused(exc: OSError) -> bool:
    """The disk, not the program, refused a write: full, over quota, read-only, no permission, I/O error."""
    return exc.errno in _FIXES or exc.errno == errno.EIO


def storage_error(path: Path, exc: OSError) -> StorageError:
    reason = _FIXES.get(exc.errno, f"{exc.strerror or exc}; check the disk and the folder's permissions")
    return StorageError(f"cannot write {path}: {reason}")


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **options) -> Iterator[IO]:
    """``open(path, mode)`` for writing that only ever leaves the complete file (or the old one) at ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            with open(tmp, mode, **options) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            if disk_refused(exc):
                raise storage_error(path, exc) from None
            raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: bytes | str) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)

"""What a fetch will download, how many bytes, and whether the target disk holds them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from overspec.errors import StorageError
from overspec.fetch.remote import RemoteFile

HEADROOM = 1.02  # tar headers and huggingface_hub's metadata files: a little more than the payload


@dataclass
class Transfer:
    """Files of one hub repository bound for ``folder`` (``rename``: one file saved under another name)."""

    name: str
    repo: str
    repo_type: str
    folder: Path
    files: list[RemoteFile] = field(default_factory=list)
    rename: Path | None = None

    def local(self, remote: RemoteFile) -> Path:
        return self.rename if self.rename is not None else self.folder / remote.path

    def pending(self) -> list[RemoteFile]:
        """Files not yet here at their published size."""
        return [f for f in self.files if not (self.local(f).is_file() and self.local(f).stat().st_size == f.size)]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def check_space(transfers: list[Transfer]) -> None:
    """Refuse, in one line, a fetch whose pending files do not fit on their file systems."""
    needed: dict[Path, tuple[int, list[str]]] = {}
    for transfer in transfers:
        anchor = _existing(transfer.folder)
        size, names = needed.get(anchor, (0, []))
        needed[anchor] = (size + sum(f.size for f in transfer.pending()), [*names, transfer.name])
    for anchor, (size, names) in needed.items():
        free = shutil.disk_usage(anchor).free
        if size * HEADROOM > free:
            raise StorageError(
                f"{anchor}: fetching {', '.join(names)} needs {human(size)} but its file system has {human(free)} "
                "free; free some space, or fetch to a larger disk with --root (datasets) / OVERSPEC_WEIGHTS (weights)"
            )


def _existing(folder: Path) -> Path:
    folder = folder.expanduser().absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError

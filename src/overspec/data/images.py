"""A list of image files as a dataset: the simplest source, used by ``overspec embed``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from overspec._hashing import digest
from overspec.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def list_images(folder: str | Path) -> list[Path]:
    """Every image file under ``folder`` (recursively), in sorted path order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist or is not a directory")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return paths


class ImageFiles:
    """Images read from ``paths`` with PIL, transformed by ``transform`` when given.

    The fingerprint covers each file's path relative to ``root``, size and modification time, so a
    changed or replaced file invalidates cached features without hashing every image.
    """

    def __init__(
        self, paths: Sequence[str | Path], *, root: str | Path | None = None, transform: Callable | None = None
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.root = Path(root) if root else None
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from PIL import Image, UnidentifiedImageError

        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image.load()
                image = image.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read image {path}: {exc}; remove or replace the file") from None
        return self.transform(image) if self.transform else image

    def with_transform(self, transform: Callable) -> ImageFiles:
        return ImageFiles(self.paths, root=self.root, transform=transform)

    @property
    def fingerprint(self) -> str:
        entries = []
        for path in self.paths:
            stat = path.stat()
            name = str(path.relative_to(self.root)) if self.root else str(path.resolve())
            entries.append([name, stat.st_size, stat.st_mtime_ns])
        return digest({"source": "files", "entries": entries})

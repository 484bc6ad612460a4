"""Indexable image collections. Every source yields PIL images by index and a fingerprint of its content."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from overspec._hashing import content_digests, digest, regular_stat
from overspec.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def image_files(folder: Path) -> list[Path]:
    """Every path under ``folder`` (recursively) with an image suffix, in sorted order, folders left out; anything
    else named like an image (a named pipe, a link to a device) is kept, so reading it is an error naming it."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())


def list_images(folder: str | Path) -> list[Path]:
    """Every image file under ``folder`` (recursively), in sorted path order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist or is not a directory")
    paths = image_files(folder)
    if not paths:
        raise DataError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return paths


MAX_PIXELS = 1 << 28  # 268 M pixels (16384 x 16384): larger headers are refused before decoding
# long side / short side: a shortest-side resize to 224 then makes at most 224 x 22,400 pixels (15 MB), where a
# 1 x 100,000 strip (a few hundred bytes of PNG) would make 224 x 22.4 M (15 GB); panoramas stay well inside
MAX_ASPECT = 100


def open_rgb(source, name: str):
    """Decode ``source`` (a path or file object) into an RGB PIL image; errors name ``name``.

    Every mode Pillow decodes becomes 8-bit RGB with its range scaled, not clipped: 16-bit (``I;16*``, and ``I``
    holding 16-bit values) by 255/65535; float (``F``) images holding [0, 1] by 255, others as 0-255 values;
    palette, alpha, CMYK and 1-bit images by Pillow's own conversion. An image over ``MAX_PIXELS``, or longer than
    ``MAX_ASPECT`` times its width (or wider than that times its height), is refused from its header, before
    anything is decoded. Only regular files are opened.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, str | Path):
        try:
            regular_stat(source)  # a named pipe or /dev/zero would be read forever
        except OSError as exc:
            raise DataError(f"cannot read image {name}: {exc.strerror}; remove or replace the file") from None
    try:
        with Image.open(source) as image:
            if image.width * image.height > MAX_PIXELS:
                raise DataError(
                    f"image {name} is {image.width} x {image.height} pixels, over the limit of {MAX_PIXELS:,}; "
                    "resize it (or remove it from the dataset)"
                )
            if max(image.size) > MAX_ASPECT * max(1, min(image.size)):
                raise DataError(
                    f"image {name} is {image.width} x {image.height} pixels, longer on one side than {MAX_ASPECT} "
                    "times the other (a shortest-side resize would make it enormous); crop it or remove it"
                )
            image.load()
            return _to_rgb(image)
    except Image.DecompressionBombError as exc:  # Pillow's own limit, checked when the header is read
        raise DataError(f"image {name} is over the limit of pixels ({exc}); resize it or remove it") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot read image {name}: {exc}; remove or replace the file") from None


def _to_rgb(image):
    import numpy as np
    from PIL import Image

    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            finite = pixels[np.isfinite(pixels)]
            scale = 255.0 if finite.size and finite.min() >= 0 and finite.max() <= 1 else 1.0
        else:
            scale = 255.0 / 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 1.0
        scaled = np.clip(np.nan_to_num(pixels * scale), 0, 255).round().astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    return image.convert("RGB")


class ImageSource:
    """Base of every image collection: ``len``, ``load(i)`` -> RGB PIL image, ``fingerprint``."""

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int):
        raise NotImplementedError

    @property
    def fingerprint(self) -> str:
        raise NotImplementedError

    def __getitem__(self, index: int):
        return self.load(index)

    def subset(self, indices: Sequence[int]) -> ImageSource:
        return Subset(self, list(indices))

    def with_transform(self, transform: Callable) -> Transformed:
        return Transformed(self, transform)


class Transformed:
    """``source`` with ``transform`` applied to each image (what the data loader iterates)."""

    def __init__(self, source: ImageSource, transform: Callable) -> None:
        self.source, self.transform = source, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        return self.transform(self.source.load(index))


class Subset(ImageSource):
    def __init__(self, source: ImageSource, indices: list[int]) -> None:
        self.source, self.indices = source, indices

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, index: int):
        return self.source.load(self.indices[index])

    @property
    def fingerprint(self) -> str:
        return digest({"subset_of": self.source.fingerprint, "indices": self.indices})


class ImageFiles(ImageSource):
    """Images read from ``paths``. The fingerprint covers each path (relative to ``root``) and a digest of its
    bytes, read once per file and remembered (``_hashing.content_digests``): a file replaced by other bytes of the
    same size and mtime gets new features, and a dataset copied elsewhere keeps its cached ones."""

    def __init__(self, paths: Sequence[str | Path], *, root: str | Path | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.root = Path(root) if root else None

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int):
        return open_rgb(self.paths[index], str(self.paths[index]))

    @property
    def fingerprint(self) -> str:
        names = [str(p.relative_to(self.root)) if self.root else str(p.resolve()) for p in self.paths]
        contents = readable_digests(self.paths)
        return digest({"source": "files", "entries": [list(e) for e in zip(names, contents, strict=True)]})


def readable_digests(paths: list[Path], what: str = "image") -> list[str]:
    """``content_digests`` of ``paths``; a file that cannot be read is a one-line error naming it."""
    try:
        return content_digests(paths)
    except OSError as exc:
        raise DataError(f"cannot read {what} {exc.filename}: {exc.strerror}; remove or replace the file") from None


class Flipped(ImageSource):
    """``source`` mirrored left-right (test-time flip augmentation; its own cache entry)."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def load(self, index: int):
        from PIL import Image

        return self.source.load(index).transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    @property
    def fingerprint(self) -> str:
        return digest({"flipped": self.source.fingerprint})

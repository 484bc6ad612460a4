"""insightface's verification ``.bin`` files (LFW, CFP-FP, CFP-FF, AgeDB-30, CALFW, CPLFW).

Each is a pickle of ``(bins, issame_list)``: encoded images (pairs are consecutive) and one boolean per
pair. Pickles can run code on load, so they are read with an unpickler that refuses every global but
the bytes conversion below — only built-in containers, bytes and booleans can come out — and the
result's shape is checked.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from overspec._hashing import digest, path_sha256
from overspec.data.images import ImageSource, open_rgb
from overspec.errors import DataError

FACE_BINS = ("lfw", "cfp_fp", "cfp_ff", "agedb_30", "calfw", "cplfw")


class _BytesAndBooleansOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        # Python 3 writes bytes under pickle protocol 2 as _codecs.encode(text, "latin1"): a pure conversion,
        # the one global allowed. Python 2's files (insightface's own) need none.
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        raise pickle.UnpicklingError(f"the file asks for the Python object {module}.{name}")


def _latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3's pickler uses it; any other codec is not something a .bin needs."""
    if encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"the file asks for the text codec {encoding!r} (only latin1 encodes bytes)")
    return text.encode("latin1")


def read_bin(path: str | Path) -> tuple[list[bytes], np.ndarray]:
    """``(encoded images, issame)`` from an insightface ``.bin``; anything but bytes and booleans is refused."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"verification file {path} does not exist (insightface's <name>.bin)")
    try:
        with open(path, "rb") as f:
            loaded = _BytesAndBooleansOnly(f, encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"refusing {path}: {exc}; an insightface .bin holds only image bytes and booleans") from None
    except (EOFError, ValueError, TypeError, IndexError) as exc:
        raise DataError(f"{path} is not an insightface .bin pickle: {exc}") from None
    if not (isinstance(loaded, tuple | list) and len(loaded) == 2):
        raise DataError(f"{path}: expected (images, issame_list), got {type(loaded).__name__}")
    bins, issame = loaded
    if not all(isinstance(b, bytes | bytearray) for b in bins):
        raise DataError(f"{path}: every image must be encoded bytes")
    if not all(isinstance(s, bool) for s in issame):
        raise DataError(f"{path}: issame_list must hold booleans")
    if len(bins) != 2 * len(issame):
        raise DataError(f"{path}: {len(bins)} images for {len(issame)} pairs; expected two images per pair")
    return list(bins), np.array(issame, dtype=bool)


class EncodedImages(ImageSource):
    """Images kept encoded in memory (JPEG/PNG bytes), decoded on load."""

    def __init__(self, blobs: list[bytes], *, name: str, fingerprint: str) -> None:
        self.blobs, self.name, self._fingerprint = blobs, name, fingerprint

    def __len__(self) -> int:
        return len(self.blobs)

    def load(self, index: int):
        return open_rgb(io.BytesIO(self.blobs[index]), f"{self.name} image {index}")

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


def load_pairs(path: str | Path) -> tuple[EncodedImages, np.ndarray]:
    """The images of a ``.bin`` (pair i is images 2i and 2i+1) and the genuine flag of each pair."""
    bins, issame = read_bin(path)
    images = EncodedImages(bins, name=Path(path).name, fingerprint=digest({"bin": path_sha256(path)}))
    return images, issame

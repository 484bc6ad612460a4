"""CLIP_benchmark's webdataset layout (the ``clip-benchmark/wds_*`` copies): ``<split>/*.tar`` shards of
``<key>.<jpg|png|webp>`` + ``<key>.cls`` samples, with ``classnames.txt`` and
``zeroshot_classification_templates.txt`` beside them (and ``nshards.txt`` in each split folder).

Images are read straight from the shard by byte offset, so nothing is unpacked and data loader workers
need no shared file handles. The shard index (offsets and labels) is cached per shard content.

A split is read whole or refused, never read short: every shard must be an uncompressed tar that ends with its
end-of-archive block (a shard cut at a member boundary or inside a header is an error), every member's data must
lie inside the file, the shard count must match ``nshards.txt``, and each sample must be exactly one image and
one ``.cls`` label. Links, a key given twice, a label without an image, an image without a label and a key with
two images are refused with the shard and the member named (a sample dropped or doubled would change every
number computed on the split without a word); repack the shard to fix it. Members are read with a size bound.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np

from overspec._atomic import atomic_write
from overspec._hashing import digest
from overspec._paths import cache_dir, cache_writable
from overspec.data.images import ImageSource, open_rgb, readable_digests
from overspec.data.labelled import LabelledSplit
from overspec.data.sources.folder import read_templates
from overspec.errors import DataError

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
MAX_LABEL_BYTES = 64  # a .cls member holds one integer
# an image member larger than this is refused before it is read; OVERSPEC_MAX_IMAGE_BYTES raises it
MAX_IMAGE_BYTES = 64 << 20
INDEX_VERSION = 2  # bump when what the index holds changes: older memos are then ignored
# first bytes of the compressed forms tarfile would open silently (a gzip bomb is small on disk)
COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


class TarImages(ImageSource):
    """Images inside the shards of one split. The fingerprint covers the split's name, each shard's name within
    the dataset (``test/0.tar``) and a digest of its bytes: a shard rewritten in place, or two splits whose shards
    have equal names and sizes, never share cached features."""

    def __init__(self, entries: list[tuple[str, int, int]], *, split: str, shards: dict[str, str]) -> None:
        self.entries = entries  # (shard path, byte offset, size)
        self.split = split
        self.shards = shards  # shard name within the dataset -> content digest

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, index: int):
        shard, offset, size = self.entries[index]
        with open(shard, "rb") as f:
            f.seek(offset)
            return open_rgb(io.BytesIO(f.read(size)), f"{shard}@{offset}")

    @property
    def fingerprint(self) -> str:
        return digest(
            {"source": "webdataset", "split": self.split, "shards": sorted(self.shards.items()), "n": len(self)}
        )


def max_image_bytes() -> int:
    value = os.environ.get("OVERSPEC_MAX_IMAGE_BYTES", "")
    if not value:
        return MAX_IMAGE_BYTES
    if not value.isdigit() or int(value) == 0:
        raise DataError(f"OVERSPEC_MAX_IMAGE_BYTES must be a positive number of bytes, not {value!r}")
    return int(value)


def index_shard(shard: Path, content: str | None = None) -> list[tuple[int, int, int]]:
    """``(offset, size, label)`` of every sample in a shard, in key order; cached by the shard's content digest
    (``content``, else computed: ``_hashing.content_digests``)."""
    content = content or readable_digests([shard], "webdataset shard")[0]
    memo = cache_dir() / "wds_index" / f"{digest([content, INDEX_VERSION, max_image_bytes()])}.json"
    if memo.exists():
        return [tuple(x) for x in json.loads(memo.read_text())]
    rows = _read_index(shard)
    if cache_writable():
        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(memo, json.dumps(rows))
    return rows


def _read_index(shard: Path) -> list[tuple[int, int, int]]:
    size = shard.stat().st_size
    with open(shard, "rb") as f:
        head = f.read(8)
    kind = next((name for magic, name in COMPRESSED.items() if head.startswith(magic)), None)
    if kind:
        raise DataError(f"webdataset shard {shard} is {kind}-compressed; shards are read as plain tar: decompress it")
    images: dict[str, tuple[str, int, int]] = {}
    labels: dict[str, tuple[str, int]] = {}
    limit = max_image_bytes()
    try:
        with tarfile.open(shard, mode="r:") as tar:
            for member in tar:
                _check_member(shard, member, size, limit)
                if member.isdir():
                    continue
                key, field = _key_and_field(shard, member.name)
                if field == "cls":
                    if key in labels:
                        raise DataError(f"{shard}: member {member.name} repeats the label of sample {key!r}")
                    labels[key] = (member.name, _label(shard, tar, member))
                elif field in IMAGE_EXTENSIONS:
                    if key in images:
                        raise DataError(
                            f"{shard}: member {member.name} is a second image of sample {key!r} "
                            f"(after {images[key][0]}); one image per sample"
                        )
                    images[key] = (member.name, member.offset_data, member.size)
            _check_end(shard, tar.offset, size)
    except tarfile.TarError as exc:
        raise DataError(f"cannot read webdataset shard {shard}: {exc}; delete it and fetch it again") from None
    except OSError as exc:
        raise DataError(f"cannot read webdataset shard {shard}: {exc.strerror or exc}") from None
    for key in sorted(set(images) ^ set(labels)):
        if key in labels:
            raise DataError(f"{shard}: label {labels[key][0]} has no image; every sample needs both")
        raise DataError(f"{shard}: image {images[key][0]} has no .cls label; every sample needs both")
    if not images:  # what a shard overwritten with zeros reads as
        raise DataError(f"webdataset shard {shard} holds no samples; delete it and fetch it again")
    return [(images[k][1], images[k][2], labels[k][1]) for k in sorted(images)]


def _check_member(shard: Path, member: tarfile.TarInfo, size: int, limit: int) -> None:
    if member.issym() or member.islnk():
        raise DataError(
            f"{shard}: member {member.name} is a {'symbolic' if member.issym() else 'hard'} link; "
            "samples must be regular members (repack the shard with the files themselves)"
        )
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{shard}: member {member.name} is not a regular file; repack the shard without it")
    if member.isfile():
        field = member.name.rsplit("/", 1)[-1].partition(".")[2].lower()
        bound = MAX_LABEL_BYTES if field == "cls" else limit if field in IMAGE_EXTENSIONS else None
        if bound is not None and member.size > bound:
            raise DataError(
                f"{shard}: member {member.name} is {member.size:,} bytes, over the limit of {bound:,} for a "
                f"{'label' if field == 'cls' else 'image (OVERSPEC_MAX_IMAGE_BYTES raises it)'}"
            )
        if member.offset_data + member.size > size:
            raise DataError(
                f"{shard}: member {member.name} ends at byte {member.offset_data + member.size:,} but the shard has "
                f"{size:,}; the shard is truncated: delete it and fetch it again"
            )


def _key_and_field(shard: Path, name: str) -> tuple[str, str]:
    """webdataset's rule: a sample's key is the member name up to the first dot of its last component."""
    base = name.rsplit("/", 1)[-1]
    stem, _, field = base.partition(".")
    field = field.lower()
    last = field.rsplit(".", 1)[-1]
    if field != last and (last == "cls" or last in IMAGE_EXTENSIONS):
        raise DataError(
            f"{shard}: member {name} has a dot inside its key (webdataset keys end at the first dot, so it would "
            "not pair with its label or image); rename it"
        )
    return name[: len(name) - len(base)] + stem, field


def _label(shard: Path, tar: tarfile.TarFile, member: tarfile.TarInfo) -> int:
    text = tar.extractfile(member).read(MAX_LABEL_BYTES + 1)
    try:
        return int(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise DataError(f"{shard}: label {member.name} should hold one integer, not {text[:20]!r}") from None


def _check_end(shard: Path, offset: int, size: int) -> None:
    """tarfile stops at the first block that is not a header, and a shard cut at a member boundary or inside a
    header simply ends early; a whole shard ends with a zero block where the next header would be."""
    with open(shard, "rb") as f:
        f.seek(offset)
        block = f.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        where = "inside a header" if block.strip(b"\0") else "at a member boundary"
        raise DataError(
            f"webdataset shard {shard} is truncated {where} (no end-of-archive block at byte {offset:,} of "
            f"{size:,}); delete it and fetch it again"
        )


def declared_shards(folder: Path) -> int | None:
    """The shard count ``nshards.txt`` declares, or None where there is no such file."""
    declared = folder / "nshards.txt"
    if not declared.exists():
        return None
    text = declared.read_text(errors="replace").strip()
    if not text.isdigit():
        raise DataError(f"{declared} should hold the number of shards, not {text[:40]!r}; correct or delete it")
    return int(text)


class WebDatasetSource:
    name = "webdataset"

    @staticmethod
    def detect(root: Path) -> bool:
        return any(root.glob("*/*.tar"))

    @staticmethod
    def read(root: Path) -> tuple[dict[str, LabelledSplit], list[str] | None, list[str] | None]:
        splits = {}
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            shards = sorted(folder.glob("*.tar"))
            if not shards:
                continue
            expected = declared_shards(folder)
            if expected is not None and expected != len(shards):
                raise DataError(
                    f"{folder / 'nshards.txt'} says {expected} shards but {folder} holds {len(shards)}; "
                    "the copy is incomplete: fetch it again"
                )
            contents = readable_digests(shards, "webdataset shard")
            entries, labels = [], []
            for shard, content in zip(shards, contents, strict=True):
                for offset, size, label in index_shard(shard, content):
                    entries.append((str(shard), offset, size))
                    labels.append(label)
            names = {f"{folder.name}/{s.name}": c for s, c in zip(shards, contents, strict=True)}
            images = TarImages(entries, split=folder.name, shards=names)
            splits[folder.name] = LabelledSplit(images, np.array(labels, dtype=int))
        names_file = root / "classnames.txt"
        classnames = (
            [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
            if names_file.exists()
            else None
        )
        templates = read_templates(root / "zeroshot_classification_templates.txt")
        return splits, classnames, templates

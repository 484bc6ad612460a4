"""CLIP_benchmark's webdataset layout (the ``clip-benchmark/wds_*`` copies): ``<split>/*.tar`` shards of
``<key>.<jpg|png|webp>`` + ``<key>.cls`` samples, with ``classnames.txt`` and
``zeroshot_classification_templates.txt`` beside them.

Images are read straight from the shard by byte offset, so nothing is unpacked and data loader workers
need no shared file handles. The shard index (offsets and labels) is cached per shard.
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
from overspec._paths import cache_dir
from overspec.data.images import ImageSource, open_rgb
from overspec.data.labelled import LabelledSplit
from overspec.data.sources.folder import read_templates
from overspec.errors import DataError

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


class TarImages(ImageSource):
    def __init__(self, entries: list[tuple[str, int, int]]) -> None:
        self.entries = entries  # (shard path, byte offset, size)

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, index: int):
        shard, offset, size = self.entries[index]
        with open(shard, "rb") as f:
            f.seek(offset)
            return open_rgb(io.BytesIO(f.read(size)), f"{shard}@{offset}")

    @property
    def fingerprint(self) -> str:
        shards = sorted({e[0] for e in self.entries})
        return digest(
            {
                "source": "webdataset",
                "shards": [[Path(s).name, os.path.getsize(s)] for s in shards],
                "n": len(self.entries),
            }
        )


def index_shard(shard: Path) -> list[tuple[int, int, int]]:
    """``(offset, size, label)`` of every sample in a shard, cached by (path, size, mtime)."""
    stat = shard.stat()
    memo = cache_dir() / "wds_index" / f"{digest([str(shard.resolve()), stat.st_size, stat.st_mtime_ns])}.json"
    if memo.exists():
        return [tuple(x) for x in json.loads(memo.read_text())]
    images, labels = {}, {}
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                key, _, ext = base.partition(".")
                key = member.name[: len(member.name) - len(base)] + key
                if ext.lower() in IMAGE_EXTENSIONS:
                    images[key] = (member.offset_data, member.size)
                elif ext == "cls":
                    labels[key] = int(tar.extractfile(member).read().decode().strip())
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise DataError(f"cannot read webdataset shard {shard}: {exc}") from None
    missing = sorted(set(images) - set(labels))
    if missing:
        raise DataError(f"{shard}: sample {missing[0]!r} has an image but no .cls label")
    rows = [(images[k][0], images[k][1], labels[k]) for k in sorted(images)]
    memo.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(memo, json.dumps(rows))
    return rows


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
            entries, labels = [], []
            for shard in shards:
                for offset, size, label in index_shard(shard):
                    entries.append((str(shard), offset, size))
                    labels.append(label)
            splits[folder.name] = LabelledSplit(TarImages(entries), np.array(labels))
        names_file = root / "classnames.txt"
        classnames = (
            [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
            if names_file.exists()
            else None
        )
        templates = read_templates(root / "zeroshot_classification_templates.txt")
        return splits, classnames, templates

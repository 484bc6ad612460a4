"""insightface's training sets in MXNet RecordIO (``train.rec`` + ``train.idx``), read without MXNet.

Format (MXNet ``recordio.py``): each record is ``uint32 magic 0xced7230a``, ``uint32 (cflag << 29) | length``,
then ``length`` bytes padded to 4. A record's payload is an ``IRHeader`` (``<IfQQ``: flag, label, id, id2),
then ``flag`` float32 labels when flag > 0, then the encoded image. insightface's record 0 is a header
whose label[0] is one past the last image record (the identity-range records that follow are skipped).
Only plain bytes are read: nothing in the file is executed.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from overspec._hashing import digest, path_sha256
from overspec.data.images import ImageSource, open_rgb
from overspec.errors import DataError

MAGIC = 0xCED7230A
HEADER = struct.Struct("<IfQQ")


def read_index(idx: Path) -> dict[int, int]:
    offsets = {}
    for number, line in enumerate(idx.read_text().splitlines(), start=1):
        if line.strip():
            parts = line.split()
            if len(parts) != 2:
                raise DataError(f"{idx}, line {number}: expected 'index<TAB>offset'")
            offsets[int(parts[0])] = int(parts[1])
    return offsets


def read_record(handle, offset: int, source: Path) -> tuple[np.ndarray, bytes]:
    handle.seek(offset)
    head = handle.read(8)
    if len(head) < 8:
        raise DataError(f"{source}: truncated record at byte {offset}")
    magic, length_flag = struct.unpack("<II", head)
    if magic != MAGIC:
        raise DataError(f"{source}: no RecordIO record at byte {offset} (magic {magic:#x})")
    payload = handle.read(length_flag & ((1 << 29) - 1))
    flag, label, _, _ = HEADER.unpack_from(payload)
    if flag > 0:
        labels = np.frombuffer(payload, np.float32, count=flag, offset=HEADER.size)
        return labels, payload[HEADER.size + 4 * flag :]
    return np.array([label], np.float32), payload[HEADER.size :]


class RecordImages(ImageSource):
    def __init__(self, rec: Path, offsets: list[int], fingerprint: str) -> None:
        self.rec, self.offsets, self._fingerprint = rec, offsets, fingerprint

    def __len__(self) -> int:
        return len(self.offsets)

    def load(self, index: int):
        with open(self.rec, "rb") as f:
            _, image = read_record(f, self.offsets[index], self.rec)
        return open_rgb(io.BytesIO(image), f"{self.rec} record {index}")

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


def load_recordio(folder: str | Path) -> tuple[RecordImages, np.ndarray]:
    """Images and integer identity labels of ``folder/train.rec`` (with ``train.idx``)."""
    folder = Path(folder)
    rec, idx = folder / "train.rec", folder / "train.idx"
    for path in (rec, idx):
        if not path.is_file():
            raise DataError(f"{path} does not exist: insightface training sets come as train.rec + train.idx")
    offsets = read_index(idx)
    keys = sorted(offsets)
    with open(rec, "rb") as f:
        first, _ = read_record(f, offsets[keys[0]], rec)
        if keys[0] == 0 and first[0] > 1:  # insightface's header record: images are 1 .. label[0] - 1
            keys = [k for k in keys if 1 <= k < int(first[0])]
        labels = np.array([int(read_record(f, offsets[k], rec)[0][0]) for k in keys])
    fingerprint = digest({"recordio": path_sha256(idx), "size": rec.stat().st_size})
    return RecordImages(rec, [offsets[k] for k in keys], fingerprint), labels

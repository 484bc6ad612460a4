"""Frames of the PAD video datasets (OULU-NPU, CASIA-FASD, Replay-Attack and MSU-MFSD are released as videos),
decoded with PyAV.

Each video gives ``frames_per_video`` frames spaced evenly from its first to its last (every frame when it is
shorter), the sampling of the OCIM protocol's public preprocessing (SSDG, FLIP, FoundPAD read frames sampled
once from each video); scores are then averaged per video (``protocols/attack_detection.py``), as FoundPAD's
``compute_video_score`` does.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from overspec._hashing import digest
from overspec.data.images import ImageSource, open_rgb, readable_digests
from overspec.errors import DataError

VIDEO_SUFFIXES = {".avi", ".mov", ".mp4", ".m4v", ".mkv", ".webm", ".3gp"}
FRAMES_PER_VIDEO = 25


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _av():
    try:
        import av
    except ImportError:
        raise DataError("reading videos needs PyAV: pip install 'overspec[data]' (or pip install av)") from None
    return av


def frame_count(path: Path) -> int:
    """Frames in the first video stream: the container's count when it records one, else counted by decoding."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"video {path} has no video stream")
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            return sum(1 for _ in container.decode(stream))
    except av.error.FFmpegError as exc:
        raise DataError(f"cannot read video {path}: {exc}; remove or replace the file") from None


def sampled_frames(count: int, n: int) -> list[int]:
    """``n`` frame indices spaced evenly over ``count`` frames, first and last included (all when fewer)."""
    if count <= n:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, n)})


@lru_cache(maxsize=2)  # a data loader walks one video's frames in a row: decode each video once per worker
def _decoded(path: str, frames: tuple[int, ...]) -> dict[int, object]:
    av = _av()
    wanted, found = set(frames), {}
    try:
        with av.open(path) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index in wanted:
                    found[index] = frame.to_image()  # RGB PIL image
                    if len(found) == len(wanted):
                        break
    except av.error.FFmpegError as exc:
        raise DataError(f"cannot read video {path}: {exc}; remove or replace the file") from None
    return found


class MediaFiles(ImageSource):
    """Image files and video frames: ``entries`` are ``(path, frame)`` with ``frame`` None for an image file.
    The fingerprint covers each file's bytes (``_hashing.content_digests``) and the frame indices."""

    def __init__(self, entries: list[tuple[Path, int | None]]) -> None:
        self.entries = [(Path(p), f) for p, f in entries]
        self._frames_of: dict[Path, tuple[int, ...]] = {}
        for path, frame in self.entries:
            if frame is not None:
                self._frames_of[path] = (*self._frames_of.get(path, ()), frame)

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, index: int):
        path, frame = self.entries[index]
        if frame is None:
            return open_rgb(path, str(path))
        image = _decoded(str(path), self._frames_of[path]).get(frame)
        if image is None:
            raise DataError(f"video {path} has no frame {frame} (it was counted when the dataset was read)")
        return image

    @property
    def fingerprint(self) -> str:
        files = sorted({p for p, _ in self.entries})
        contents = dict(zip(files, readable_digests(files, "image or video"), strict=True))
        return digest({"source": "media", "entries": [[str(p.resolve()), contents[p], f] for p, f in self.entries]})

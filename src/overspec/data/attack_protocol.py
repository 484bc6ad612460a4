"""MAD/PAD data as one protocol table: ``path, label (bonafide|attack), attack_type, split (train|dev|test)`` and
an optional ``video`` (frames of one video share it; their scores are averaged per video).

``read_protocol_csv`` reads that table from a CSV (paths relative to the CSV's folder); the dataset
readers in ``data/attack_layouts.py`` build the same table from the layouts the public datasets ship in.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from overspec._csv import csv_rows
from overspec.data.attack_layouts import LAYOUTS
from overspec.data.attack_samples import AttackSample, is_bonafide
from overspec.data.images import ImageFiles, ImageSource
from overspec.data.video import FRAMES_PER_VIDEO, MediaFiles, frame_count, is_video, sampled_frames
from overspec.errors import DataError

SPLITS = ("train", "dev", "test")


@dataclass
class AttackSplit:
    images: ImageSource
    bonafide: np.ndarray
    attack_types: np.ndarray
    videos: np.ndarray | None = None  # per sample, the video it is a frame of ("" for a still image)

    def __len__(self) -> int:
        return len(self.bonafide)


@dataclass
class AttackDataset:
    name: str
    task: str  # "mad" or "pad"
    splits: dict[str, AttackSplit]

    def split(self, name: str) -> AttackSplit:
        if name not in self.splits:
            raise DataError(f"{self.name} has no {name!r} split; it has {sorted(self.splits)}")
        return self.splits[name]


def read_protocol_csv(path: str | Path) -> list[AttackSample]:
    """Rows of a protocol CSV. FoundPAD's own lists (``image_path,label``, e.g. its
    ``cross_domain_cropface/mco_ca/test.csv`` of CelebA-Spoof face crops) read as they are: ``image_path`` names
    the path column, a file without a ``split`` column is a test set, and without a ``video`` column a frame's
    video is FoundPAD's (``<folder>/<name up to its last "_">``, as its trainer's ``test_model`` derives it)."""
    path = Path(path)
    required = (("path", "image_path"), "label")
    with csv_rows(path, what="protocol file", required=required, expected="path,label,attack_type,split") as (
        columns,
        rows,
    ):
        path_column = "path" if "path" in columns else "image_path"
        samples, seen = [], {}
        for line, row in rows:
            bonafide = is_bonafide(row["label"] or "", where=f"{path}, line {line}")
            split = (row["split"] or "").strip().lower() if "split" in columns else "test"
            if split not in SPLITS:
                raise DataError(f"{path}, line {line}: split {row['split']!r} is not one of {', '.join(SPLITS)}")
            image = (path.parent / (row[path_column] or "").strip()).resolve()
            if not image.is_file():
                raise DataError(f"{path}, line {line}: image {image} does not exist")
            _once(path, image, line, bonafide, seen)
            attack_type = "" if bonafide else ((row.get("attack_type") or "").strip() or "attack")
            video = (row.get("video") or "").strip()
            if not video and path_column == "image_path":
                video = str(image.parent / image.stem.rsplit("_", 1)[0])
            samples.append(AttackSample(image, bonafide, attack_type, split, video=video))
    if not samples:
        raise DataError(f"{path}: no rows below the header")
    return samples


def _once(path: Path, image: Path, line: int, bonafide: bool, seen: dict[Path, tuple[int, bool]]) -> None:
    """An image is one row: listed twice it would count twice (or in two splits: tested on what was trained on),
    listed as both bona fide and attack it has no true label."""
    if image in seen:
        first, was_bonafide = seen[image]
        kind = "bona fide" if bonafide else "attack"
        what = "twice" if was_bonafide == bonafide else f"as {'bona fide' if was_bonafide else 'attack'} and as {kind}"
        raise DataError(f"{path}: image {image} is listed {what} (lines {first} and {line}); keep one row per image")
    seen[image] = (line, bonafide)


def write_protocol_csv(samples: list[AttackSample], path: str | Path) -> Path:
    """Write ``samples`` as a protocol CSV (paths relative to the CSV's folder when possible)."""
    path = Path(path)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "attack_type", "split"])
        for s in samples:
            try:
                shown = s.path.resolve().relative_to(path.parent.resolve())
            except ValueError:
                shown = s.path
            writer.writerow([shown, "bonafide" if s.bonafide else "attack", s.attack_type, s.split])
    return path


def attack_dataset(
    samples: list[AttackSample], *, name: str, task: str, frames_per_video: int = FRAMES_PER_VIDEO
) -> AttackDataset:
    samples = expand_videos(samples, frames_per_video)
    splits = {}
    for split in SPLITS:
        chosen = [s for s in samples if s.split == split]
        if chosen:
            has_frames = any(s.frame is not None for s in chosen)
            splits[split] = AttackSplit(
                MediaFiles([(s.path, s.frame) for s in chosen]) if has_frames else ImageFiles([s.path for s in chosen]),
                np.array([s.bonafide for s in chosen]),
                np.array([s.attack_type for s in chosen], dtype=object),
                np.array([s.video for s in chosen], dtype=object) if any(s.video for s in chosen) else None,
            )
    if "test" not in splits:
        raise DataError(f"{name}: the protocol has no test rows")
    return AttackDataset(name, task, splits)


def expand_videos(samples: list[AttackSample], frames_per_video: int) -> list[AttackSample]:
    """Each sample whose file is a video becomes ``frames_per_video`` frame samples of that video."""
    out = []
    for sample in samples:
        if not is_video(sample.path):
            out.append(sample)
            continue
        frames = sampled_frames(frame_count(sample.path), frames_per_video)
        if not frames:
            raise DataError(f"video {sample.path} has no frames; remove or replace the file")
        video = sample.video or str(sample.path)
        out += [replace(sample, video=video, frame=f) for f in frames]
    return out


def load_attack_dataset(
    source: str | Path,
    *,
    layout: str = "csv",
    task: str = "pad",
    name: str | None = None,
    frames_per_video: int = FRAMES_PER_VIDEO,
) -> AttackDataset:
    """A protocol CSV (``layout='csv'``) or a dataset folder in one of ``attack_layouts.LAYOUTS``."""
    source = Path(source)
    if layout == "csv":
        samples = read_protocol_csv(source)
    else:
        if not source.is_dir():
            raise DataError(f"{source} is not a folder ({layout} layout)")
        samples = LAYOUTS.get(layout)(source)
    return attack_dataset(samples, name=name or source.stem, task=task, frames_per_video=frames_per_video)

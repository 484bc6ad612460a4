"""Face verification pairs as a text list beside the images (what LFW ships, and what a user writes for own data).

A pair list is a text file (``pairs.txt``; given as the file, or as the folder that holds it). Fields are separated
by tabs or spaces; blank lines and lines starting with ``#`` are skipped. Each line is one pair, in one of two forms:

- LFW's (``pairs.txt`` of http://vis-www.cs.umass.edu/lfw/, the list insightface's ``lfw.bin`` was built from):
  ``NAME N1 N2`` (same person) or ``NAME1 N1 NAME2 N2`` (different people), naming the images
  ``<folder>/NAME/NAME_<N, 4 digits>.jpg`` (``.png`` too). An optional first line ``FOLDS PAIRS_PER_FOLD_AND_CLASS``
  (``10 300``) is checked against the number of pairs.
- ``PATH_A PATH_B LABEL``: two image paths (relative to the list's folder) and 1 (same) or 0 (different).

``<folder>`` is the list's folder. Pairs keep the file's order, so k-fold accuracy folds are LFW's when the file is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overspec.data.images import ImageFiles
from overspec.errors import DataError

LIST_NAME = "pairs.txt"
SUFFIXES = (".jpg", ".png", ".jpeg")


def pair_list_file(path: str | Path) -> Path:
    """The list itself: ``path`` or ``path/pairs.txt``."""
    path = Path(path)
    found = path / LIST_NAME if path.is_dir() else path
    if not found.is_file():
        where = f"{path} holds no {LIST_NAME}" if path.is_dir() else f"pair list {path} does not exist"
        raise DataError(f"{where}; a pair list has lines `NAME N1 N2`, `NAME1 N1 NAME2 N2` or `PATH_A PATH_B LABEL`")
    return found


def _lfw_image(folder: Path, name: str, number: str, where: str) -> Path:
    stem = f"{name}/{name}_{int(number):04d}"
    for suffix in SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    raise DataError(f"{where}: image {folder / stem}.jpg does not exist")


def _pair(folder: Path, fields: list[str], where: str) -> tuple[Path, Path, bool]:
    if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
        return _lfw_image(folder, fields[0], fields[1], where), _lfw_image(folder, fields[0], fields[2], where), True
    if len(fields) == 4 and fields[1].isdigit() and fields[3].isdigit():
        a, b = _lfw_image(folder, fields[0], fields[1], where), _lfw_image(folder, fields[2], fields[3], where)
        return a, b, False
    if len(fields) == 3 and fields[2] in ("0", "1"):
        paths = [folder / f for f in fields[:2]]
        for p in paths:
            if not p.is_file():
                raise DataError(f"{where}: image {p} does not exist")
        return paths[0], paths[1], fields[2] == "1"
    raise DataError(
        f"{where}: expected `NAME N1 N2`, `NAME1 N1 NAME2 N2` or `PATH_A PATH_B LABEL` (label 1 same / 0 different), "
        f"got {len(fields)} fields"
    )


def load_pair_list(path: str | Path) -> tuple[ImageFiles, np.ndarray]:
    """The images of a pair list (pair i is images 2i and 2i+1) and the genuine flag of each pair."""
    source = pair_list_file(path)
    folder = source.parent
    lines = [(n, line.split()) for n, line in enumerate(source.read_text().splitlines(), start=1)]
    lines = [(n, fields) for n, fields in lines if fields and not fields[0].startswith("#")]
    header = None
    if lines and len(lines[0][1]) == 2 and all(f.isdigit() for f in lines[0][1]):
        header, lines = lines[0], lines[1:]
    if not lines:
        raise DataError(f"{source}: no pairs")
    images, genuine = [], []
    for number, fields in lines:
        a, b, same = _pair(folder, fields, f"{source}, line {number}")
        images += [a, b]
        genuine.append(same)
    if header is not None:
        folds, per_fold = (int(f) for f in header[1])
        if folds * 2 * per_fold != len(genuine):
            raise DataError(
                f"{source}, line {header[0]}: says {folds} folds of {per_fold} same and {per_fold} different pairs "
                f"({folds * 2 * per_fold}), the file has {len(genuine)}"
            )
    return ImageFiles(images, root=folder), np.array(genuine, dtype=bool)


def load_verification_pairs(path: str | Path) -> tuple[object, np.ndarray]:
    """``(images, genuine)`` from an insightface ``.bin`` or a pair list (this module's formats)."""
    from overspec.data.insightface_bin import load_pairs

    return load_pairs(path) if Path(path).suffix == ".bin" else load_pair_list(path)

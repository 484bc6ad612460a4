"""1:N identification data: galleries and probes, as templates of images.

**IJB-B / IJB-C 1:N** (``layout: ijb``), in the layout insightface's ``recognition/_evaluation_/ijb/ijb_1n.py`` reads:

    <root>/meta/ijbc_1N_gallery_G1.csv      TEMPLATE_ID,SUBJECT_ID,...  (a header line; further columns ignored)
    <root>/meta/ijbc_1N_gallery_G2.csv      (IJB-B: ijbb_1N_gallery_S1.csv, ijbb_1N_gallery_S2.csv)
    <root>/meta/ijbc_1N_probe_mixed.csv     the probe templates, mated in one gallery
    <root>/meta/ijbc_face_tid_mid.txt       image_name template_id media_id
    <root>/meta/ijbc_name_5pts_score.txt    image_name x1 y1 ... x5 y5 detector_score
    <root>/loose_crop/<image_name>

Templates are pooled as for IJB 1:1 (``protocols/ijb.py``). Each gallery is searched on its own (the open-set
protocol: a probe whose subject is in the other gallery is non-mated); insightface's script instead searches the
union of both galleries, a closed set (``gallery: union``).

**An identity folder** (``layout: folder``): ``<root>/<identity>/<images>``. Each identity's first
``gallery_images`` images (sorted by name) enrol it and the rest are its probes; ``unenrolled`` (a fraction) of the
identities, drawn with ``seed``, enrol nothing, so their probes are non-mated searches (an open-set split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overspec._hashing import digest, path_sha256
from overspec.data.ijb import AlignedFaces, _table
from overspec.data.images import IMAGE_SUFFIXES, ImageFiles, ImageSource
from overspec.errors import DataError

GALLERY_FILES = {"ijbc": ("G1", "G2"), "ijbb": ("S1", "S2")}


@dataclass
class IdentificationSet:
    """Images with the template each belongs to (and its media, for pooling); the galleries (name -> template ids
    and their subjects) and the probes (template ids and subjects)."""

    images: ImageSource
    templates: np.ndarray
    media: np.ndarray
    galleries: dict[str, tuple[np.ndarray, np.ndarray]]
    probes: tuple[np.ndarray, np.ndarray]
    detector_scores: np.ndarray | None = None


def read_template_subjects(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """TEMPLATE_ID and SUBJECT_ID, the first two columns after a header line (insightface's
    ``read_template_subject_id_list``)."""
    if not path.is_file():
        raise DataError(f"IJB 1:N meta file {path} does not exist (insightface's meta/ layout)")
    lines = [line for line in path.read_text().splitlines()[1:] if line.strip()]
    templates, subjects = [], []
    for number, line in enumerate(lines, start=2):
        fields = line.split(",")
        if len(fields) < 2 or not fields[0].strip().isdigit():
            raise DataError(f"{path}, line {number}: expected TEMPLATE_ID,SUBJECT_ID,... (integers)")
        templates.append(int(fields[0]))
        subjects.append(fields[1].strip())
    if not templates:
        raise DataError(f"{path}: no templates")
    return np.array(templates, dtype=np.int64), np.array(subjects, dtype=object)


def load_ijb_1n(root: str | Path, which: str = "ijbc", *, gallery: str = "each") -> IdentificationSet:
    """``gallery: each`` searches each gallery on its own (open set); ``union`` one gallery of both (insightface)."""
    root, which = Path(root), which.lower()
    if which not in GALLERY_FILES:
        raise DataError(f"IJB 1:N: which {which!r}; use ijbb or ijbc")
    if gallery not in ("each", "union"):
        raise DataError(f"IJB 1:N: gallery {gallery!r}; use each (G1 and G2 apart, open set) or union (insightface)")
    meta = root / "meta"
    galleries = {name: read_template_subjects(meta / f"{which}_1N_gallery_{name}.csv") for name in GALLERY_FILES[which]}
    if gallery == "union":
        galleries = {"union": tuple(np.concatenate(parts) for parts in zip(*galleries.values(), strict=True))}
    probes = read_template_subjects(meta / f"{which}_1N_probe_mixed.csv")
    faces = _table(meta / f"{which}_face_tid_mid.txt", 3, "image_name template_id media_id")
    points = _table(meta / f"{which}_name_5pts_score.txt", 12, "image_name, 10 landmark coordinates, score")
    landmark_of = {row[0]: row[1:] for row in points}
    missing = [row[0] for row in faces if row[0] not in landmark_of]
    if missing:
        raise DataError(f"{meta}/{which}_name_5pts_score.txt has no landmarks for {missing[0]}")
    templates = np.array([int(row[1]) for row in faces], dtype=np.int64)
    wanted = np.concatenate([*(g[0] for g in galleries.values()), probes[0]])
    absent = np.setdiff1d(wanted, templates)
    if len(absent):
        raise DataError(
            f"{meta}/{which}_face_tid_mid.txt has no image of template {absent[0]} (named in the 1:N lists)"
        )
    keep = np.isin(templates, wanted)  # only the images of the 1:N templates are embedded
    rows = [row for row, k in zip(faces, keep, strict=True) if k]
    values = np.array([landmark_of[row[0]] for row in rows], dtype=np.float64).reshape(len(rows), 11)
    fingerprint = digest(
        {"ijb_1n": which, "meta": [path_sha256(meta / f"{which}_{n}.txt") for n in ("face_tid_mid", "name_5pts_score")]}
        | {"templates": digest(sorted(int(t) for t in set(wanted)))}
    )
    return IdentificationSet(
        AlignedFaces([root / "loose_crop" / row[0] for row in rows], values[:, :10].reshape(-1, 5, 2), fingerprint),
        templates[keep],
        np.array([int(row[2]) for row in rows], dtype=np.int64),
        galleries,
        probes,
        values[:, 10],
    )


def split_identity_folder(
    root: str | Path, *, gallery_images: int = 1, unenrolled: float = 0.0, seed: int = 0
) -> IdentificationSet:
    """The gallery/probe split of the module docstring; every image is its own template."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"identity folder {root} does not exist (expected <root>/<identity>/<images>)")
    if gallery_images < 1 or not 0 <= unenrolled < 1:
        raise DataError(
            f"{root}: gallery_images must be >= 1 and unenrolled in [0, 1), got {gallery_images}, {unenrolled}"
        )
    identities = {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for d in sorted(root.iterdir())
        if d.is_dir()
    }
    identities = {k: v for k, v in identities.items() if v}
    if len(identities) < 2:
        raise DataError(f"{root}: {len(identities)} identity folders with images; a search needs two or more")
    names = sorted(identities)
    out = set(np.random.default_rng(seed).permutation(len(names))[: round(unenrolled * len(names))])
    paths, gallery, probes = [], ([], []), ([], [])
    for position, name in enumerate(names):
        enrolled = position not in out
        for k, image in enumerate(identities[name]):
            target = gallery if enrolled and k < gallery_images else probes
            target[0].append(len(paths))
            target[1].append(name)
            paths.append(image)
    if not probes[0]:
        raise DataError(
            f"{root}: no probe images; each identity needs more than gallery_images={gallery_images} images"
        )
    ids = np.arange(len(paths), dtype=np.int64)
    return IdentificationSet(
        ImageFiles(paths, root=root),
        ids,
        ids.copy(),
        {"gallery": (np.array(gallery[0], dtype=np.int64), np.array(gallery[1], dtype=object))},
        (np.array(probes[0], dtype=np.int64), np.array(probes[1], dtype=object)),
    )


def load_identification_set(path: str | Path, *, layout: str = "folder", which: str = "ijbc", **options):
    if layout == "ijb":
        return load_ijb_1n(path, which, gallery=options.get("gallery", "each"))
    if layout == "folder":
        return split_identity_folder(path, **{k: v for k, v in options.items() if k != "gallery"})
    raise DataError(f"identification layout {layout!r}: use folder (an identity folder) or ijb (IJB-B/C 1:N)")

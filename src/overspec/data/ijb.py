"""IJB-B / IJB-C 1:1 verification data in the layout insightface's evaluation uses:

<root>/meta/<ijbb|ijbc>_face_tid_mid.txt        image_name template_id media_id
<root>/meta/<ijbb|ijbc>_template_pair_label.txt template_1 template_2 label(1 genuine / 0 impostor)
<root>/meta/<ijbb|ijbc>_name_5pts_score.txt     image_name x1 y1 ... x5 y5 detector_score
<root>/loose_crop/<image_name>
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overspec._hashing import digest, path_sha256
from overspec.data.images import ImageSource, open_rgb
from overspec.errors import DataError

# ArcFace's canonical 5-point positions in a 112 x 112 crop (eyes, nose tip, mouth corners)
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2 x 3 matrix of the least-squares similarity (rotation, uniform scale, translation) taking
    ``source`` points onto ``target``: Umeyama (1991), eq. 40-42, the estimate behind insightface's
    ``norm_crop`` (scikit-image's ``SimilarityTransform``). Reflections are excluded."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    s, t = source - mu_s, target - mu_t
    covariance = t.T @ s / len(source)
    u, d, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(d) @ sign) / s.var(axis=0).sum()
    return np.hstack([scale * rotation, (mu_t - scale * rotation @ mu_s)[:, None]])


def align_face(image, landmarks: np.ndarray, size: int = 112):
    """Warp a PIL image so its five landmarks land on ArcFace's template (``size`` x ``size``), as insightface
    does (``face_align.norm_crop``, and ``Embedding.get`` of ``recognition/_evaluation_/ijb/ijb_11.py``):
    ``cv2.warpAffine`` with bilinear interpolation and a black border. OpenCV puts pixel centres at integer
    coordinates, PIL at +0.5, so PIL's own affine differs by up to half a pixel (a mean of 5.6/255 per pixel)."""
    try:
        import cv2
    except ImportError:
        raise DataError(
            "aligning IJB faces as insightface does needs OpenCV: pip install 'overspec[align]' "
            "(opencv-python-headless)"
        ) from None
    from PIL import Image

    matrix = similarity_transform(landmarks, ARCFACE_112 * size / 112)
    pixels = cv2.warpAffine(np.asarray(image.convert("RGB")), matrix, (size, size), borderValue=0.0)
    return Image.fromarray(pixels)


class AlignedFaces(ImageSource):
    def __init__(self, paths: list[Path], landmarks: np.ndarray, fingerprint: str) -> None:
        self.paths, self.landmarks, self._fingerprint = paths, landmarks, fingerprint

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int):
        return align_face(open_rgb(self.paths[index], str(self.paths[index])), self.landmarks[index])

    @property
    def fingerprint(self) -> str:
        return self._fingerprint


@dataclass
class IJBProtocol:
    images: AlignedFaces
    templates: np.ndarray  # per image
    media: np.ndarray  # per image
    detector_scores: np.ndarray  # per image
    pairs: np.ndarray  # (P, 2) template ids
    genuine: np.ndarray  # (P,) bool


def _table(path: Path, columns: int, what: str) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"IJB meta file {path} ({what}) does not exist")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    for number, row in enumerate(rows, start=1):
        if len(row) != columns:
            raise DataError(f"{path}, line {number}: expected {columns} fields ({what}), got {len(row)}")
    return rows


def load_ijb(root: str | Path, which: str = "ijbc") -> IJBProtocol:
    root, which = Path(root), which.lower()
    meta = root / "meta"
    faces = _table(meta / f"{which}_face_tid_mid.txt", 3, "image_name template_id media_id")
    points = _table(meta / f"{which}_name_5pts_score.txt", 12, "image_name, 10 landmark coordinates, score")
    pairs = _table(meta / f"{which}_template_pair_label.txt", 3, "template_1 template_2 label")
    landmark_of = {row[0]: row[1:] for row in points}
    missing = [row[0] for row in faces if row[0] not in landmark_of]
    if missing:
        raise DataError(
            f"{meta}/{which}_name_5pts_score.txt has no landmarks for {missing[0]} ({len(missing)} images lack them)"
        )
    values = np.array([landmark_of[row[0]] for row in faces], dtype=np.float64)
    paths = [root / "loose_crop" / row[0] for row in faces]
    fingerprint = digest(
        {"ijb": which, "meta": [path_sha256(meta / f"{which}_{n}.txt") for n in ("face_tid_mid", "name_5pts_score")]}
    )
    pair_array = np.array([[int(a), int(b)] for a, b, _ in pairs], dtype=np.int64)
    labels = np.array([int(c) for _, _, c in pairs])
    if not np.isin(labels, (0, 1)).all():
        raise DataError(f"{meta}/{which}_template_pair_label.txt: labels must be 0 or 1")
    return IJBProtocol(
        images=AlignedFaces(paths, values[:, :10].reshape(-1, 5, 2), fingerprint),
        templates=np.array([int(row[1]) for row in faces]),
        media=np.array([int(row[2]) for row in faces]),
        detector_scores=values[:, 10],
        pairs=pair_array,
        genuine=labels.astype(bool),
    )

"""Face verification on insightface ``.bin`` pairs or a pair list (``data/pair_list.py``, e.g. LFW's ``pairs.txt``):
10-fold accuracy (insightface's protocol, which FRoundation reports), plus ROC AUC, EER and TAR@FAR of the cosine
similarities."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overspec.data.images import Flipped
from overspec.data.pair_list import load_verification_pairs
from overspec.features import extract_features
from overspec.metrics import eer, kfold_accuracy, roc_auc, tar_at_far
from overspec.metrics.conventions import convention_for, convention_metrics
from overspec.models.encoder import Encoder
from overspec.protocols.result import ProtocolResult

FAR_TARGETS = (1e-4, 1e-3, 1e-2, 1e-1)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def face_embeddings(encoder: Encoder, images, *, flip: bool, name: str, **options) -> np.ndarray:
    """Embeddings of ``images``; with ``flip`` the raw embeddings of each image and its mirror are summed
    (insightface's test-time augmentation; callers normalise afterwards)."""

    def embed(source, tag: str) -> np.ndarray:
        return extract_features(encoder, source, description=f"{encoder.name} on {name}{tag}", **options)

    features = embed(images, "")
    return features + embed(Flipped(images), " (flipped)") if flip else features


def pair_scores(features: np.ndarray) -> np.ndarray:
    """Cosine similarity of rows 2i and 2i+1."""
    e = _normalise(features.astype(np.float64))
    return np.einsum("ij,ij->i", e[0::2], e[1::2])


def check_face_verification(encoder: Encoder, path: str | Path, *, convention: str = "iso", **_) -> None:
    """Every check that needs no image decoded: the convention, and the pairs (a ``.bin``, or a pair list whose
    images all exist: ``data/pair_list.py``)."""
    convention_for(convention, "verification")
    load_verification_pairs(path)


def run_face_verification(
    encoder: Encoder,
    bin_path: str | Path,
    *,
    flip: bool = True,
    folds: int = 10,
    convention: str = "iso",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """Embed every image (and its mirror when ``flip``: the two embeddings are summed, as insightface
    does), score each pair by cosine similarity, and report k-fold accuracy with the threshold chosen on
    the other folds, with AUC, EER and TAR@FAR (``convention: insightface``: its 10-fold accuracy on a distance
    grid and its TAR@FAR rule, ``metrics/conventions/insightface.py``)."""
    convention_for(convention, "verification")  # an unknown convention fails before any image is read
    images, genuine = load_verification_pairs(bin_path)
    name = Path(bin_path).stem
    features = face_embeddings(
        encoder, images, flip=flip, name=name, batch_size=batch_size, num_workers=num_workers, progress=progress
    )
    scores = pair_scores(features)
    details = {"flip": flip, "folds": folds, "convention": convention}
    if convention != "iso":
        metrics = convention_metrics(convention, "verification", scores, genuine) | {"n_pairs": int(len(genuine))}
    else:
        folded = kfold_accuracy(scores, genuine, folds=folds)
        metrics = {
            "accuracy": folded.mean,
            "accuracy_std": folded.std,
            "auc": roc_auc(scores, genuine),
            "eer": eer(scores, genuine).eer,
            "n_pairs": int(len(genuine)),
        }
        metrics |= {f"tar_at_far_{t:g}": v for t, v in tar_at_far(scores, genuine, list(FAR_TARGETS)).items()}
        details["fold_thresholds"] = list(folded.thresholds)
    return ProtocolResult(
        "face_verification",
        name,
        encoder.name,
        metrics,
        "accuracy",
        details,
        {"score": scores, "genuine": np.asarray(genuine, dtype=bool)},  # per pair, in file order
    )

"""Face verification on insightface ``.bin`` pairs or a pair list (``data/pair_list.py``, e.g. LFW's ``pairs.txt``):
10-fold accuracy (insightface's protocol, which FRoundation reports), plus the convention's ROC AUC, EER and TAR@FAR
of the cosine similarities."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overspec.data.images import Flipped
from overspec.data.pair_list import load_verification_pairs
from overspec.features import extract_features
from overspec.metrics import kfold_accuracy
from overspec.metrics.conventions import ScoreSet, convention_for
from overspec.metrics.intervals import wilson_interval
from overspec.models.encoder import Encoder
from overspec.protocols.result import ProtocolResult, scored_result


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
    genuine = np.asarray(genuine, dtype=bool)
    pairs = np.arange(len(scores)).astype(str)  # a pair's id: its index in the .bin file
    data = ScoreSet.of("verification", scores, genuine, pairs=pairs)
    details: dict = {"flip": flip, "folds": folds}
    extra: dict[str, float] = {"n_pairs": int(len(genuine))}
    if convention_for(convention, "verification").name == "iso":  # k-fold accuracy: the protocol's, not iso's
        folded = kfold_accuracy(scores, genuine, folds=folds)
        extra |= {"accuracy": folded.mean, "accuracy_std": folded.std}
        details["fold_thresholds"] = list(folded.thresholds)
    result = scored_result(
        "face_verification",
        name,
        encoder.name,
        data,
        convention,
        "accuracy",
        extra=extra,
        details=details,
        samples={"score": scores, "genuine": genuine},  # per pair, in file order
    )
    if "accuracy" not in result.intervals:  # iso: the protocol's k-fold accuracy, a proportion of pairs
        # (a bootstrap of the ten folds costs ~4 ms per resample on 6,000 pairs: 4 s a cell; Wilson's is exact enough)
        result.intervals["accuracy"] = wilson_interval(result.metrics["accuracy"], len(genuine))
        result.interval_methods["accuracy"] = "Wilson score interval over pairs"
    return result

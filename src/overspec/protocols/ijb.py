"""IJB-B / IJB-C 1:1 template verification: media-wise mean, summed over media, L2-normalised
(insightface's protocol), and the convention's TAR at FAR = 1e-6 ... 1e-1 over millions of pairs in bounded
memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overspec.data.ijb import load_ijb
from overspec.errors import DataError
from overspec.metrics.conventions import ScoreSet
from overspec.models.encoder import Encoder
from overspec.protocols.face_verification import _normalise, face_embeddings
from overspec.protocols.result import ProtocolResult, scored_result


def template_features(
    features: np.ndarray, templates: np.ndarray, media: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(template ids, (T, D) L2-normalised features)``: the mean of each (template, media) group's image
    features (optionally weighted by ``weights``, e.g. detector scores), summed over a template's media."""
    import torch

    groups, group_of = np.unique(np.stack([templates, media], axis=1), axis=0, return_inverse=True)
    group_of = torch.from_numpy(group_of.ravel())
    rows = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    if weights is not None:
        rows = rows * torch.from_numpy(weights.astype(np.float32))[:, None]
    sums = torch.zeros(len(groups), rows.shape[1]).index_add_(0, group_of, rows)  # float32: no 2x copy
    means = sums.double() / torch.bincount(group_of, minlength=len(groups)).double()[:, None]
    template_ids, template_of = np.unique(groups[:, 0], return_inverse=True)
    pooled = torch.zeros(len(template_ids), rows.shape[1], dtype=torch.float64)
    pooled.index_add_(0, torch.from_numpy(template_of.ravel()), means)
    pooled /= pooled.norm(dim=1, keepdim=True)
    return template_ids, pooled.float().numpy()


def pair_scores(template_ids: np.ndarray, pooled: np.ndarray, pairs: np.ndarray, *, block: int = 2048) -> np.ndarray:
    """Cosine similarity of each template pair. Pairs are bucketed by their first template's block of
    ``block`` templates; each block's similarities to all templates come from one matrix product
    (block x T, a few hundred MB at most), from which the block's pairs are picked."""
    import torch

    index = np.searchsorted(template_ids, pairs)
    known = (index < len(template_ids)) & (template_ids[np.minimum(index, len(template_ids) - 1)] == pairs)
    if not known.all():
        row = int(np.flatnonzero(~known.all(axis=1))[0])
        raise DataError(f"pair {row} names template {pairs[row][~known[row]][0]}, which has no images")
    table = torch.from_numpy(pooled)
    bucket = index[:, 0] // block
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(bucket.max() + 2))
    scores = np.empty(len(pairs), np.float32)
    with torch.inference_mode():
        for b in range(len(bounds) - 1):
            chosen = order[bounds[b] : bounds[b + 1]]
            if len(chosen) == 0:
                continue
            similarities = (table[b * block : (b + 1) * block] @ table.T).numpy()
            scores[chosen] = similarities[index[chosen, 0] - b * block, index[chosen, 1]]
    return scores


def check_ijb(encoder: Encoder, root: str | Path, *, which: str = "ijbc", convention: str = "iso", **_) -> None:
    """Every check that needs no image: the convention, and insightface's layout (``data/ijb.py``) being there."""
    if convention not in ("iso", "insightface"):
        raise DataError(f"IJB scores follow convention iso or insightface, not {convention!r}")
    root, which = Path(root), which.lower()
    needed = [
        root / "meta" / f"{which}_{name}.txt" for name in ("face_tid_mid", "template_pair_label", "name_5pts_score")
    ]
    missing = [p for p in [*needed, root / "loose_crop"] if not p.exists()]
    if missing:
        raise DataError(
            f"{missing[0]} does not exist: an IJB folder holds meta/{which}_*.txt and loose_crop/ (insightface's "
            "layout); set which: ijbb or ijbc to match its files"
        )


def run_ijb(
    encoder: Encoder,
    root: str | Path,
    *,
    which: str = "ijbc",
    convention: str = "iso",
    flip: bool | None = None,
    detector_weighting: bool | None = None,
    norm_score: bool = True,
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """TAR@FAR of ``encoder`` on IJB-B or IJB-C 1:1 (headline: TAR at FAR = 1e-4).

    ``convention: insightface`` is ``recognition/_evaluation_/ijb/ijb_11.py``'s evaluation: by default the flip
    test (embeddings of an image and its mirror summed), image features weighted by the detector's face score,
    norm score kept (``norm_score``: image features not normalised before pooling), and TAR read at the nearest
    FAR of the dropped ROC. ``iso`` defaults to no flip and no weighting, and takes the highest TAR with FAR at or
    below the target."""
    check_ijb(encoder, root, which=which, convention=convention)
    insightface = convention == "insightface"
    flip = insightface if flip is None else flip
    detector_weighting = insightface if detector_weighting is None else detector_weighting
    protocol = load_ijb(root, which)
    features = face_embeddings(
        encoder,
        protocol.images,
        flip=flip,
        name=which,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    if not norm_score:  # insightface's use_norm_score=False: every image counts alike in its media's mean
        features = _normalise(features)
    weights = protocol.detector_scores if detector_weighting else None
    ids, pooled = template_features(features, protocol.templates, protocol.media, weights)
    scores = pair_scores(ids, pooled, protocol.pairs)
    genuine = np.asarray(protocol.genuine, dtype=bool)
    return scored_result(
        "ijb",
        which,
        encoder.name,
        ScoreSet.of("verification", scores, genuine),
        convention,
        "tar_at_far_0.0001",
        extra={"n_pairs": int(len(scores))},
        details={"flip": flip, "detector_weighting": detector_weighting, "norm_score": norm_score},
    )

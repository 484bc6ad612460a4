"""insightface .bin pairs and IJB templates on real face photos, against independent computations."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.data import lfw_faces, write_bin, write_ijb
from overspec.data.ijb import ARCFACE_112, load_ijb, similarity_transform
from overspec.errors import DataError
from overspec.models import load_model
from overspec.protocols import PROTOCOLS
from overspec.protocols.ijb import pair_scores, template_features


def test_bin_ten_fold_accuracy_equals_independent_computation(tmp_path, clip_file):
    bins, issame = write_bin(tmp_path / "lfw.bin")
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    result = PROTOCOLS.get("face_verification")(encoder, tmp_path / "lfw.bin", num_workers=0, progress=False)

    transform = encoder.preprocess.transform()
    images = [Image.open(io.BytesIO(b)).convert("RGB") for b in bins]
    with torch.no_grad():
        plain = encoder.encode_image(torch.stack([transform(im) for im in images])).numpy()
        mirrored = encoder.encode_image(
            torch.stack([transform(im.transpose(Image.FLIP_LEFT_RIGHT)) for im in images])
        ).numpy()
    e = plain + mirrored
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    scores = (e[0::2] * e[1::2]).sum(1)
    accuracies = []
    for fold in np.array_split(np.arange(len(issame)), 10):  # insightface: KFold(10, shuffle=False)
        train = np.setdiff1d(np.arange(len(issame)), fold)
        grid = np.unique(scores)
        best = max(grid, key=lambda t: (((scores[train] >= t) == issame[train]).mean(), -t))
        accuracies.append(((scores[fold] >= best) == issame[fold]).mean())
    assert result.metrics["accuracy"] == pytest.approx(np.mean(accuracies))
    assert result.metrics["n_pairs"] == 40 and result.headline_metric == "accuracy"

    # insightface's recognition/arcface_torch/eval/verification.py (calculate_roc), transcribed: squared L2
    # distance of the flip-summed, normalised embeddings, thresholds np.arange(0, 4, 0.01), np.less, np.argmax
    insight = PROTOCOLS.get("face_verification")(
        encoder, tmp_path / "lfw.bin", convention="insightface", num_workers=0, progress=False
    )
    dist = np.sum(np.square(e[0::2] - e[1::2]), 1)
    thresholds, folds = np.arange(0, 4, 0.01), np.array_split(np.arange(len(issame)), 10)
    reference = []
    for fold in folds:
        train = np.setdiff1d(np.arange(len(issame)), fold)
        train_acc = [(np.less(dist[train], t) == issame[train]).mean() for t in thresholds]
        reference.append((np.less(dist[fold], thresholds[np.argmax(train_acc)]) == issame[fold]).mean())
    assert insight.metrics["accuracy"] == pytest.approx(np.mean(reference), abs=1e-12)
    assert insight.details["convention"] == "insightface" and insight.headline_metric == "accuracy"


def test_malicious_bin_is_refused_without_running_anything(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "evil.bin", "wb") as f:
        pickle.dump(([b"x", b"y"], [Evil()]), f, protocol=2)
    from overspec.data.insightface_bin import read_bin

    with pytest.raises(DataError, match=r"refusing .*evil.bin: the file asks for the Python object (posix|os)\.system"):
        read_bin(tmp_path / "evil.bin")
    assert not marker.exists()
    with open(tmp_path / "odd.bin", "wb") as f:
        pickle.dump(([b"x"], [True]), f)
    with pytest.raises(DataError, match="2 images per pair|two images per pair"):
        read_bin(tmp_path / "odd.bin")


def test_similarity_transform_matches_scikit_image():
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(0)
    source = ARCFACE_112 * 1.7 + rng.normal(size=(5, 2)) * 3 + 40
    reference = SimilarityTransform()
    reference.estimate(source, ARCFACE_112)
    np.testing.assert_allclose(similarity_transform(source, ARCFACE_112), reference.params[:2], atol=1e-9)


def test_ijb_alignment_pooling_and_tar_at_far(tmp_path, clip_file):
    faces = lfw_faces(8, size=112)
    write_ijb(tmp_path / "ijbc", faces)
    protocol = load_ijb(tmp_path / "ijbc")
    aligned = np.asarray(protocol.images.load(0), dtype=float)
    assert np.abs(aligned[20:92, 20:92] - np.asarray(faces[0], dtype=float)[20:92, 20:92]).mean() < 12

    # template pooling against a loop over templates and media
    rng = np.random.default_rng(1)
    features = rng.normal(size=(len(protocol.templates), 16)).astype(np.float32)
    ids, pooled = template_features(features, protocol.templates, protocol.media)
    for k, template in enumerate(ids):
        total = sum(
            features[(protocol.templates == template) & (protocol.media == m)].mean(0)
            for m in np.unique(protocol.media[protocol.templates == template])
        )
        np.testing.assert_allclose(pooled[k], total / np.linalg.norm(total), atol=1e-6)
    scores = pair_scores(ids, pooled, protocol.pairs, block=3)
    expected = [pooled[list(ids).index(a)] @ pooled[list(ids).index(b)] for a, b in protocol.pairs]
    np.testing.assert_allclose(scores, expected, atol=1e-6)

    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    result = PROTOCOLS.get("ijb")(encoder, tmp_path / "ijbc", num_workers=0, progress=False)
    assert result.metrics["n_pairs"] == 64 and result.metrics["n_genuine"] == 10
    # independently: embed the aligned faces, pool, score. FAR <= 1e-4 needs 10,000 impostor pairs: with 54 it is
    # no number (it would read as FAR 0). FAR <= 0.1 accepts at most 5 of the 54, so TAR is the share of genuine
    # pairs scoring above the sixth highest impostor pair
    transform = encoder.preprocess.transform()
    with torch.no_grad():
        embedded = encoder.encode_image(
            torch.stack([transform(protocol.images.load(i)) for i in range(len(protocol.templates))])
        ).numpy()
    ids, pooled = template_features(embedded, protocol.templates, protocol.media)
    scores = pair_scores(ids, pooled, protocol.pairs)
    genuine = protocol.genuine.astype(bool)
    expected = float((scores[genuine] > np.sort(scores[~genuine])[-6]).mean())
    assert result.metrics["tar_at_far_0.1"] == pytest.approx(expected, abs=1e-12) and 0 < expected < 1
    assert result.metrics["tar_at_far_0.0001"] is None and result.headline_metric == "tar_at_far_0.0001"
    assert result.unresolved["tar_at_far_0.0001"] == "needs >= 10000 impostor pairs, has 54"
    low, high = result.intervals["tar_at_far_0.1"]
    assert low <= expected <= high and "bootstrap" in result.interval_method

    # insightface's recognition/_evaluation_/ijb/ijb_11.py, transcribed: flip test (embeddings of each image and
    # its mirror summed), norm score kept, features times the detector score, media means summed per template and
    # normalised, cosine per pair; TAR at the nearest FAR of scikit-learn's roc_curve, flipped
    from sklearn.metrics import roc_curve

    insight = PROTOCOLS.get("ijb")(encoder, tmp_path / "ijbc", convention="insightface", num_workers=0, progress=False)
    assert insight.details["flip"] and insight.details["detector_weighting"] and insight.details["norm_score"]
    with torch.no_grad():
        mirrored = encoder.encode_image(
            torch.stack([transform(protocol.images.load(i).transpose(0)) for i in range(len(protocol.templates))])
        ).numpy()
    weighted = (embedded + mirrored) * protocol.detector_scores[:, None]
    ids, pooled = template_features(weighted, protocol.templates, protocol.media)
    scores = pair_scores(ids, pooled, protocol.pairs)
    fpr, tpr, _ = roc_curve(genuine, scores)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    expected = tpr[min(zip(abs(fpr - 0.1), range(len(fpr)), strict=True))[1]]
    assert insight.metrics["tar_at_far_0.1"] == pytest.approx(expected, abs=1e-6)
    assert insight.metrics["tar_at_far_0.01"] is None  # 54 impostor pairs cannot resolve FAR 1 %


def test_ijb_alignment_equals_insightfaces_norm_crop_within_one_level():
    """insightface ``recognition/_evaluation_/ijb/ijb_11.py`` (``Embedding.get``), transcribed: scikit-image's
    SimilarityTransform onto the ArcFace template, then ``cv2.warpAffine(img, M, (112, 112), borderValue=0.0)``."""
    import cv2
    from skimage.transform import SimilarityTransform

    from overspec.data.ijb import align_face

    photo = Image.open(Path(__file__).resolve().parents[1] / "examples" / "images" / "astronaut.jpg").convert("RGB")
    landmarks = np.array([[180.4, 112.9], [242.0, 108.1], [215.2, 150.3], [188.7, 183.0], [238.1, 180.4]])
    template = np.array(
        [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366], [33.5493, 92.3655], [62.7299, 92.2041]]
    )
    template[:, 0] += 8.0
    transform = SimilarityTransform()
    transform.estimate(landmarks, template)
    expected = cv2.warpAffine(np.asarray(photo), transform.params[0:2, :], (112, 112), borderValue=0.0)
    ours = np.asarray(align_face(photo, landmarks)).astype(int)
    assert np.abs(ours - expected).max() <= 1 and ours.std() > 20  # a face, not a blank crop

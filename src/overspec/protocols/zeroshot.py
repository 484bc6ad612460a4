"""Zero-shot classification with prompt ensembles (Radford et al. 2021, sec. 3.1.4)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from overspec._hashing import digest
from overspec.data.labelled import LabelledDataset
from overspec.errors import ModelError
from overspec.features import extract_features
from overspec.features.cache import cached_text_array
from overspec.models.encoder import Encoder
from overspec.models.prompt_rule import CLIP_RULE, PromptRule
from overspec.protocols.result import ProtocolResult, classification_metrics, correct_top1


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def zero_shot_weights(
    encode_text: Callable[[list[str]], np.ndarray],
    classnames: list[str],
    templates: list[str],
    *,
    batch_size: int = 256,
) -> np.ndarray:
    """``(D, C)`` classifier: per class, embed every template filled with the class name, L2-normalise each,
    average, and renormalise (OpenAI's prompt-ensemble recipe, as open_clip's ``build_zero_shot_classifier``)."""
    texts = [t.replace("{c}", name) for name in classnames for t in templates]
    embedded = np.concatenate([encode_text(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])
    per_class = _normalise(embedded.astype(np.float64)).reshape(len(classnames), len(templates), -1).mean(axis=1)
    return _normalise(per_class).T.astype(np.float32)


def zero_shot_logits(image_features: np.ndarray, weights: np.ndarray, rule: PromptRule = CLIP_RULE) -> np.ndarray:
    """``100 · normalise(features) @ weights``: CLIP's logits (the scale does not change any ranking); a sigmoid
    model's (SigLIP) its own ``exp(logit_scale) · cos + logit_bias`` (``models/prompt_rule.py``)."""
    return rule.logits(_normalise(image_features.astype(np.float32)) @ weights)


def text_classifier(encoder: Encoder, classnames: list[str], templates: list[str]) -> np.ndarray:
    """Zero-shot weights of ``encoder``'s text tower, cached by tower fingerprint, class names and templates."""
    text_encoder = _text_tower(encoder)
    key = digest({"text": text_encoder.text_fingerprint, "classnames": classnames, "templates": templates})

    def encode(texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return text_encoder.encode_text(texts).float().cpu().numpy()

    return cached_text_array(key, lambda: zero_shot_weights(encode, classnames, templates))


def check_text_tower(encoder: Encoder) -> None:
    """Zero-shot can run: the encoder has a text tower, or a base whose files are here to borrow one from."""
    if encoder.has_text:
        return
    base = encoder.settings.get("base")
    if base is None:
        raise ModelError(
            f"{encoder.name} ({encoder.family}) has no text tower; zero-shot needs one: set `base:` in its spec to "
            "the CLIP model it was fine-tuned from, or wrap an image classifier in a spec with `family: conse` "
            "(its label probabilities mapped into a text space)"
        )
    from overspec.models import require_files, resolve_spec

    require_files(resolve_spec(base))


def check_zeroshot(encoder: Encoder, dataset: LabelledDataset, *, split: str = "test", **_) -> None:
    """What zero-shot needs before any image is read: the split, and a text tower (``check_text_tower``)."""
    dataset.split(split)
    check_text_tower(encoder)


def _text_tower(encoder: Encoder) -> Encoder:
    """The encoder itself, or its base model when its own text tower is missing (the study pairs the
    fine-tuned image tower with the original text tower)."""
    check_text_tower(encoder)
    if encoder.has_text:
        return encoder
    from overspec.models import load_model

    return load_model(encoder.settings["base"], device=str(encoder.device))


def run_zeroshot(
    encoder: Encoder,
    dataset: LabelledDataset,
    *,
    split: str = "test",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """Zero-shot top-1, top-5 and mean per-class recall of ``encoder`` on ``dataset``'s ``split``. The classifier
    comes first: a model without a text tower fails before any image is read."""
    test = dataset.split(split)
    weights = text_classifier(encoder, dataset.classnames, dataset.templates)
    features = extract_features(
        encoder,
        test.images,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        description=f"{encoder.name} on {dataset.name}/{split}",
    )
    features = encoder.to_text_space(features)
    logits = zero_shot_logits(features, weights, encoder.prompt_rule)
    return ProtocolResult(
        "zeroshot",
        dataset.name,
        encoder.name,
        classification_metrics(logits, test.labels),
        dataset.headline_metric,
        {"n_templates": len(dataset.templates), "n_classes": len(dataset.classnames)},
        {"correct": correct_top1(logits, test.labels), "label": np.asarray(test.labels)},  # per-class recall
    )

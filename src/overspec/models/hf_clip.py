"""Hugging Face ``CLIPModel`` directories (or hub ids when online)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from overspec._hashing import digest, path_sha256
from overspec.errors import ModelError
from overspec.models.encoder import Encoder
from overspec.models.hub import hub_paths
from overspec.models.preprocess import CLIP_MEAN, CLIP_STD, Preprocess
from overspec.models.spec import ModelSpec

_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL resample codes in preprocessor_config.json


@dataclass
class HFClipEncoder(Encoder):
    tokenizer: Any = None

    @property
    def has_text(self) -> bool:
        return self.tokenizer is not None

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return _tensor(self.module.get_image_features(pixel_values=images.to(self.device))).float()

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return _tensor(self.module.get_text_features(input_ids=tokens)).float()


def _tensor(output: Any) -> torch.Tensor:
    """transformers 5 may wrap projected features in an output object."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def load_hf_clip(spec: ModelSpec) -> HFClipEncoder:
    """``weights``: a directory saved by ``CLIPModel.save_pretrained``; or ``hub`` (``weights: ORG/REPO``), a hub
    repository read through huggingface_hub's cache."""
    from transformers import CLIPModel

    if spec.hub:
        found = hub_paths(spec)
        folder = found[0].parent  # the cache's snapshot folder holds every file fetched
        files = [str(path) for path in found if path is not None]
    elif spec.weights:
        folder = Path(spec.weights)
        if not folder.is_dir():
            raise ModelError(
                f"{spec.label}: {spec.weights} is not a directory saved by CLIPModel.save_pretrained (a hub "
                "repository is written ORG/REPO)"
            )
        if not (folder / "config.json").exists():
            raise ModelError(
                f"{spec.label}: {folder} has no config.json; save the model with CLIPModel.save_pretrained"
            )
        files = [str(folder)]
    else:
        raise ModelError(f"{spec.label}: family hf_clip needs `weights` (a CLIPModel directory or ORG/REPO)")
    _check_clip(folder, spec)
    model = CLIPModel.from_pretrained(folder).float().eval()
    preprocess = _preprocess(folder, model).updated(spec.preprocess)
    fingerprint = digest(
        {"family": "hf_clip", "files": [path_sha256(f) for f in files], "preprocess": preprocess.model_dump()}
    )
    return HFClipEncoder(
        name=spec.label,
        family="hf_clip",
        arch=spec.arch or model.config.vision_config.model_type,
        preprocess=preprocess,
        fingerprint=fingerprint,
        module=model,
        tokenizer=_tokenizer(str(folder), model.config.text_config.max_position_embeddings),
    )


def _check_clip(folder: Path, spec: ModelSpec) -> None:
    """A transformers model of another kind (SigLIP, ...) is named by its open_clip form instead."""
    try:
        kind = json.loads((folder / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise ModelError(f"{spec.label}: {folder / 'config.json'} is not readable JSON ({exc})") from None
    if kind != "clip":
        raise ModelError(
            f"{spec.label}: {folder / 'config.json'} describes a {kind!r} model, not a transformers CLIP; name an "
            "open_clip or timm copy (open_clip:ARCH/TAG, hf-hub:ORG/REPO) or write a spec file"
        )


def _preprocess(folder: Path, model: torch.nn.Module) -> Preprocess:
    config_file = folder / "preprocessor_config.json"
    size = model.config.vision_config.image_size
    if not config_file.exists():
        return Preprocess(size=size, mean=CLIP_MEAN, std=CLIP_STD)
    cfg = json.loads(config_file.read_text())
    crop = cfg.get("crop_size", size)
    crop = crop.get("height", size) if isinstance(crop, dict) else crop
    shortest = cfg.get("size", crop)
    shortest = shortest.get("shortest_edge", crop) if isinstance(shortest, dict) else shortest
    return Preprocess(
        size=crop,
        crop_pct=min(1.0, crop / shortest),
        resize="shortest" if cfg.get("do_center_crop", True) else "squash",
        interpolation=_RESAMPLE.get(cfg.get("resample", 3), "bicubic"),
        mean=tuple(cfg.get("image_mean", CLIP_MEAN)),
        std=tuple(cfg.get("image_std", CLIP_STD)),
    )


def _tokenizer(location: str, context_length: int):
    """The directory's own tokenizer; else open_clip's copy of the same CLIP BPE (identical token ids)."""
    from transformers import CLIPTokenizer

    folder = Path(location)
    if (folder / "vocab.json").exists() or (folder / "tokenizer.json").exists():
        tokenizer = CLIPTokenizer.from_pretrained(location)

        def tokenize(texts: list[str]) -> torch.Tensor:
            return tokenizer(
                texts, padding="max_length", truncation=True, max_length=context_length, return_tensors="pt"
            )["input_ids"]

        return tokenize
    import open_clip

    return open_clip.tokenizer.SimpleTokenizer(context_length=context_length)

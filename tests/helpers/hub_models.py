"""Tiny random-weight models laid out exactly as their hub repositories are: each builder returns the repository's
files ({path: bytes}) for ``FakeHub.add(..., repo_type="model")``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

# open_clip_config.json of a tiny CLIP; SigLIP's sigmoid loss shows as `init_logit_bias` (its models get logit_bias)
TINY_OPEN_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1},
}
# preprocessing unlike CLIP's defaults, so a test can tell it was read from the repository
OPEN_CLIP_PREPROCESS = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bilinear"}


def folder_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _randomised(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():  # every tensor matters, biases and norms included
            param.add_(torch.randn(param.shape, generator=gen) * 0.02)
    return model.eval()


def timm_tag_repo(arch: str = "test_vit.r160_in1k", seed: int = 0) -> dict[str, bytes]:
    """timm's repository of a pretrained tag (``timm/NAME.TAG``): model.safetensors of the whole model."""
    import timm
    from safetensors.torch import save

    model = _randomised(timm.create_model(arch, pretrained=False), seed)
    return {"model.safetensors": save({k: v.contiguous() for k, v in model.state_dict().items()})}


def timm_hub_repo(folder: Path, seed: int = 1) -> dict[str, bytes]:
    """A timm model pushed as timm's ``push_to_hf_hub`` does (config.json with `architecture`, model.safetensors),
    with its own input size and normalisation in the pretrained config."""
    import timm
    from timm.models._hub import save_for_hf

    model = _randomised(timm.create_model("test_resnet", pretrained=False, num_classes=5), seed)
    model.pretrained_cfg = {
        **model.pretrained_cfg,
        "input_size": (3, 48, 48),
        "mean": (0.25, 0.5, 0.75),
        "std": (0.5, 0.5, 0.5),
        "crop_pct": 1.0,
    }
    save_for_hf(model, str(folder), safe_serialization=True)
    return folder_files(folder)


def open_clip_hub_repo(folder: Path, *, siglip: bool = False, seed: int = 2) -> dict[str, bytes]:
    """open_clip's hub layout: open_clip_config.json (model_cfg, preprocess_cfg) and open_clip_model.safetensors."""
    import open_clip
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model_cfg = {**TINY_OPEN_CLIP, **({"init_logit_bias": -10.0} if siglip else {})}
    config = {"model_cfg": model_cfg, "preprocess_cfg": OPEN_CLIP_PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    model = _randomised(open_clip.create_model(f"local-dir:{folder}", load_weights=False), seed)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    return folder_files(folder)


def hf_clip_repo(folder: Path, seed: int = 3) -> dict[str, bytes]:
    """A transformers CLIP repository: config.json, model.safetensors, preprocessor_config.json."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(seed)
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**layers, "num_hidden_layers": 1, "max_position_embeddings": 77},
        vision_config={**layers, "num_hidden_layers": 1, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).eval().save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder_files(folder)

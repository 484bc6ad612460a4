"""Putting peft LoRA adapters on an encoder's module, and the L2-SP pull towards the base weights."""

from __future__ import annotations

import re

import torch
from torch import nn

from overspec.errors import ModelError
from overspec.finetune.config import LoraConfig
from overspec.models.adapters import adapter_layout, prepare
from overspec.models.encoder import Encoder

DEFAULT_TARGETS = {
    "clip": ["q_proj", "v_proj"],  # the study's recipe: attention q and v of every image-tower block
    "timm": ["conv_pw", "conv_pwl", "qkv", "fc1", "fc2"],  # pointwise convs (EfficientNet), ViT attention/MLP
}


BLOCK = re.compile(r"(?:^|\.)(?:resblocks|layers|layer|blocks)\.(\d+)(?:\.|$)")  # a transformer/stage block


def _is_clip(encoder: Encoder) -> bool:
    return adapter_layout(encoder) == "split_attention" or hasattr(encoder.module, "vision_model")


def image_tower_prefix(encoder: Encoder) -> tuple[str, ...]:
    """Module-name prefixes of the image tower: ``visual.`` (open_clip), ``vision_model.`` and
    ``visual_projection.`` (transformers), or ``""`` (everything) for image-only models."""
    if hasattr(encoder.module, "vision_model"):
        return ("vision_model.", "visual_projection.")
    return ("visual.",) if _is_clip(encoder) else ("",)


def target_modules(encoder: Encoder, config: LoraConfig, frozen_blocks: list[int]) -> list[str]:
    """Full names of the modules LoRA adapts: the configured short names, image tower only, minus frozen blocks."""
    wanted = set(config.targets or DEFAULT_TARGETS["clip" if _is_clip(encoder) else "timm"])
    tower = image_tower_prefix(encoder)
    names = []
    for name, module in encoder.module.named_modules():
        if not name.startswith(tower) or name.rsplit(".", 1)[-1] not in wanted:
            continue
        if not isinstance(module, nn.Linear | nn.Conv2d):
            continue
        block = BLOCK.search(name)
        if block and int(block.group(1)) in frozen_blocks:
            continue
        names.append(name)
    if not names:
        raise ModelError(f"{encoder.name}: no module named {sorted(wanted)} to adapt; set lora.targets")
    return names


def add_lora(encoder: Encoder, config: LoraConfig, frozen_blocks: list[int]):
    """Wrap ``encoder.module`` with peft LoRA (in place); returns the PeftModel, for saving."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    prepare(encoder, adapter_layout(encoder))
    targets = target_modules(encoder, config, frozen_blocks)
    peft_config = PeftLoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        use_rslora=config.rslora,
        target_modules=targets,
    )
    return get_peft_model(encoder.module, peft_config)


def l2sp_penalty(model: nn.Module) -> torch.Tensor:
    """Σ ||ΔW||² over adapted layers, ΔW = scaling · B A: the squared distance of the adapted weights to the
    base (L2-SP, Li, Grandvalet & Davoine 2018, with the starting point as reference)."""
    from peft.tuners.lora import LoraLayer

    total = None
    for module in model.modules():
        if isinstance(module, LoraLayer) and "default" in module.lora_A:
            delta = module.get_delta_weight("default")
            total = delta.pow(2).sum() if total is None else total + delta.pow(2).sum()
    return total if total is not None else torch.zeros(())

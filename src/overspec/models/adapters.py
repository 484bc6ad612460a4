"""Loading-side adapter plumbing: the module layout an adapter was trained on, and scaling its update.
Training (``overspec.finetune``) builds on these; loading a model never imports the training package."""

from __future__ import annotations

from typing import TYPE_CHECKING

from overspec.models.encoder import Encoder

if TYPE_CHECKING:
    from torch import nn


def adapter_layout(encoder: Encoder) -> str:
    """``split_attention`` for open_clip CLIP towers (their fused attention is split first), else ``plain``."""
    return (
        "split_attention"
        if hasattr(encoder.module, "visual")
        and hasattr(encoder.module, "encode_text")
        and not hasattr(encoder.module, "vision_model")
        else "plain"
    )


def prepare(encoder: Encoder, layout: str) -> None:
    """Make ``encoder.module``'s layout match the one an adapter was trained on."""
    if layout == "split_attention":
        from overspec.models.split_attention import split_attention

        split_attention(encoder.module)


def scale_adapters(model: nn.Module, factor: float) -> None:
    """Multiply every LoRA update by ``factor`` (0 = the base model, 1 = the fine-tuned one). For a LoRA
    fine-tune this is exactly weight-space interpolation between base and specialist (WiSE-FT)."""
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name in module.scaling:
                module.scaling[name] *= factor

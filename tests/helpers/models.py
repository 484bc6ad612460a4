"""Tiny random-weight models, saved to disk exactly as real checkpoints are."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_clip(seed: int = 0, width: int = 64):
    """A random-weight open_clip CLIP small enough for CPU tests (OpenAI layout, 32 px, QuickGELU)."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.model.CLIP(
        embed_dim=32,
        vision_cfg=open_clip.model.CLIPVisionCfg(layers=2, width=width, patch_size=8, image_size=32),
        text_cfg=open_clip.model.CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
        quick_gelu=True,
    )
    with torch.no_grad():
        for param in model.parameters():  # non-zero biases too, so every tensor matters
            param.add_(torch.randn_like(param) * 0.02)
    return model.eval()


def to_split_lora_format(model: torch.nn.Module, r: int, seed: int) -> tuple[dict, dict]:
    """Save ``model`` the way the study's loralib does: split q/k/v/proj in every image-tower block, LoRA on
    q and v. Returns (checkpoint state dict, {block: (A_q, B_q, A_v, B_v)})."""
    gen = torch.Generator().manual_seed(seed)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    lora = {}
    blocks = len(model.visual.transformer.resblocks)
    for i in range(blocks):
        attn = f"visual.transformer.resblocks.{i}.attn"
        weight, bias = state.pop(f"{attn}.in_proj_weight"), state.pop(f"{attn}.in_proj_bias")
        d = weight.shape[1]
        for j, part in enumerate("qkv"):
            state[f"{attn}.{part}_proj.weight"] = weight[j * d : (j + 1) * d].clone()
            state[f"{attn}.{part}_proj.bias"] = bias[j * d : (j + 1) * d].clone()
        state[f"{attn}.proj.weight"] = state.pop(f"{attn}.out_proj.weight")
        state[f"{attn}.proj.bias"] = state.pop(f"{attn}.out_proj.bias")
        tensors = []
        for part in "qv":
            a = torch.randn(r, d, generator=gen) * 0.1
            b = torch.randn(d, r, generator=gen) * 0.1
            state[f"{attn}.{part}_proj.w_lora_A"], state[f"{attn}.{part}_proj.w_lora_B"] = a, b
            tensors += [a, b]
        lora[i] = tensors
    return state, lora


def tiny_madation(folder: Path) -> dict:
    """A MADation-format checkpoint (split-attention LoRA) with a random binary head, as an inline spec."""
    state, _ = to_split_lora_format(tiny_clip(seed=11), 2, seed=12)
    torch.save(state, folder / "mad_backbone.pth")
    torch.save({"linear.weight": torch.randn(2, 32), "linear.bias": torch.zeros(2)}, folder / "mad_header.pth")
    return {
        "family": "madation",
        "checkpoint": str(folder / "mad_backbone.pth"),
        "head": str(folder / "mad_header.pth"),
    }

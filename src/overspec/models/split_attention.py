"""open_clip's fused attention split into q/k/v/out linears, so LoRA can adapt q and v alone (the study's
recipe) through peft. The split module computes exactly what ``nn.MultiheadAttention`` does."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SplitAttention(nn.Module):
    def __init__(self, attention: nn.MultiheadAttention) -> None:
        super().__init__()
        d = attention.embed_dim
        self.num_heads, self.batch_first = attention.num_heads, attention.batch_first
        bias = attention.in_proj_bias is not None
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d, bias=bias) for _ in range(3))
        self.out_proj = nn.Linear(d, d, bias=attention.out_proj.bias is not None)
        with torch.no_grad():
            for i, linear in enumerate((self.q_proj, self.k_proj, self.v_proj)):
                linear.weight.copy_(attention.in_proj_weight[i * d : (i + 1) * d])
                if bias:
                    linear.bias.copy_(attention.in_proj_bias[i * d : (i + 1) * d])
            self.out_proj.weight.copy_(attention.out_proj.weight)
            if attention.out_proj.bias is not None:
                self.out_proj.bias.copy_(attention.out_proj.bias)

    def forward(self, query, key, value, need_weights=False, attn_mask=None, **_):
        if not self.batch_first:  # (L, N, D) -> (N, L, D)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, length, d = query.shape
        heads = self.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(n, -1, heads, d // heads).transpose(1, 2)

        q, k, v = split(self.q_proj(query)), split(self.k_proj(key)), split(self.v_proj(value))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, d))
        return (out if self.batch_first else out.transpose(0, 1)), None


def split_attention(model: nn.Module, prefix: str = "visual.") -> int:
    """Replace every ``nn.MultiheadAttention`` under ``prefix`` with ``SplitAttention``; returns how many."""
    replaced = 0
    for name, module in list(model.named_modules()):
        if not name.startswith(prefix):
            continue
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.MultiheadAttention):
                setattr(module, child_name, SplitAttention(child))
                replaced += 1
    return replaced

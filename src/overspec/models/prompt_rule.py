"""How a model with a text tower scores an image against prompts: CLIP's softmax, or SigLIP's sigmoid with a bias.

CLIP (contrastive softmax loss) compares prompts with each other: logits ``100 · cos`` (the scale CLIP_benchmark and
the study fix, OpenAI's learned one rounded), probabilities a softmax over the prompts. SigLIP (Zhai et al. 2023,
pairwise sigmoid loss) scores each image-prompt pair on its own: logit ``exp(logit_scale) · cos + logit_bias`` with
the model's own learned scale and bias, probability the logistic sigmoid of it, as open_clip's SigLIP models compute
in ``forward`` and the SigLIP paper's zero-shot evaluation uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class PromptRule:
    kind: Literal["softmax", "sigmoid"] = "softmax"
    scale: float = 100.0
    bias: float = 0.0

    def logits(self, cosine: np.ndarray) -> np.ndarray:
        """``scale · cos`` (+ ``bias`` for sigmoid models), the shape of ``cosine`` ((N, C) images x prompts)."""
        scaled = np.float32(self.scale) * cosine
        return scaled + np.float32(self.bias) if self.kind == "sigmoid" else scaled

    def probabilities(self, cosine: np.ndarray) -> np.ndarray:
        """Softmax over the prompts (last axis), or each pair's own sigmoid."""
        logits = self.logits(cosine).astype(np.float64)
        if self.kind == "sigmoid":
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)


CLIP_RULE = PromptRule()


def rule_of(module: object) -> PromptRule:
    """SigLIP's rule when the model has a learned ``logit_bias`` (open_clip builds one for sigmoid-loss models only,
    from ``init_logit_bias``), else CLIP's."""
    bias = getattr(module, "logit_bias", None)
    if bias is None:
        return CLIP_RULE
    return PromptRule("sigmoid", float(module.logit_scale.detach().exp()), float(bias.detach()))

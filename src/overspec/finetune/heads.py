"""Training heads: CosFace and ArcFace margins for identity classification, a linear head for MAD/PAD."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MarginHead(nn.Module):
    """Normalised-softmax head with an additive margin on the target class.

    CosFace (Wang et al. 2018): logit_y = s · (cos θ_y − m).  ArcFace (Deng et al. 2019): logit_y = s · cos(θ_y + m).
    Other classes keep s · cos θ. Without labels (inference) it returns s · cos θ for every class.
    """

    def __init__(
        self, embed_dim: int, n_classes: int, *, kind: str = "cosface", scale: float = 64.0, margin: float = 0.35
    ) -> None:
        super().__init__()
        self.kind, self.scale, self.margin = kind, scale, margin
        self.weight = nn.Parameter(torch.empty(n_classes, embed_dim))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosine = F.linear(F.normalize(embeddings), F.normalize(self.weight)).clamp(-1 + 1e-7, 1 - 1e-7)
        if labels is None:
            return self.scale * cosine
        target = cosine.gather(1, labels[:, None])
        if self.kind == "cosface":
            adjusted = target - self.margin
        else:
            adjusted = torch.cos(torch.acos(target) + self.margin)
        return self.scale * cosine.scatter(1, labels[:, None], adjusted)


class LinearHead(nn.Module):
    """MADation/FoundPAD's binary head: a linear layer on L2-normalised embeddings (saved as ``linear``)."""

    def __init__(self, embed_dim: int, n_classes: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(embed_dim, n_classes)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(F.normalize(embeddings))


def make_head(kind: str, embed_dim: int, n_classes: int, *, scale: float, margin: float) -> nn.Module:
    if kind in ("cosface", "arcface"):
        return MarginHead(embed_dim, n_classes, kind=kind, scale=scale, margin=margin)
    return LinearHead(embed_dim, n_classes)

"""The one interface every model family implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from overspec.models.preprocess import Preprocess
from overspec.models.prompt_rule import CLIP_RULE, PromptRule

if TYPE_CHECKING:
    import numpy as np
    import torch


@dataclass
class NativeHead:
    """A model's own classifier on top of its image embedding (e.g. a MAD/PAD binary head).

    ``module`` maps embeddings ``(N, D)`` to logits ``(N, len(classes))``; ``positive`` names the class
    whose softmax probability is the model's score (for MAD/PAD heads: ``"bonafide"``).
    """

    module: torch.nn.Module
    classes: list[str]
    positive: str | None = None

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.module(embeddings)

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Softmax probability of the positive class: higher means more ``positive``."""
        index = self.classes.index(self.positive or self.classes[-1])
        return self.logits(embeddings).softmax(dim=-1)[:, index]


@dataclass
class Encoder:
    """An image encoder with its own preprocessing, and optionally a text tower and a native head.

    ``encode_image`` takes a batch already passed through ``preprocess.transform()`` and returns
    unnormalised ``(N, D)`` float32 embeddings. ``fingerprint`` hashes weights, adapter, head and
    preprocessing, and keys the feature cache. ``module`` is the torch module adapters attach to.
    """

    name: str
    family: str
    arch: str
    preprocess: Preprocess
    fingerprint: str
    module: torch.nn.Module | None = None
    head: NativeHead | None = None  # the task head (e.g. MAD/PAD bona fide vs attack)
    settings: dict = field(default_factory=dict)
    classifier: NativeHead | None = None  # the label classifier it was trained with (e.g. ImageNet), if any
    heads: dict[str, NativeHead] = field(default_factory=dict)  # a merged model's task heads: task -> head

    def head_for(self, task: str) -> NativeHead | None:
        """The head a protocol of ``task`` (mad, pad) scores with: the task's own (a merge), else ``head``."""
        return self.heads.get(task, self.head)

    @property
    def has_text(self) -> bool:
        return False

    @property
    def prompt_rule(self) -> PromptRule:
        """How image-prompt similarities become logits and probabilities (``models/prompt_rule.py``)."""
        return CLIP_RULE

    @property
    def text_fingerprint(self) -> str:
        """What text embeddings depend on (keys the zero-shot classifier cache); the whole model by default."""
        return self.fingerprint

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} ({self.family}) has no text tower")

    def to_text_space(self, features: np.ndarray) -> np.ndarray:
        """Image features (from ``encode_image``) in the space text embeddings live in, for every protocol that
        compares images with prompts. CLIP trains both towers into one space, so this is the identity; ConSE
        maps through the classifier's label probabilities."""
        return features

    @property
    def device(self) -> torch.device:
        import torch

        if self.module is None:
            return torch.device("cpu")
        return next(self.module.parameters()).device

    def to(self, device: str | torch.device) -> Encoder:
        if self.module is not None:
            self.module.to(device)
        for head in (self.head, *self.heads.values()):
            if head is not None:
                head.module.to(device)
        return self

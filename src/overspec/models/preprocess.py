"""Image preprocessing as data: every encoder's resize/crop/normalise is a ``Preprocess`` value.

Being plain data makes it part of the model fingerprint and the feature-cache key, and lets a spec file
override any field. The study's families differ here: FRoundation uses CLIP's mean/std on faces resized
to 224; MADation resizes to 224 (bilinear), feeds OpenCV's BGR order and normalises with 0.5/0.5;
FoundPAD resizes to 224 (bilinear) with ImageNet mean/std.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


class Preprocess(BaseModel):
    """Resize, crop and normalise an RGB PIL image into a CHW float tensor.

    ``resize='shortest'`` scales the short side to ``size / crop_pct`` then centre-crops ``size`` (CLIP's
    eval transform with ``crop_pct=1``; timm's with its model's ``crop_pct``);
    ``resize='squash'`` scales straight to ``size`` x ``size`` (the biometric families' transform).
    ``mean``/``std`` apply to values in [0, 1]. ``channel_order='bgr'`` swaps channels before normalising,
    for models trained on OpenCV-decoded images.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # NaN in, NaN features out

    size: int = Field(224, gt=0)
    resize: Literal["shortest", "squash"] = "shortest"
    interpolation: Literal["bicubic", "bilinear", "nearest"] = "bicubic"
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    channel_order: Literal["rgb", "bgr"] = "rgb"
    crop_pct: float = Field(1.0, gt=0, le=1)

    @field_validator("std")
    @classmethod
    def _positive_std(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s <= 0 for s in value):
            raise ValueError("every std must be > 0")
        return value

    def updated(self, override: dict | None) -> Preprocess:
        """A copy with the fields of ``override`` (a spec's ``preprocess:`` block) replaced."""
        return self.model_validate({**self.model_dump(), **(override or {})}) if override else self

    def transform(self):
        """The torchvision transform: PIL image (any mode) -> normalised float tensor (3, size, size)."""
        from torchvision import transforms as T

        mode = getattr(T.InterpolationMode, self.interpolation.upper())
        steps = [_ToRGB()]
        if self.resize == "shortest":
            steps += [T.Resize(math.floor(self.size / self.crop_pct), interpolation=mode), T.CenterCrop(self.size)]
        else:
            steps += [T.Resize((self.size, self.size), interpolation=mode)]
        steps.append(T.ToTensor())
        if self.channel_order == "bgr":
            steps.append(_FlipChannels())
        steps.append(T.Normalize(self.mean, self.std))
        return T.Compose(steps)


class _ToRGB:
    def __call__(self, image):
        return image if image.mode == "RGB" else image.convert("RGB")


class _FlipChannels:
    def __call__(self, tensor):
        return tensor.flip(0)

"""Image preprocessing as data: every encoder's resize/crop/normalise is a ``Preprocess`` value.

Being plain data makes it part of the model fingerprint and the feature-cache key, and lets a spec file
override any field. The study's families differ here: FRoundation uses CLIP's mean/std on faces resized
to 224; MADation resizes to 224 (bilinear), feeds OpenCV's BGR order and normalises with 0.5/0.5;
FoundPAD resizes to 224 with albumentations' ``A.Resize`` (OpenCV ``INTER_LINEAR``: bilinear without
antialiasing, ``interpolation='opencv_linear'`` here) with ImageNet mean/std.
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
    for models trained on OpenCV-decoded images. ``interpolation='opencv_linear'`` resizes with OpenCV's
    ``cv2.resize(..., INTER_LINEAR)`` on the uint8 image, as albumentations' ``A.Resize`` does (no antialiasing:
    on a 450-pixel face crop, torchvision's antialiased bilinear differs by up to 40/255 per pixel); it needs
    opencv-python-headless (``pip install 'overspec[align]'``), and without it the transform stops with one line
    saying so rather than resizing another way.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # NaN in, NaN features out

    size: int = Field(224, gt=0)
    resize: Literal["shortest", "squash"] = "shortest"
    interpolation: Literal["bicubic", "bilinear", "nearest", "opencv_linear"] = "bicubic"
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

    @field_validator("interpolation")
    @classmethod
    def _opencv_squashes(cls, value: str, info) -> str:
        if value == "opencv_linear" and info.data.get("resize") != "squash":
            raise ValueError("interpolation 'opencv_linear' resizes straight to size x size: set resize: squash")
        return value

    def updated(self, override: dict | None) -> Preprocess:
        """A copy with the fields of ``override`` (a spec's ``preprocess:`` block) replaced."""
        return self.model_validate({**self.model_dump(), **(override or {})}) if override else self

    def transform(self):
        """The torchvision transform: PIL image (any mode) -> normalised float tensor (3, size, size)."""
        from torchvision import transforms as T

        steps = [_ToRGB()]
        if self.interpolation == "opencv_linear":
            steps.append(_OpenCVLinear(self.size))
        elif self.resize == "shortest":
            mode = getattr(T.InterpolationMode, self.interpolation.upper())
            steps += [T.Resize(math.floor(self.size / self.crop_pct), interpolation=mode), T.CenterCrop(self.size)]
        else:
            mode = getattr(T.InterpolationMode, self.interpolation.upper())
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


class _OpenCVLinear:
    """``cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)`` on the uint8 RGB array, as
    albumentations' ``A.Resize(size, size)`` runs it; returns a PIL image for the steps after it."""

    def __init__(self, size: int) -> None:
        self.size = size
        _cv2()  # fail when the transform is built, not in a loader worker

    def __call__(self, image):
        import numpy as np
        from PIL import Image

        array = np.asarray(image)
        if array.shape[:2] == (self.size, self.size):
            return image
        return Image.fromarray(_cv2().resize(array, (self.size, self.size), interpolation=_cv2().INTER_LINEAR))


def _cv2():
    try:
        import cv2
    except ImportError:
        from overspec.errors import ModelError

        raise ModelError(
            "interpolation 'opencv_linear' (the foundpad family's resize, as FoundPAD's albumentations runs it) "
            "needs OpenCV: pip install 'overspec[align]'"
        ) from None
    return cv2

"""Which blocks of an image tower give layer features, and the token each one uses.

A *locator* looks at an encoder's torch module and returns its layers in forward order, or None when the module is
not of its kind; the first that answers wins. Locators read the module's structure, not its family name, so the
study formats (an open_clip CLIP with split attention), peft, finetuned and interpolated models (the base's module
with other weights) and ConSE (the wrapped classifier's module) are found by the locator of what they contain.

Tokens: a ViT block gives its class token (open_clip's ``pool_type: avg`` and timm ViTs without one: the mean of
the patch tokens, prefix and register tokens left out); a CNN stage gives its output averaged over space. The last
layer, ``embedding``, is what ``encode_image`` returns: the features every protocol reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from overspec.errors import ModelError
from overspec.registry import Registry

if TYPE_CHECKING:
    import torch

    from overspec.models.encoder import Encoder

CLASS_TOKEN = "class token"
PATCH_MEAN = "mean of patch tokens"
STAGE_POOL = "stage output averaged over space"
EMBEDDING = "the model's embedding (encode_image)"


@dataclass(frozen=True)
class Layer:
    """One layer: its short name (``block 3``, ``stage 2``, ``embedding``), its module's dotted path in the
    encoder's module (empty for the embedding) and the token it contributes."""

    name: str
    module: str
    token: str
    prefix: int = 0  # tokens before the patch tokens (class, registers), for PATCH_MEAN
    layout: str = "NLD"  # NLD (batch first), LND (sequence first), NCHW or NHWC

    def reduce(self, output) -> torch.Tensor:
        """The ``(N, D)`` feature of this layer from its module's forward output."""
        x = output[0] if isinstance(output, tuple | list) else output
        expected = 4 if self.layout in ("NCHW", "NHWC") else 3
        if x.ndim != expected:
            raise ModelError(
                f"layer {self.name} ({self.module}) gave a {x.ndim}-D output, expected {expected}-D {self.layout}; "
                "this model's blocks are laid out otherwise than its locator assumes (features/layers.py)"
            )
        if self.layout == "LND":
            x = x.transpose(0, 1)
        if self.token == CLASS_TOKEN:
            return x[:, 0]
        if self.token == PATCH_MEAN:
            return x[:, self.prefix :].mean(dim=1)
        return x.mean(dim=(2, 3) if self.layout == "NCHW" else (1, 2))


LOCATORS: Registry[Callable[[torch.nn.Module], list[Layer] | None]] = Registry("layer locator")


def locate_layers(encoder: Encoder) -> list[Layer]:
    """The layers of ``encoder`` in forward order, the embedding last; an encoder without blocks is an error."""
    module = encoder.module
    if module is None:
        raise ModelError(
            f"{encoder.name} ({encoder.family}) has no torch module: layer features need forward hooks on its blocks"
        )
    for name in LOCATORS:
        found = LOCATORS.get(name)(module)
        if found:
            return [*found, Layer("embedding", "", EMBEDDING)]
    raise ModelError(
        f"{encoder.name} ({encoder.family}, {type(module).__name__}): no blocks found by any layer locator "
        f"({', '.join(LOCATORS.names())}); add one to overspec.features.layers.LOCATORS"
    )


def _sequence(module, attr: str):
    import torch

    child = getattr(module, attr, None)
    return child if isinstance(child, torch.nn.Sequential | torch.nn.ModuleList) and len(child) else None


def _vit_blocks(path: str, count: int, *, class_token: bool, prefix: int, layout: str = "NLD") -> list[Layer]:
    token = CLASS_TOKEN if class_token else PATCH_MEAN
    return [Layer(f"block {i}", f"{path}.{i}", token, prefix, layout) for i in range(count)]


def _stages(path: str, names: list[str], layout: str = "NCHW") -> list[Layer]:
    paths = [f"{path}.{name}" if path else name for name in names]
    return [Layer(f"stage {i}", module, STAGE_POOL, 0, layout) for i, module in enumerate(paths)]


@LOCATORS.register("hf_clip")
def _hf_clip(module) -> list[Layer] | None:
    """transformers ``CLIPModel`` (or a ``CLIPVisionModel``): ``vision_model.encoder.layers``, class token first."""
    vision = getattr(module, "vision_model", None)
    layers = _sequence(getattr(vision, "encoder", None), "layers") if vision is not None else None
    if layers is None:
        return None
    return _vit_blocks("vision_model.encoder.layers", len(layers), class_token=True, prefix=1)


@LOCATORS.register("open_clip")
def _open_clip(module) -> list[Layer] | None:
    """open_clip ``CLIP``: a ViT's ``visual.transformer.resblocks``, a ModifiedResNet's ``layer1``-``layer4``, or
    a timm trunk (``visual.trunk``, by the timm locator)."""
    visual = getattr(module, "visual", None)
    if visual is None:
        return None
    transformer = getattr(visual, "transformer", None)
    blocks = _sequence(transformer, "resblocks") if transformer is not None else None
    if blocks is not None:
        layout = "NLD" if getattr(transformer, "batch_first", True) else "LND"
        class_token = getattr(visual, "pool_type", "tok") != "avg"
        path = "visual.transformer.resblocks"
        return _vit_blocks(path, len(blocks), class_token=class_token, prefix=1, layout=layout)
    if all(hasattr(visual, f"layer{i}") for i in range(1, 5)):
        return _stages("visual", [f"layer{i}" for i in range(1, 5)])
    trunk = getattr(visual, "trunk", None)
    if trunk is not None:
        found = _timm(trunk)
        return [Layer(x.name, f"visual.trunk.{x.module}", x.token, x.prefix, x.layout) for x in found or []] or None
    return None


@LOCATORS.register("timm")
def _timm(module) -> list[Layer] | None:
    """timm models: transformer ``blocks`` (ViT, DeiT, EVA, ...: class token when the model has one, else the mean
    of the tokens after its prefix), or CNN stages (``stages``, EfficientNet's ``blocks``, ResNet's
    ``layer1``-``layer4``, Swin's ``layers``), pooled over space in the model's output format."""
    if not hasattr(module, "default_cfg") and not hasattr(module, "pretrained_cfg"):
        return None
    layout = "NHWC" if str(getattr(module, "output_fmt", "NCHW")) == "NHWC" else "NCHW"
    if hasattr(module, "num_prefix_tokens") and _sequence(module, "blocks") is not None:
        prefix = int(module.num_prefix_tokens)
        has_class = getattr(module, "cls_token", None) is not None
        return _vit_blocks("blocks", len(module.blocks), class_token=has_class, prefix=prefix)
    for attr in ("stages", "blocks", "layers"):
        found = _sequence(module, attr)
        if found is not None:
            return _stages(attr, [str(i) for i in range(len(found))], layout)
    if all(hasattr(module, f"layer{i}") for i in range(1, 5)):
        return _stages("", [f"layer{i}" for i in range(1, 5)], layout)
    return None

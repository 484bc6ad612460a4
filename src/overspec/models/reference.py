"""Model references as the ecosystem writes them, each turned into a model spec.

One registry of reference forms, tried in order: a spec file, a zoo name, ``hf-hub:ORG/REPO`` (open_clip's and
timm's form), ``open_clip:ARCH/TAG``, ``timm/NAME.TAG`` or a timm name (with or without its tag), and a Hugging
Face CLIP id ``ORG/REPO``. Every place a model is named (``eval``, ``embed``, experiment configs, ``finetune``
bases, sweeps, a spec's ``base:``) goes through ``resolve_reference``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from overspec.errors import ConfigError, ModelError, UnknownNameError
from overspec.models.spec import ModelSpec, is_hub_id, load_spec_file, spec_from_dict
from overspec.registry import Registry


@dataclass(frozen=True)
class ReferenceForm:
    """How a model may be named: ``claims`` says, without touching the hub, whether a text is written this way;
    ``spec`` builds the spec (reading the hub's cache, or the hub, where the form needs it)."""

    order: int
    written: str  # how the form is written, for messages
    example: str
    claims: Callable[[str], bool]
    spec: Callable[[str], ModelSpec]


FORMS: Registry[ReferenceForm] = Registry("model reference form")
HF_HUB = "hf-hub:"
OPEN_CLIP = "open_clip:"


def _forms() -> list[ReferenceForm]:
    return sorted((FORMS.get(name) for name in FORMS), key=lambda form: form.order)


def resolve_reference(text: str) -> ModelSpec:
    """The spec ``text`` names; an unknown reference lists the zoo's near matches and every accepted form."""
    for form in _forms():
        if form.claims(text):
            return form.spec(text)
    raise UnknownNameError(unknown_reference_message(text))


def is_reference(text: str) -> bool:
    """Whether ``text`` is written as one of the accepted forms (no hub access; the model may still not exist)."""
    return any(form.claims(text) for form in _forms())


def unknown_reference_message(text: str) -> str:
    from overspec.models import zoo

    forms = "; ".join(f"{form.written} (e.g. {form.example})" for form in _forms())
    return f"{zoo().unknown_message(text)}.{_open_clip_hint(text)} A model is named by one of: {forms}"


def _open_clip_hint(text: str) -> str:
    """``ViT-B-16`` or ``ViT-B-16:openai``, as open_clip's own functions take them, written as a reference."""
    import open_clip

    arch, _, tag = text.replace(":", "/").partition("/")
    tags = [t for a, t in open_clip.list_pretrained() if a == arch]
    if not tags:
        return ""
    return f" open_clip has {arch}: did you mean open_clip:{arch}/{tag if tag in tags else tags[0]}?"


# --- spec files and the zoo
def _is_spec_file(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or Path(text).is_file()


def _spec_file(text: str) -> ModelSpec:
    if not Path(text).is_file():
        raise ConfigError(f"model spec file {text} does not exist")
    return load_spec_file(text)


def _in_zoo(text: str) -> bool:
    from overspec.models import zoo

    return text in zoo()


def _zoo_spec(text: str) -> ModelSpec:
    from overspec.models import zoo

    return zoo().get(text)


# --- hf-hub:ORG/REPO: open_clip or timm, by what the repository holds
def _claims_hf_hub(text: str) -> bool:
    return text.startswith(HF_HUB)


def _hf_hub_spec(text: str) -> ModelSpec:
    from overspec.fetch.remote import offline_reason
    from overspec.models.hub import HubFile, hub_files, missing_error

    repo = text.removeprefix(HF_HUB)
    if not is_hub_id(repo):
        raise ModelError(f"model reference {text!r}: write hf-hub:ORG/REPO (a hub repository id)")
    probe = ModelSpec(family="hf_clip", name=text, hub=repo)  # names the model in messages only
    open_clip_config, timm_config = hub_files(
        [HubFile(repo, ("open_clip_config.json",), optional=True), HubFile(repo, ("config.json",), optional=True)],
        spec=probe,
    )
    if open_clip_config is not None:
        return _spec(text, family="open_clip", hub=repo)
    architecture = _json(timm_config).get("architecture") if timm_config is not None else None
    if architecture:
        return _spec(text, family="timm", arch=architecture, hub=repo, pretrained=True)
    if timm_config is None and offline_reason() is not None:
        raise missing_error(probe, [HubFile(repo, ("open_clip_config.json", "config.json"))])
    raise ModelError(
        f"{text}: the repository holds neither open_clip_config.json (open_clip) nor a config.json with "
        f"`architecture` (timm); a transformers CLIP is named without the prefix ({repo}), anything else by a spec "
        "file"
    )


def _json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc}); fetch the repository again") from None
    return data if isinstance(data, dict) else {}


# --- open_clip:ARCH/TAG
def _claims_open_clip(text: str) -> bool:
    return text.startswith(OPEN_CLIP)


def _open_clip_spec(text: str) -> ModelSpec:
    import open_clip

    from overspec.registry import unknown_name_message

    arch, _, tag = text.removeprefix(OPEN_CLIP).partition("/")
    if arch not in open_clip.list_models():
        raise ModelError(f"{text}: {unknown_name_message('open_clip architecture', arch, open_clip.list_models())}")
    tags = [t for a, t in open_clip.list_pretrained() if a == arch]
    if tag not in tags:
        shown = ", ".join(f"{OPEN_CLIP}{arch}/{t}" for t in tags) or "none (give `weights:` in a spec file)"
        raise ModelError(f"{text}: open_clip has no pretrained tag {tag!r} for {arch}; published: {shown}")
    return _spec(text, family="open_clip", arch=arch, pretrained=tag)


# --- timm: timm/NAME.TAG, NAME.TAG, NAME (its default pretrained tag)
def _claims_timm(text: str) -> bool:
    name = text.removeprefix("timm/")
    if "/" in name or ":" in name or "*" in name or "?" in name or "[" in name:
        return False
    import timm

    return bool(timm.list_pretrained(name)) or name.split(".")[0] in timm.list_models()


def _timm_spec(text: str) -> ModelSpec:
    import timm

    name = text.removeprefix("timm/")
    if "." not in name:  # the default tag, written out: the fingerprint must not move with timm's default
        cfg = timm.models.get_pretrained_cfg(name)
        if cfg is None or not cfg.tag:
            raise ModelError(f"{text}: timm publishes no pretrained weights for {name}; give `weights:` in a spec")
        name = f"{name}.{cfg.tag}"
    if not timm.list_pretrained(name):
        tags = ", ".join(timm.list_pretrained(name.split(".")[0] + ".*")) or "none"
        raise ModelError(f"{text}: timm has no pretrained tag {name}; published: {tags}")
    return _spec(text, family="timm", arch=name, pretrained=True)


# --- a transformers CLIP on the hub: ORG/REPO
def _claims_hf_clip(text: str) -> bool:
    return is_hub_id(text) and not Path(text).exists()


def _hf_clip_spec(text: str) -> ModelSpec:
    return _spec(text, family="hf_clip", hub=text)


def _spec(text: str, **fields) -> ModelSpec:
    return spec_from_dict({"name": text, **fields}, origin=f"model reference {text}")


FORMS.register(
    "spec_file",
    ReferenceForm(
        0, "a spec file", "my_model.yaml, with the keys of README's model section", _is_spec_file, _spec_file
    ),
)
FORMS.register("zoo", ReferenceForm(1, "a zoo name (`overspec models`)", "clip-vit-b16.openai", _in_zoo, _zoo_spec))
FORMS.register(
    "hf_hub",
    ReferenceForm(
        2,
        "hf-hub:ORG/REPO (an open_clip or timm repository)",
        "hf-hub:timm/ViT-B-16-SigLIP",
        _claims_hf_hub,
        _hf_hub_spec,
    ),
)
FORMS.register(
    "open_clip", ReferenceForm(3, "open_clip:ARCH/TAG", "open_clip:ViT-B-16/openai", _claims_open_clip, _open_clip_spec)
)
FORMS.register(
    "timm",
    ReferenceForm(4, "timm/NAME.TAG or NAME.TAG (timm)", "vit_small_patch14_dinov2.lvd142m", _claims_timm, _timm_spec),
)
FORMS.register(
    "hf_clip",
    ReferenceForm(5, "ORG/REPO (a transformers CLIP)", "openai/clip-vit-base-patch16", _claims_hf_clip, _hf_clip_spec),
)

"""CLIP models through open_clip: by architecture name + pretrained tag or local file (family
``open_clip``), and OpenAI-format state dicts whose architecture is read off the tensors (``openai_clip``)."""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from overspec._hashing import digest, path_sha256
from overspec.errors import ModelError, OfflineError
from overspec.models.checkpoints import check_fit, load_state_dict, strip_wrapper_prefixes
from overspec.models.encoder import Encoder
from overspec.models.hub import hub_paths, open_clip_weights
from overspec.models.preprocess import CLIP_MEAN, CLIP_STD, Preprocess
from overspec.models.prompt_rule import PromptRule, rule_of
from overspec.models.skip_init import initialisation_skipped
from overspec.models.spec import ModelSpec
from overspec.registry import unknown_name_message

if TYPE_CHECKING:
    import torch


@dataclass
class OpenClipEncoder(Encoder):
    """An open_clip ``CLIP`` model: image tower for embeddings, text tower for zero-shot prompts."""

    tokenizer: Any = None

    @property
    def has_text(self) -> bool:
        return self.tokenizer is not None

    @property
    def prompt_rule(self) -> PromptRule:
        return rule_of(self.module)  # read live: an adapted or interpolated model carries its own scale and bias

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.module.encode_image(images.to(self.device)).float()

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return self.module.encode_text(tokens).float()


def preprocess_of(model: torch.nn.Module) -> Preprocess:
    """open_clip's own eval transform of ``model`` as a ``Preprocess`` value (CLIP's when it has none)."""
    image_size = model.visual.image_size
    cfg = getattr(model.visual, "preprocess_cfg", None) or {"size": image_size, "mean": CLIP_MEAN, "std": CLIP_STD}
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    return Preprocess(
        size=size,
        resize="squash" if cfg.get("resize_mode") == "squash" else "shortest",
        interpolation=cfg.get("interpolation", "bicubic"),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
    )


class LazyTokenizer:
    """open_clip's tokenizer for a model, built on first use: SigLIP's come from the hub (through its cache), and an
    image-only protocol must not need them."""

    def __init__(self, config_name: str | None, context_length: int, label: str) -> None:
        self.config_name, self.context_length, self.label = config_name, context_length, label
        self._tokenizer = None

    def __call__(self, texts: list[str]) -> torch.Tensor:
        if self._tokenizer is None:
            self._tokenizer = self._build()
        return self._tokenizer(texts)

    def _build(self):
        import open_clip

        if self.config_name is None:  # built from an OpenAI state dict: CLIP's BPE
            return open_clip.tokenizer.SimpleTokenizer(context_length=self.context_length)
        try:
            return open_clip.get_tokenizer(self.config_name, context_length=self.context_length)
        except OSError as exc:  # transformers' "not in the cache and offline" is an OSError
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise OfflineError(
                f"{self.label}: its text tokenizer cannot be loaded ({first}); on a machine that is online, sharing "
                f"huggingface_hub's cache, run `overspec fetch {self.label}` (or load it once there)"
            ) from None


def encoder_from_model(
    model: torch.nn.Module,
    spec: ModelSpec,
    *,
    arch: str,
    files: list[str],
    default: Preprocess | None = None,
    config_name: str | None = None,
) -> OpenClipEncoder:
    """Wrap a built open_clip model; the fingerprint covers weight files, settings and preprocessing.
    ``config_name``: what open_clip names its config by (an architecture or ``local-dir:FOLDER``), for the
    tokenizer."""
    model.eval()
    preprocess = (default or preprocess_of(model)).updated(spec.preprocess)
    tokenizer = LazyTokenizer(config_name, model.context_length, spec.label)
    fingerprint = digest(
        {
            "family": spec.family,
            "arch": arch,
            "files": [path_sha256(f) for f in files],
            "lora": spec.lora.model_dump() if spec.lora else None,
            "preprocess": preprocess.model_dump(),
        }
    )
    return OpenClipEncoder(
        name=spec.label,
        family=spec.family,
        arch=arch,
        preprocess=preprocess,
        fingerprint=fingerprint,
        module=model,
        tokenizer=tokenizer,
    )


def load_open_clip(spec: ModelSpec) -> OpenClipEncoder:
    """open_clip architecture ``arch`` with ``weights`` (a local file) or the hub's ``pretrained`` tag, or ``hub:``
    a repository holding open_clip_config.json and weights (what ``hf-hub:ORG/REPO`` names)."""
    import open_clip

    if spec.hub:
        config, weights = hub_paths(spec)
        config_name = f"local-dir:{config.parent}"  # the cache's snapshot folder: config and weights side by side
        with initialisation_skipped(), _quiet():  # every parameter is loaded next, strictly
            model = open_clip.create_model(config_name, load_weights=False)
        return _with_weights(model, spec, weights, arch=spec.hub, config_name=config_name)
    if not spec.arch:
        raise ModelError(f"{spec.label}: family open_clip needs `arch` (one of open_clip.list_models()) or `hub`")
    if spec.arch not in open_clip.list_models():
        message = unknown_name_message("open_clip architecture", spec.arch, open_clip.list_models())
        raise ModelError(f"{spec.label}: {message}")
    weights = _local_or_hub(spec)
    tag_cfg = open_clip.get_pretrained_cfg(spec.arch, spec.pretrained) if isinstance(spec.pretrained, str) else {}
    with initialisation_skipped():  # every parameter is loaded next, strictly
        model = open_clip.create_model(spec.arch, pretrained=None, force_quick_gelu=bool(tag_cfg.get("quick_gelu")))
    if tag_cfg:
        from open_clip.model import set_model_preprocess_cfg

        set_model_preprocess_cfg(model, tag_preprocess_cfg(model.visual.preprocess_cfg, tag_cfg))
    return _with_weights(model, spec, weights, arch=spec.arch, config_name=spec.arch)


def tag_preprocess_cfg(model_cfg: dict, tag_cfg: dict) -> dict:
    """The pretrained tag's own preprocessing (SigLIP: 0.5 mean/std, squash) over the architecture's, merged as
    ``open_clip.create_model(arch, pretrained=tag)`` merges them."""
    from open_clip.transform import merge_preprocess_dict

    return merge_preprocess_dict(model_cfg, tag_cfg)


@contextmanager
def _quiet():
    """open_clip warns on the root logger that the model it built has random weights: ours are loaded next."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _with_weights(model, spec: ModelSpec, weights: Path, *, arch: str, config_name: str) -> OpenClipEncoder:
    state = strip_wrapper_prefixes(load_state_dict(weights, what=f"{spec.label} weights"))
    check_fit(model.state_dict(), state, source=f"{spec.label} weights {weights}")
    model.load_state_dict(state, strict=True)
    return encoder_from_model(model, spec, arch=arch, files=[str(weights)], config_name=config_name)


def _local_or_hub(spec: ModelSpec) -> Path:
    if spec.weights:
        if Path(spec.weights).exists():
            return Path(spec.weights)
        if not spec.pretrained:
            raise ModelError(f"{spec.label}: weights file {spec.weights} does not exist")
    if not spec.pretrained:
        raise ModelError(f"{spec.label}: give `weights` (a local file) or `pretrained` (an open_clip tag)")
    return open_clip_weights(spec, place_at=spec.weights)


def build_from_openai_state_dict(state: dict[str, torch.Tensor], *, source: str) -> torch.nn.Module:
    """An fp32 open_clip CLIP whose architecture is inferred from an OpenAI-format state dict.

    open_clip's ``build_model_from_openai_state_dict`` infers the architecture as OpenAI's loader does and loads the
    tensors (strictly), with its cast to fp16 skipped.
    """
    import open_clip

    required = ("visual.conv1.weight", "text_projection", "positional_embedding", "ln_final.weight")
    absent = [k for k in required if k not in state]
    if absent:
        raise ModelError(
            f"{source} is not an OpenAI-format CLIP state dict: it lacks {', '.join(absent)} "
            "(an open_clip checkpoint needs family open_clip with `arch`; a Hugging Face one family hf_clip)"
        )
    exact = {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    # the builder's cast to fp16 before its strict load is skipped: the tensors then load exactly into fp32 (a cast
    # of every weight and a lossy fp16 load, undone by ``.float()`` and a second exact load, cost 0.7 s for ViT-B/32)
    castless = hasattr(open_clip.model, "convert_weights_to_fp16")
    keep_fp32 = patch.object(open_clip.model, "convert_weights_to_fp16", lambda model: None) if castless else None
    try:
        with initialisation_skipped(), keep_fp32 or nullcontext():  # every parameter is loaded by the builder
            model = open_clip.model.build_model_from_openai_state_dict(dict(exact), cast_dtype=None).float()
    except (RuntimeError, KeyError, ValueError) as exc:
        message = str(exc).split("\n")[0]
        raise ModelError(f"{source}: the tensors do not describe a CLIP open_clip can build: {message}") from None
    check_fit(model.state_dict(), exact, source=source)
    if not castless:  # a later open_clip loaded them in fp16: the exact tensors again
        model.load_state_dict(exact, strict=True)
    return model.eval()


def openai_arch_name(model: torch.nn.Module) -> str:
    """A readable architecture label such as ``ViT-B/16@224 (width 768, 12 layers)``."""
    visual = model.visual
    if hasattr(visual, "conv1"):
        patch = visual.conv1.kernel_size[0]
        width = visual.conv1.out_channels
        layers = len(visual.transformer.resblocks)
        size = visual.image_size[0] if isinstance(visual.image_size, tuple) else visual.image_size
        letter = {768: "B", 1024: "L", 1280: "H"}.get(width, f"w{width}")
        return f"ViT-{letter}/{patch}@{size}" + ("" if letter in "BLH" else f"-{layers}l")
    return type(visual).__name__


def load_openai_clip(spec: ModelSpec) -> OpenClipEncoder:
    """OpenAI CLIP from its ``.pt`` (TorchScript or state dict) or any OpenAI-format state dict."""
    if spec.weights and Path(spec.weights).exists():
        weights = Path(spec.weights)
    elif spec.arch and spec.pretrained:
        weights = open_clip_weights(spec, place_at=spec.weights)
    else:
        raise ModelError(
            f"{spec.label}: family openai_clip needs `weights`, an OpenAI-format CLIP file "
            f"(got {spec.weights or 'nothing'})"
        )
    state = strip_wrapper_prefixes(load_state_dict(weights, what=f"{spec.label} weights"))
    model = build_from_openai_state_dict(state, source=f"{spec.label} weights {weights}")
    return encoder_from_model(model, spec, arch=spec.arch or openai_arch_name(model), files=[str(weights)])

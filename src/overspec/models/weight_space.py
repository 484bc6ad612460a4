"""Models defined in weight space relative to a base model.

- ``finetuned``: a base plus a safetensors/state-dict file of the tensors a full fine-tune changed
  (what ``overspec finetune`` with ``method: full`` writes).
- ``interpolate``: two models of one architecture, ``base`` and ``target`` (e.g. CLIP and a fully fine-tuned
  CLIP from any trainer), mixed tensor by tensor.

Both read ``adapter_scale`` s and build W = W_base + s·(W_tuned − W_base): s = 0 is the base, s = 1 the
fine-tuned model, values between are WiSE-FT's mixing coefficient (Wortsman et al., CVPR 2022), s > 1
extrapolates. Integer buffers (e.g. BatchNorm's batch counter) are taken from the fine-tuned side.
"""

from __future__ import annotations

import torch

from overspec._hashing import digest, path_sha256
from overspec.errors import ModelError
from overspec.models.encoder import Encoder
from overspec.models.preprocess import Preprocess
from overspec.models.spec import ModelSpec


def mix(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """``base + scale·(tuned − base)`` for every tensor of ``tuned`` (names and shapes checked by the caller),
    in float32; ``torch.lerp`` returns the ends exactly at scale 0 and 1."""
    out = {}
    for name, value in tuned.items():
        start = base[name]
        if value.is_floating_point():
            out[name] = torch.lerp(start.float(), value.to(start.device).float(), scale).to(start.dtype)
        else:
            out[name] = value
    return out


def scaled_fingerprint(
    identity: dict,
    *,
    scale: float,
    head: str | None,
    preprocess: Preprocess,
    base: tuple[str, Preprocess],
    same_modules: bool = True,
) -> str:
    """The fingerprint of a base moved by ``scale`` times a fine-tuning update. At scale 0 the weights are the
    base's exactly (``torch.lerp`` and a zero-scaled LoRA return them bit for bit), so with the base's modules
    (no attention split into q/k/v, which changes the arithmetic), no head of its own and the base's
    preprocessing, the model *is* the base: same fingerprint, same cached features."""
    if scale == 0 and same_modules and not head and preprocess == base[1]:
        return base[0]
    return digest(
        {
            **identity,
            "scale": scale,
            "head": path_sha256(head) if head else None,
            "preprocess": preprocess.model_dump(),
        }
    )


def _module(encoder: Encoder, label: str, role: str) -> torch.nn.Module:
    if encoder.module is None:
        raise ModelError(f"{label}: {role} {encoder.name} ({encoder.family}) has no torch weights to mix")
    return encoder.module


def load_finetuned(spec: ModelSpec) -> Encoder:
    from overspec.models import load_model
    from overspec.models.checkpoints import check_fit, load_state_dict

    if spec.base is None or not spec.checkpoint:
        raise ModelError(f"{spec.label}: family finetuned needs `base` (the model it started from) and `checkpoint`")
    encoder = load_model(spec.base)
    module = _module(encoder, spec.label, "base")
    base = (encoder.fingerprint, encoder.preprocess)
    tuned = load_state_dict(spec.checkpoint, what=f"{spec.label} fine-tuned weights")
    state = module.state_dict()
    # only the tensors the file holds must fit (a full fine-tune saves the image tower, not the text tower)
    check_fit({k: state[k] for k in tuned if k in state}, tuned, source=f"{spec.label} checkpoint {spec.checkpoint}")
    module.load_state_dict(mix(state, tuned, spec.adapter_scale), strict=False)
    return _finish(encoder, spec, {"base": base[0], "weights": path_sha256(spec.checkpoint)}, base=base)


def load_interpolated(spec: ModelSpec) -> Encoder:
    from overspec.models import load_model
    from overspec.models.checkpoints import check_fit

    if spec.base is None or spec.target is None:
        raise ModelError(f"{spec.label}: family interpolate needs `base` and `target` (two models of one architecture)")
    base, tuned = load_model(spec.base), load_model(spec.target)
    split = _same_attention_layout(_module(base, spec.label, "base"), _module(tuned, spec.label, "target"))
    base_state, module = base.module.state_dict(), tuned.module
    tuned_state = module.state_dict()
    check_fit(base_state, tuned_state, source=f"{spec.label}: target {tuned.name} against base {base.name}")
    module.load_state_dict(mix(base_state, tuned_state, spec.adapter_scale))
    identity = {"base": base.fingerprint, "target": tuned.fingerprint}
    return _finish(tuned, spec, identity, base=(base.fingerprint, base.preprocess), same_modules=not split)


def _same_attention_layout(base: torch.nn.Module, tuned: torch.nn.Module) -> bool:
    """A merged LoRA CLIP keeps the split q/k/v attention it was trained with; split the other side too.
    Whether the base's attention is split (then the result is not the base's module at scale 0)."""
    from overspec.models.split_attention import split_attention

    def split(module: torch.nn.Module) -> bool:
        return any(".attn.q_proj." in name for name, _ in module.named_parameters())

    if split(tuned) and not split(base):
        split_attention(base)
        return True
    if split(base) and not split(tuned):
        split_attention(tuned)
    return False


def _finish(
    encoder: Encoder, spec: ModelSpec, identity: dict, *, base: tuple[str, Preprocess], same_modules: bool = True
) -> Encoder:
    """Head, preprocessing and fingerprint of a model mixed from ``base`` (its fingerprint and preprocessing)."""
    from overspec.models.split_attention_lora import head_from_file

    encoder.module.eval()
    if spec.head:
        encoder.head = head_from_file(spec.head, spec.label)
    encoder.preprocess = encoder.preprocess.updated(spec.preprocess)
    encoder.fingerprint = scaled_fingerprint(
        identity,
        scale=spec.adapter_scale,
        head=spec.head,
        preprocess=encoder.preprocess,
        base=base,
        same_modules=same_modules,
    )
    encoder.settings = {**encoder.settings, "base_family": encoder.family, "scale": spec.adapter_scale}
    encoder.name, encoder.family = spec.label, spec.family
    return encoder

"""Generic LoRA adapters saved by peft (``save_pretrained``) on top of any torch-based encoder.

The adapter's module names are relative to the base encoder's ``module`` (the open_clip ``CLIP``, the
``CLIPModel`` or the timm model), which is what ``overspec finetune`` wraps when it trains one.
"""

from __future__ import annotations

from pathlib import Path

from overspec._hashing import path_sha256
from overspec.errors import ModelError
from overspec.models.encoder import Encoder
from overspec.models.spec import ModelSpec
from overspec.models.weight_space import scaled_fingerprint


def load_peft(spec: ModelSpec) -> Encoder:
    from peft import PeftModel

    from overspec.models import load_model

    if spec.base is None:
        raise ModelError(f"{spec.label}: family peft needs `base` (a zoo name, a spec file or an inline spec)")
    folder = Path(spec.checkpoint or "")
    if not spec.checkpoint or not (folder / "adapter_config.json").exists():
        raise ModelError(
            f"{spec.label}: `checkpoint` must be a folder written by peft's save_pretrained "
            f"(with adapter_config.json); got {spec.checkpoint}"
        )
    from overspec.models.adapters import prepare, scale_adapters

    encoder = load_model(spec.base)
    if encoder.module is None:
        raise ModelError(f"{spec.label}: base {encoder.name} ({encoder.family}) has no torch module to adapt")
    base = (encoder.fingerprint, encoder.preprocess)
    prepare(encoder, spec.adapter_layout)
    try:
        adapted = PeftModel.from_pretrained(encoder.module, str(folder))
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(
            f"{spec.label}: adapter {folder} does not fit base {encoder.name}: {str(exc).splitlines()[0]}"
        ) from None
    if spec.adapter_scale != 1.0:
        scale_adapters(adapted, spec.adapter_scale)
    encoder.module = adapted.merge_and_unload().eval()
    if spec.head:
        from overspec.models.split_attention_lora import head_from_file

        encoder.head = head_from_file(spec.head, spec.label)
    encoder.preprocess = encoder.preprocess.updated(spec.preprocess)
    identity = {"base": base[0], "adapter": path_sha256(folder), "layout": spec.adapter_layout}
    encoder.fingerprint = scaled_fingerprint(
        identity,
        scale=spec.adapter_scale,
        head=spec.head,
        preprocess=encoder.preprocess,
        base=base,
        same_modules=spec.adapter_layout == "plain",
    )
    encoder.name = spec.label
    encoder.settings = {**encoder.settings, "adapter": str(folder), "base_family": encoder.family}
    encoder.family = "peft"
    return encoder

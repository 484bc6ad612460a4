"""Generic LoRA adapters saved by peft (``save_pretrained``) on top of any torch-based encoder.

The adapter's module names are relative to the base encoder's ``module`` (the open_clip ``CLIP``, the
``CLIPModel`` or the timm model), which is what ``overspec finetune`` wraps when it trains one.
"""

from __future__ import annotations

import warnings
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
        with warnings.catch_warnings():  # _check_applied below turns this warning into an error
            warnings.filterwarnings("ignore", message="Found missing adapter keys")
            adapted = PeftModel.from_pretrained(encoder.module, str(folder))
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(
            f"{spec.label}: adapter {folder} does not fit base {encoder.name}: {str(exc).splitlines()[0]}"
        ) from None
    _check_applied(adapted, folder, spec.label, encoder.name)
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


def _check_applied(adapted, folder: Path, label: str, base: str) -> None:
    """Every tensor of the adapter file went into a LoRA layer of the base, and every LoRA layer got one. peft
    only warns otherwise (a renamed prefix loads nothing and leaves the base's features unchanged)."""
    from peft.utils import get_peft_model_state_dict, load_peft_weights

    saved = set(load_peft_weights(str(folder), device="cpu"))
    wanted = set(get_peft_model_state_dict(adapted))
    unmatched, unfilled = sorted(saved - wanted), sorted(wanted - saved)
    if unmatched or unfilled:
        from overspec.models.checkpoints import summarise_keys

        parts = []
        if unmatched:
            parts.append(f"{len(unmatched)} of its {len(saved)} tensors match no module: {summarise_keys(unmatched)}")
        if unfilled:
            parts.append(f"{len(unfilled)} LoRA tensors of the base get no value: {summarise_keys(unfilled)}")
        raise ModelError(
            f"{label}: adapter {folder} does not apply to base {base}: {'; '.join(parts)}; it was saved from "
            "another model or its tensor names were changed: export it again from the model it was trained on"
        )

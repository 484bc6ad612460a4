"""What a fine-tune trains, and how it is saved: LoRA adapters (peft) or the image tower's own weights.

Each method exposes the same four things to the training loop: its trainable tensors, the L2-SP penalty
(squared distance of the adapted weights to the base's), the state to checkpoint, and the files + spec
fields of the finished model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from overspec.finetune.adapters import BLOCK, adapter_layout, add_lora, image_tower_prefix, l2sp_penalty
from overspec.finetune.config import FinetuneConfig
from overspec.models.encoder import Encoder
from overspec.registry import Registry


class LoraMethod:
    """peft LoRA on the configured modules; the model is saved as ``family: peft``."""

    def __init__(self, encoder: Encoder, config: FinetuneConfig) -> None:
        self.layout = adapter_layout(encoder)
        self.model = add_lora(encoder, config.lora, config.forgetting.freeze_blocks)
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    def penalty(self) -> torch.Tensor:
        return l2sp_penalty(self.model)

    def export(self, out: Path) -> dict:
        self.model.save_pretrained(str(out / "adapter"))
        _sorted_targets(out / "adapter" / "adapter_config.json")
        return {"family": "peft", "checkpoint": "adapter", "adapter_layout": self.layout}


def _sorted_targets(path: Path) -> None:
    """peft writes ``target_modules`` (a set) in the process's string-hash order: sorted, the same adapter is the
    same bytes, so the same fingerprint, from every process."""
    import json

    config = json.loads(path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


class FullMethod:
    """Every tensor of the image tower trains (minus frozen blocks); the trained tensors are saved as
    ``weights.safetensors`` and the model as ``family: finetuned`` (the base with those tensors replaced)."""

    def __init__(self, encoder: Encoder, config: FinetuneConfig) -> None:
        module = encoder.module
        prefix = image_tower_prefix(encoder)
        frozen = set(config.forgetting.freeze_blocks)
        module.requires_grad_(False)
        self.named = {}
        for name, param in module.named_parameters():
            block = BLOCK.search(name)
            if name.startswith(prefix) and not (block and int(block.group(1)) in frozen):
                param.requires_grad_(True)
                self.named[name] = param
        self.params = list(self.named.values())
        self.start = {name: p.detach().clone() for name, p in self.named.items()}

    def penalty(self) -> torch.Tensor:
        return sum((p - self.start[n]).pow(2).sum() for n, p in self.named.items())

    def export(self, out: Path) -> dict:
        from safetensors.torch import save_file

        # only the tensors training changed: a head the loss never reaches (an ImageNet classifier) stays the base's
        changed = {n: p for n, p in self.named.items() if not torch.equal(p.detach(), self.start[n])}
        save_file({n: p.detach().cpu().contiguous() for n, p in changed.items()}, str(out / "weights.safetensors"))
        return {"family": "finetuned", "checkpoint": "weights.safetensors"}


METHODS: Registry[type] = Registry("fine-tuning method")
METHODS.register("lora", LoraMethod)
METHODS.register("full", FullMethod)

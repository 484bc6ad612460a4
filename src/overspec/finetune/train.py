"""The fine-tuning loop: LoRA on the image tower, a task head, AdamW with separate learning rates, cosine
schedule with warm-up, optional forgetting control, a checkpoint every epoch and exact resume."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
import yaml

from overspec.finetune.adapters import adapter_layout, add_lora, l2sp_penalty
from overspec.finetune.config import FinetuneConfig
from overspec.finetune.data import Augmented, training_data
from overspec.finetune.heads import make_head


def _schedule(total: int, warmup: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def finetune(config: FinetuneConfig, *, log=print, progress: bool = True, on_epoch_end=None) -> Path:
    """Train, checkpointing every epoch (a rerun resumes after the last finished epoch), and write
    ``<output>/model.yaml``: a spec every overspec command accepts. ``on_epoch_end(epoch)`` is called after
    each epoch's checkpoint is on disk."""
    from overspec.models import load_model, resolve_spec

    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = load_model(config.base, device=device)
    layout = adapter_layout(encoder)
    images, labels, classes = training_data(config.task, config.data)
    peft_model = add_lora(encoder, config.lora, config.forgetting.freeze_blocks)
    encoder.module.eval()  # frozen statistics (BatchNorm) stay those of the base, so the adapter says it all
    with torch.no_grad():
        probe = Augmented(images, encoder.preprocess, False)[0][None].to(device)
        embed_dim = encoder.encode_image(probe).shape[1]
    kind = config.head.kind if config.task == "fr" else "linear"
    head = make_head(kind, embed_dim, len(classes), scale=config.head.scale, margin=config.head.margin).to(device)
    lora_params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": lora_params, "lr": config.lr_backbone}, {"params": head.parameters(), "lr": config.lr_head}],
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(labels) / config.batch_size)
    total = config.epochs * steps_per_epoch
    if config.max_steps:
        total = min(total, config.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(total, int(config.warmup_epochs * steps_per_epoch))
    )
    teacher, generic = _distillation(config, device)

    checkpoint = out / "checkpoint.pt"
    start_epoch, step = 0, 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        for param, value in zip(lora_params, state["lora"], strict=True):
            param.data.copy_(value)
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        log(f"resuming after epoch {state['epoch'] + 1} (step {step})")

    dataset = Augmented(images, encoder.preprocess, config.augment)
    label_tensor = torch.as_tensor(labels)
    use_amp = config.amp and device == "cuda"
    for epoch in range(start_epoch, config.epochs):
        if step >= total:
            break
        torch.manual_seed(config.seed * 100_003 + epoch)  # same draws on resume as in an uninterrupted run
        order = torch.randperm(len(labels)).tolist()
        running = 0.0
        for first in range(0, len(order), config.batch_size):
            if step >= total:
                break
            rows = order[first : first + config.batch_size]
            batch = torch.stack([dataset[i] for i in rows]).to(device)
            target = label_tensor[rows].to(device)
            with torch.autocast("cuda", torch.bfloat16, enabled=use_amp):
                embeddings = encoder.encode_image(batch)
                loss = torch.nn.functional.cross_entropy(head(embeddings.float(), target), target)
                if config.forgetting.l2sp_weight:
                    loss = loss + config.forgetting.l2sp_weight * l2sp_penalty(peft_model)
                if teacher is not None:
                    loss = loss + config.forgetting.distill_weight * _distill_loss(encoder, teacher, generic, step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            running += float(loss.detach())
        batches = max(1, math.ceil(len(order) / config.batch_size))
        if progress:
            log(f"epoch {epoch + 1}/{config.epochs}: loss {running / batches:.4f}, lr {scheduler.get_last_lr()[0]:.2e}")
        _save_atomic(
            {
                "lora": [p.detach().cpu() for p in lora_params],
                "head": head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "step": step,
            },
            checkpoint,
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    return _export(config, out, peft_model, head, kind, layout, resolve_spec(config.base))


def _distillation(config: FinetuneConfig, device: str):
    """The frozen base and a cycling batch source of generic images, when distillation is on."""
    if not config.forgetting.distill_weight:
        return None, None
    from overspec.data import ImageFiles, list_images
    from overspec.errors import ConfigError
    from overspec.models import load_model

    if not config.forgetting.distill_images:
        raise ConfigError("forgetting.distill_weight needs forgetting.distill_images, a folder of generic images")
    teacher = load_model(config.base, device=device)
    teacher.module.requires_grad_(False)
    return teacher, ImageFiles(list_images(config.forgetting.distill_images))


def _distill_loss(student, teacher, generic, step: int, batch: int = 16) -> torch.Tensor:
    """1 - cosine between student and frozen-base embeddings of a batch of generic images."""
    transform = teacher.preprocess.transform()
    rows = [(step * batch + i) % len(generic) for i in range(batch)]
    images = torch.stack([transform(generic.load(i)) for i in rows]).to(student.device)
    with torch.no_grad():
        target = teacher.encode_image(images)
    return 1 - torch.nn.functional.cosine_similarity(student.encode_image(images), target).mean()


def _export(config: FinetuneConfig, out: Path, peft_model, head, kind: str, layout: str, base_spec) -> Path:
    """Adapter (peft save_pretrained), head (safetensors) and ``model.yaml`` describing them."""
    from safetensors.torch import save_file

    peft_model.save_pretrained(str(out / "adapter"))
    spec = {
        "family": "peft",
        "name": config.name,
        "base": config.base,
        "checkpoint": "adapter",
        "adapter_layout": layout,
        "notes": f"overspec finetune: task {config.task}, preset {config.preset}, "
        f"forgetting {config.forgetting.model_dump()}",
    }
    head_state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    if kind == "linear":
        save_file(head_state, str(out / "head.safetensors"))
        spec["head"] = "head.safetensors"
    else:
        save_file(head_state, str(out / "margin_head.safetensors"))  # identity classifier: training only
    (out / "training.json").write_text(json.dumps(config.model_dump(), indent=1, default=str))
    path = out / "model.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path

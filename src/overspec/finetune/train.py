"""The fine-tuning loop: LoRA on the image tower, a task head, AdamW with separate learning rates, cosine
schedule with warm-up, optional forgetting control, a checkpoint every epoch and exact resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from overspec._atomic import atomic_open
from overspec._progress import progress_bar
from overspec.errors import TrainingError
from overspec.finetune.config import FinetuneConfig
from overspec.finetune.data import Augmented, training_data
from overspec.finetune.distributed import Distributed
from overspec.finetune.heads import make_head
from overspec.finetune.methods import METHODS


def _schedule(total: int, warmup: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _save_atomic(obj: dict, path: Path) -> None:
    with atomic_open(path) as f:
        torch.save(obj, f)


class _Step(torch.nn.Module):
    """One training step's loss as a module, so DistributedDataParallel can average its gradients."""

    def __init__(self, encoder, head, method, config: FinetuneConfig, teacher, generic) -> None:
        super().__init__()
        self.backbone, self.head = encoder.module, head
        self.encoder, self.method, self.config, self.teacher, self.generic = encoder, method, config, teacher, generic

    def forward(self, batch: torch.Tensor, target: torch.Tensor, weight: float, step: int) -> torch.Tensor:
        embeddings = self.encoder.encode_image(batch)
        loss = weight * F.cross_entropy(self.head(embeddings.float(), target), target, reduction="sum")
        forgetting = self.config.forgetting
        if forgetting.l2sp_weight:
            loss = loss + forgetting.l2sp_weight * self.method.penalty()
        if self.teacher is not None:
            loss = loss + forgetting.distill_weight * _distill_loss(self.encoder, self.teacher, self.generic, step)
        return loss


class _Batches(torch.utils.data.Dataset):
    """One epoch's batches (this rank's share of each), loaded by DataLoader workers when configured."""

    def __init__(self, dataset: Augmented, labels: torch.Tensor, batches: list[list[int]], seed: int) -> None:
        self.dataset, self.labels, self.batches, self.seed = dataset, labels, batches, seed

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int):
        rows = self.batches[k]
        images = torch.stack([self.dataset.load(i, seed=self.seed * 1_000_003 + i) for i in rows])
        return images, self.labels[rows]


def finetune(config: FinetuneConfig, *, log=print, progress: bool = True, on_epoch_end=None) -> Path:
    """Train, checkpointing every epoch (a rerun resumes after the last finished epoch), and write
    ``<output>/model.yaml``: a spec every overspec command accepts. ``on_epoch_end(epoch)`` is called after
    each epoch's checkpoint is on disk. Under ``torchrun``/``accelerate launch`` it trains data-parallel."""
    ranks = Distributed.from_env()
    try:
        return _train(config, ranks, log if ranks.main else (lambda line: None), progress, on_epoch_end)
    finally:
        ranks.close()


def _train(config: FinetuneConfig, ranks: Distributed, log, progress: bool, on_epoch_end) -> Path:
    from overspec.models import load_model

    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    device = ranks.device
    encoder = load_model(config.base, device=device)
    images, labels, classes = training_data(config.task, config.data)
    method = METHODS.get(config.method)(encoder, config)
    encoder.module.eval()  # frozen statistics (BatchNorm) stay those of the base, so the saved tensors say it all
    dataset = Augmented(images, encoder.preprocess, config.augment)
    with torch.no_grad():
        probe = dataset.load(0)[None].to(device)
        embed_dim = encoder.encode_image(probe).shape[1]
    kind = config.head.kind if config.task == "fr" else "linear"
    head = make_head(kind, embed_dim, len(classes), scale=config.head.scale, margin=config.head.margin).to(device)
    optimizer = torch.optim.AdamW(
        [{"params": method.params, "lr": config.lr_backbone}, {"params": head.parameters(), "lr": config.lr_head}],
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
        _check_same_config(config, state.get("config", {}), checkpoint)
        for param, value in zip(method.params, state["trainable"], strict=True):
            param.data.copy_(value)
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        log(f"resuming after epoch {state['epoch'] + 1} (step {step})")

    trainer = ranks.wrap(_Step(encoder, head, method, config, teacher, generic))
    label_tensor = torch.as_tensor(labels)
    use_amp = config.amp and device.startswith("cuda")
    for epoch in range(start_epoch, config.epochs):
        if step >= total:
            break
        torch.manual_seed(config.seed * 100_003 + epoch)  # same order on resume as in an uninterrupted run
        order = torch.randperm(len(labels)).tolist()
        batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        batches = [rows for rows in batches[: total - step] if len(rows) >= ranks.world]  # a share for every rank
        loader = torch.utils.data.DataLoader(
            _Batches(dataset, label_tensor, [ranks.share(rows) for rows in batches], config.seed * 100_003 + epoch),
            batch_size=None,
            num_workers=config.workers,
            pin_memory=device.startswith("cuda"),
        )
        running = 0.0
        with progress_bar(progress and ranks.main, f"epoch {epoch + 1}/{config.epochs}", len(batches)) as advance:
            for done, (rows, (batch, target)) in enumerate(zip(batches, loader, strict=True), start=1):
                weight = ranks.world / len(rows)  # this rank's summed loss, so the rank-average is the batch mean
                with torch.autocast("cuda", torch.bfloat16, enabled=use_amp):
                    loss = trainer(batch.to(device, non_blocking=True), target.to(device), weight, step)
                value = ranks.mean(float(loss.detach()))  # every rank sees the same value, so all stop together
                if not math.isfinite(value):
                    raise _diverged(config, value, step, epoch, checkpoint)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                running += value
                advance(1, note=f"loss {running / done:.4f}")
        if progress:
            log(
                f"epoch {epoch + 1}/{config.epochs}: loss {running / max(1, len(batches)):.4f}, "
                f"lr {scheduler.get_last_lr()[0]:.2e}"
            )
        if ranks.main:
            _save_atomic(
                {
                    "trainable": [p.detach().cpu() for p in method.params],
                    "head": head.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch,
                    "step": step,
                    "config": _recorded(config),
                },
                checkpoint,
            )
        ranks.barrier()
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    if not ranks.main:
        ranks.barrier()
        return out / "model.yaml"
    path = _export(config, out, method, head, kind)
    ranks.barrier()
    return path


def _recorded(config: FinetuneConfig) -> dict:
    """What a checkpoint must have been trained with to be resumed (paths and workers may move or change)."""
    return config.model_dump(mode="json", exclude={"workers", "output", "data", "base", "name"})


def _check_same_config(config: FinetuneConfig, saved: dict, checkpoint: Path) -> None:
    changed = {k: (v, saved[k]) for k, v in _recorded(config).items() if k in saved and saved[k] != v}
    if changed:
        what = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (new, old) in changed.items())
        raise TrainingError(
            f"{checkpoint} was written with other settings ({what}); resuming would mix two runs. Restore "
            "them, or delete the checkpoint to start over"
        )


def _diverged(config: FinetuneConfig, value: float, step: int, epoch: int, checkpoint: Path) -> TrainingError:
    last = f"the last good checkpoint is {checkpoint}" if checkpoint.exists() else "no epoch finished yet"
    return TrainingError(
        f"{config.name}: the loss became {value} at step {step + 1} (epoch {epoch + 1}); {last}. Lower "
        f"lr_backbone (now {config.lr_backbone:g}) or lr_head (now {config.lr_head:g}), or set amp: false, "
        f"and delete {checkpoint.name} to start over"
    )


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


def _export(config: FinetuneConfig, out: Path, method, head, kind: str) -> Path:
    """The method's files (adapter or weights), the head (safetensors) and ``model.yaml`` describing them."""
    from safetensors.torch import save_file

    spec = {
        "name": config.name,
        **method.export(out),
        "base": config.base,
        "notes": f"overspec finetune: task {config.task}, method {config.method}, preset {config.preset}, "
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

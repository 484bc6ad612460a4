"""timm image models (image-only protocols): pooled pre-logits features; the classifier is the native head."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from overspec._hashing import digest, path_sha256
from overspec.errors import CheckpointError, ModelError
from overspec.models.checkpoints import check_fit, load_state_dict, strip_wrapper_prefixes
from overspec.models.encoder import Encoder, NativeHead
from overspec.models.hub import hub_offline
from overspec.models.preprocess import Preprocess
from overspec.models.spec import ModelSpec
from overspec.registry import unknown_name_message


@dataclass
class TimmEncoder(Encoder):
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        # channels-last: oneDNN's depthwise and pointwise convolutions run 1.5-2.5x faster on the CPU this way
        features = self.module.forward_features(images.to(self.device, memory_format=torch.channels_last))
        return self.module.forward_head(features, pre_logits=True).float()


def load_timm(spec: ModelSpec) -> TimmEncoder:
    """timm ``arch`` with ``weights`` (local file) or timm's ``pretrained`` weights from the hub."""
    import timm

    if not spec.arch or spec.arch.split(".")[0] not in timm.list_models():
        raise ModelError(f"{spec.label}: {unknown_name_message('timm model', spec.arch or '', timm.list_models())}")
    model = timm.create_model(spec.arch, pretrained=False)
    files: list[str] = []
    if spec.weights:
        state = strip_wrapper_prefixes(load_state_dict(spec.weights, what=f"{spec.label} weights"))
        if spec.key_map == "ordered":
            state = map_in_order(model.state_dict(), state, source=f"{spec.label} weights {spec.weights}")
        check_fit(model.state_dict(), state, source=f"{spec.label} weights {spec.weights}")
        model.load_state_dict(state)
        files.append(spec.weights)
    elif spec.pretrained:
        if hub_offline():
            raise ModelError(
                f"{spec.label}: timm weights for {spec.arch} are not local and the hub is offline; download "
                f"model.safetensors from https://huggingface.co/timm/{spec.arch} and give its path as `weights:`"
            )
        model = timm.create_model(spec.arch, pretrained=True)
    else:
        raise ModelError(f"{spec.label}: family timm needs `weights` (a local file) or `pretrained: true`")
    model.eval()
    cfg = timm.data.resolve_data_config(model=model)
    preprocess = Preprocess(
        size=cfg["input_size"][-1],
        interpolation=cfg.get("interpolation", "bicubic"),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        crop_pct=cfg.get("crop_pct", 1.0),
    ).updated(spec.preprocess)
    fingerprint = digest(
        {
            "family": "timm",
            "arch": spec.arch,
            "files": [path_sha256(f) for f in files],
            "pretrained": spec.pretrained,
            "preprocess": preprocess.model_dump(),
        }
    )
    classifier = _classifier(model)
    return TimmEncoder(
        name=spec.label,
        family="timm",
        arch=spec.arch,
        preprocess=preprocess,
        fingerprint=fingerprint,
        module=model,
        head=classifier,
        classifier=classifier,
    )


def _classifier(model: torch.nn.Module) -> NativeHead | None:
    classifier = model.get_classifier()
    if not isinstance(classifier, torch.nn.Linear):
        return None
    n = classifier.out_features
    if n == 1000:
        from timm.data import ImageNetInfo

        classes = ImageNetInfo().label_descriptions()
    else:
        classes = [f"class_{i}" for i in range(n)]
    return NativeHead(module=classifier, classes=list(classes))


def map_in_order(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], *, source: str) -> dict:
    """Rename ``state``'s tensors to ``expected``'s names by position (``key_map: ordered``).

    For weights exported under another naming scheme with the same layer order (e.g. lukemelas-style
    EfficientNet-Lite0 onto timm's ``efficientnet_lite0``). Counters such as ``num_batches_tracked`` are
    skipped on both sides; every pair must agree in shape.
    """
    want = [k for k in expected if not k.endswith("num_batches_tracked")]
    have = [k for k in state if not k.endswith("num_batches_tracked")]
    if len(want) != len(have):
        raise CheckpointError(
            f"{source}: key_map ordered needs as many tensors as the model ({len(want)}), got {len(have)}"
        )
    mapped = {}
    for w, h in zip(want, have, strict=True):
        if tuple(expected[w].shape) != tuple(state[h].shape):
            raise CheckpointError(
                f"{source}: key_map ordered pairs {h} {tuple(state[h].shape)} with {w} {tuple(expected[w].shape)}"
            )
        mapped[w] = state[h]
    for k, v in expected.items():
        if k.endswith("num_batches_tracked"):
            mapped[k] = v
    return mapped

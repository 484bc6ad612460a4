"""timm image models (image-only protocols): pooled pre-logits features; the classifier is the native head."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from overspec._hashing import digest, path_sha256
from overspec.errors import CheckpointError, ModelError
from overspec.models.checkpoints import check_fit, load_state_dict, strip_wrapper_prefixes
from overspec.models.encoder import Encoder, NativeHead
from overspec.models.hub import hub_paths
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
    """timm ``arch`` with ``weights`` (a local file), or published weights (``pretrained: true``: the tag's hub copy,
    or ``hub:`` a timm repository with its config.json), always through huggingface_hub's cache."""
    import timm

    if not spec.arch or spec.arch.split(".")[0] not in timm.list_models():
        raise ModelError(f"{spec.label}: {unknown_name_message('timm model', spec.arch or '', timm.list_models())}")
    if not spec.weights and not spec.pretrained and not spec.hub:
        raise ModelError(f"{spec.label}: family timm needs `weights` (a local file) or `pretrained: true`")
    hub_files = [path for path in hub_paths(spec) if path is not None]
    weights = spec.weights or str(hub_files[-1])
    model = _build(spec, hub_files[0] if spec.hub else None)
    state = strip_wrapper_prefixes(load_state_dict(weights, what=f"{spec.label} weights"))
    if spec.key_map == "ordered":
        state = map_in_order(model.state_dict(), state, source=f"{spec.label} weights {weights}")
    check_fit(model.state_dict(), state, source=f"{spec.label} weights {weights}")
    model.load_state_dict(state)
    files = [weights]
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


def _build(spec: ModelSpec, config: Path | None) -> torch.nn.Module:
    """The architecture, with the pretrained config (input size, mean, std, crop) of its tag or of the hub
    repository's config.json, as ``timm.create_model('hf-hub:...')`` builds it."""
    import timm

    if config is None:
        return timm.create_model(spec.arch, pretrained=False)
    data = json.loads(config.read_text())
    kwargs = dict(data.get("model_args") or {})
    if "num_classes" in data:
        kwargs["num_classes"] = data["num_classes"]
    pretrained_cfg = {**(data.get("pretrained_cfg") or {}), "hf_hub_id": spec.hub, "source": "hf-hub"}
    return timm.create_model(data["architecture"], pretrained=False, pretrained_cfg=pretrained_cfg, **kwargs)


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

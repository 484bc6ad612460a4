"""timm (real EfficientNet-Lite0 weights), ONNX and peft-adapter models from local files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.cli import write_yaml
from helpers.data import PHOTOS
from helpers.models import tiny_clip
from overspec.errors import CheckpointError, ModelError
from overspec.models import load_model


def test_real_efficientnet_lite0_weights_classify_real_photos():
    encoder = load_model("efficientnet-lite0.in1k")
    transform = encoder.preprocess.transform()
    batch = torch.stack([transform(Image.open(PHOTOS / f"{n}.jpg")) for n in ("chelsea", "coffee")])
    with torch.no_grad():
        probs = encoder.head.logits(encoder.encode_image(batch)).softmax(-1)
    top = [encoder.head.classes[i] for i in probs.argmax(-1)]
    assert top[0].startswith("tabby") and top[1].startswith("espresso")
    assert encoder.encode_image(batch).shape == (2, 1280)


def test_timm_round_trip_matches_timm_own_pipeline(tmp_path):
    import timm
    from timm.data import create_transform, resolve_data_config

    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=7).eval()
    torch.save(model.state_dict(), tmp_path / "r10.pth")
    with pytest.raises(CheckpointError, match="another architecture size|keys with other shapes"):
        load_model({"family": "timm", "arch": "resnet10t", "weights": str(tmp_path / "r10.pth")})
    model1k = timm.create_model("resnet10t", pretrained=False).eval()
    torch.save(model1k.state_dict(), tmp_path / "r10k.pth")
    encoder = load_model({"family": "timm", "arch": "resnet10t", "weights": str(tmp_path / "r10k.pth")})
    image = Image.open(PHOTOS / "chelsea.jpg").convert("RGB")
    theirs_in = create_transform(**resolve_data_config(model=model1k))(image)[None]
    ours_in = encoder.preprocess.transform()(image)[None]
    torch.testing.assert_close(ours_in, theirs_in, atol=0, rtol=0)
    with torch.no_grad():
        pooled = model1k.forward_head(model1k.forward_features(theirs_in), pre_logits=True)
        # the same function; overspec feeds channels-last batches (faster convolutions on the CPU), whose kernels
        # sum in another order: equal to float32 rounding, not bit for bit
        torch.testing.assert_close(encoder.encode_image(ours_in), pooled, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(encoder.head.logits(pooled), model1k(theirs_in), atol=1e-5, rtol=0)


def test_onnx_encoder_with_unused_graph_inputs(tmp_path):
    import onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 6),
    ).eval()
    path = tmp_path / "enc.onnx"
    torch.onnx.export(
        net,
        torch.randn(1, 3, 40, 40),
        str(path),
        input_names=["data"],
        output_names=["emb"],
        dynamic_axes={"data": {0: "n"}},
        dynamo=False,
    )
    graph = onnx.load(str(path))  # add a dangling input, as OpenCV Zoo's SFace export has
    graph.graph.input.append(onnx.helper.make_tensor_value_info("unused", onnx.TensorProto.FLOAT, [1]))
    onnx.save(graph, str(path))
    with pytest.raises(ModelError, match="ONNX files carry no preprocessing"):
        load_model({"family": "onnx", "weights": str(path)})
    encoder = load_model({"family": "onnx", "weights": str(path), "preprocess": {"mean": [0.5] * 3, "std": [0.5] * 3}})
    assert encoder.preprocess.size == 40
    x = torch.randn(3, 3, 40, 40)
    with torch.no_grad():
        np.testing.assert_allclose(encoder.encode_image(x).numpy(), net(x).numpy(), atol=1e-5)


def test_peft_adapter_round_trip_bit_for_bit(tmp_path, clip_file):
    from peft import LoraConfig, get_peft_model

    base = tiny_clip()
    torch.manual_seed(1)
    adapted = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["c_fc"]))
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)  # a trained adapter, not the zero init
    adapted.save_pretrained(tmp_path / "adapter")
    merged = adapted.merge_and_unload().eval()

    base_spec = write_yaml(tmp_path / "base.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    spec = write_yaml(tmp_path / "lora.yaml", {"family": "peft", "base": "base.yaml", "checkpoint": "adapter"})
    encoder = load_model(spec)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_image(x), merged.encode_image(x), atol=0, rtol=0)
        assert (encoder.encode_image(x) - tiny_clip().encode_image(x)).abs().max() > 1e-4
    again = load_model(spec)
    assert again.fingerprint == encoder.fingerprint != load_model(base_spec).fingerprint
    for (k, v), (k2, v2) in zip(encoder.module.state_dict().items(), again.module.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)

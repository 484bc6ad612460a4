"""FRoundation / MADation / FoundPAD checkpoints: load through `overspec embed` and compare with an
independent computation on the merged weights W + s·B·A."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.cli import write_yaml
from helpers.data import PHOTOS
from helpers.models import tiny_clip, to_split_lora_format
from overspec.cli import app
from overspec.errors import CheckpointError
from overspec.models import load_model

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711])
RECIPES = {  # family -> (r, alpha, PIL resample, mean, std, bgr): what each repository's eval code does
    "froundation": (16, 32.0, Image.BICUBIC, CLIP_MEAN, CLIP_STD, False),
    "madation": (2, 4.0, Image.BILINEAR, np.full(3, 0.5), np.full(3, 0.5), True),
    "foundpad": (8, 8.0, "cv2", np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]), False),
}  # FoundPAD resizes with albumentations' A.Resize: cv2.resize INTER_LINEAR


def merged_reference(model: torch.nn.Module, lora: dict, factor: float) -> torch.nn.Module:
    """The same model with W_q += factor·B_q·A_q and W_v += factor·B_v·A_v written into in_proj_weight."""
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for i, (a_q, b_q, a_v, b_v) in lora.items():
            attn = reference.visual.transformer.resblocks[i].attn
            d = attn.embed_dim
            attn.in_proj_weight[:d] += factor * (b_q @ a_q)
            attn.in_proj_weight[2 * d :] += factor * (b_v @ a_v)
    return reference


def preprocess_by_hand(path, size, resample, mean, std, bgr) -> torch.Tensor:
    rgb = Image.open(path).convert("RGB")
    if resample == "cv2":
        import cv2

        resized = cv2.resize(np.asarray(rgb), (size, size), interpolation=cv2.INTER_LINEAR)
    else:
        resized = rgb.resize((size, size), resample)
    image = np.asarray(resized, dtype=np.float64) / 255
    if bgr:
        image = image[..., ::-1]
    return torch.tensor(((image - mean) / std).transpose(2, 0, 1), dtype=torch.float32)


@pytest.mark.parametrize("family", sorted(RECIPES))
def test_checkpoint_embeddings_equal_merged_weights(family, tmp_path):
    r, alpha, resample, mean, std, bgr = RECIPES[family]
    model = tiny_clip(seed=1)
    state, lora = to_split_lora_format(model, r, seed=2)
    torch.save(state, tmp_path / "40_backbone.pth")
    spec = {"family": family, "checkpoint": "40_backbone.pth", "lora": {"r": r, "alpha": alpha}}
    if family != "froundation":
        head = {"linear.weight": torch.randn(2, 32), "linear.bias": torch.randn(2)}
        torch.save(head, tmp_path / "40_header.pth")
        spec["head"] = "40_header.pth"
    spec_file = write_yaml(tmp_path / f"{family}.yaml", spec)

    from typer.testing import CliRunner

    result = CliRunner().invoke(
        app, ["embed", str(spec_file), str(PHOTOS), "--out", str(tmp_path / "f.npy"), "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    got = np.load(tmp_path / "f.npy")

    reference = merged_reference(model, lora, alpha / math.sqrt(r))
    paths = sorted(PHOTOS.glob("*.jpg"))
    batch = torch.stack([preprocess_by_hand(p, 32, resample, mean, std, bgr) for p in paths])
    with torch.no_grad():
        expected = reference.encode_image(batch).numpy()
    assert got.shape == expected.shape == (len(paths), 32)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # the LoRA update matters: the base model gives different embeddings
    with torch.no_grad():
        assert np.abs(model.encode_image(batch).numpy() - expected).max() > 1e-3
    assert [json.loads(x) for x in (tmp_path / "f.paths.jsonl").read_text().splitlines()] == [p.name for p in paths]

    if family != "froundation":
        encoder = load_model(spec_file)
        with torch.no_grad():
            scores = encoder.head.scores(torch.from_numpy(got)).numpy()
        e = got / np.linalg.norm(got, axis=1, keepdims=True)
        logits = e @ head["linear.weight"].numpy().T + head["linear.bias"].numpy()
        bonafide = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
        np.testing.assert_allclose(scores, bonafide, atol=1e-6)
        assert encoder.head.positive == "bonafide"


def test_foundpad_resizes_as_opencv_inter_linear():
    """FoundPAD's A.Resize(224, 224) is cv2.resize INTER_LINEAR on the uint8 image: equal to the last bit on a
    450-pixel crop (where antialiased bilinear is far off), and a 224 image passes unresized."""
    import cv2
    from skimage.data import astronaut

    from overspec.models.split_attention_lora import RECIPES as FAMILIES

    preprocess = FAMILIES["foundpad"].preprocess
    transform = preprocess.transform()
    mean, std = np.array(preprocess.mean, np.float32), np.array(preprocess.std, np.float32)

    def expected(array):
        resized = cv2.resize(array, (224, 224), interpolation=cv2.INTER_LINEAR)
        scaled = torch.from_numpy(resized).permute(2, 0, 1).float() / 255  # ToTensor's arithmetic
        return (scaled - torch.from_numpy(mean)[:, None, None]) / torch.from_numpy(std)[:, None, None]

    crop = np.ascontiguousarray(astronaut()[20:470, 30:480])
    assert crop.shape == (450, 450, 3)
    got = transform(Image.fromarray(crop))
    assert torch.equal(got, expected(crop))
    antialiased = preprocess.updated({"interpolation": "bilinear"}).transform()(Image.fromarray(crop))
    assert ((antialiased - got) * torch.from_numpy(std)[:, None, None]).abs().max() * 255 > 10  # it matters
    small = np.ascontiguousarray(crop[:224, :224])
    assert torch.equal(transform(Image.fromarray(small)), expected(small))
    assert np.array_equal(cv2.resize(small, (224, 224), interpolation=cv2.INTER_LINEAR), small)
    with pytest.raises(ValueError, match="set resize: squash"):
        preprocess.updated({"resize": "shortest"})


def test_standard_scaling_and_ddp_prefix(tmp_path):
    model = tiny_clip(seed=3)
    state, lora = to_split_lora_format(model, 4, seed=4)
    torch.save({"module." + k: v for k, v in state.items()}, tmp_path / "ddp.pth")
    encoder = load_model(
        {
            "family": "froundation",
            "checkpoint": str(tmp_path / "ddp.pth"),
            "lora": {"r": 4, "alpha": 8, "scaling": "standard"},
        }
    )
    batch = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        got = encoder.encode_image(batch)
        expected = merged_reference(model, lora, 8 / 4).encode_image(batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_lora_scale_zero_is_the_base_model(tmp_path):
    model = tiny_clip(seed=5)
    state, _ = to_split_lora_format(model, 2, seed=6)
    torch.save(state, tmp_path / "ck.pth")
    encoder = load_model(
        {"family": "madation", "checkpoint": str(tmp_path / "ck.pth"), "lora": {"r": 2, "alpha": 4, "scale": 0.0}}
    )
    batch = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_image(batch), model.encode_image(batch), atol=1e-5, rtol=0)


def test_wrong_rank_plain_clip_and_wrong_head_are_named(tmp_path, clip_file):
    model = tiny_clip(seed=7)
    state, _ = to_split_lora_format(model, 2, seed=8)
    torch.save(state, tmp_path / "ck.pth")
    with pytest.raises(CheckpointError, match=r"rank 2 but the spec says lora.r=4; fix `lora.r`"):
        load_model({"family": "foundpad", "checkpoint": str(tmp_path / "ck.pth"), "lora": {"r": 4, "alpha": 8}})
    with pytest.raises(CheckpointError, match="no LoRA tensors.*family openai_clip"):
        load_model({"family": "froundation", "checkpoint": str(clip_file)})
    torch.save({"linear.weight": torch.randn(2, 48), "linear.bias": torch.randn(2)}, tmp_path / "head.pth")
    with pytest.raises(CheckpointError, match="48-d input but the model's embeddings are 32-d"):
        load_model({"family": "foundpad", "checkpoint": str(tmp_path / "ck.pth"), "head": str(tmp_path / "head.pth")})


def test_rank_and_alpha_default_to_the_family_recipe(tmp_path):
    model = tiny_clip(seed=9)
    state, lora = to_split_lora_format(model, 2, seed=10)
    torch.save(state, tmp_path / "ck.pth")
    encoder = load_model({"family": "madation", "checkpoint": str(tmp_path / "ck.pth")})
    assert encoder.settings["lora"]["r"] == 2 and encoder.settings["lora"]["alpha"] == 4.0
    assert encoder.preprocess.channel_order == "bgr" and encoder.preprocess.mean == (0.5, 0.5, 0.5)

"""open_clip, OpenAI-format and Hugging Face CLIP models saved to local files round-trip exactly."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch
from PIL import Image

from helpers.cli import write_yaml
from helpers.data import PHOTOS
from helpers.models import tiny_clip
from overspec.errors import ModelError, OfflineError
from overspec.models import load_model


def photos_batch(transform) -> torch.Tensor:
    return torch.stack([transform(Image.open(p)) for p in sorted(PHOTOS.glob("*.jpg"))])


def test_openai_format_state_dict_infers_any_size_and_matches_open_clip(clip_file):
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    reference = tiny_clip()
    ref_transform = open_clip.image_transform(32, is_train=False)  # open_clip's own eval transform
    with torch.no_grad():
        ours = encoder.encode_image(photos_batch(encoder.preprocess.transform()))
        theirs = reference.encode_image(photos_batch(ref_transform))
        torch.testing.assert_close(ours, theirs, atol=0, rtol=0)
        text = ["a photo of a cat", "a rocket"]
        tokens = open_clip.get_tokenizer("ViT-B-32")(text)
        torch.testing.assert_close(encoder.encode_text(text), reference.encode_text(tokens), atol=0, rtol=0)
    assert encoder.has_text and encoder.arch.startswith("ViT-w64/8@32")


def test_openai_torchscript_file_loads(tmp_path):
    model = tiny_clip()
    # OpenAI ships whole-model TorchScript; a scripted module holding the same state dict stands in for it.
    torch.jit.script(_StateHolder(model.state_dict())).save(str(tmp_path / "ViT-tiny.pt"))
    encoder = load_model({"family": "openai_clip", "weights": str(tmp_path / "ViT-tiny.pt")})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_image(x), model.encode_image(x), atol=0, rtol=0)


class _StateHolder(torch.nn.Module):
    """A TorchScript module whose state dict has CLIP's key names (nested modules holding buffers)."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        for name, tensor in state.items():
            module = self
            *parents, leaf = name.split(".")
            for part in parents:
                if not hasattr(module, part):
                    module.add_module(part, torch.nn.Module())
                module = getattr(module, part)
            module.register_buffer(leaf, tensor.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_open_clip_arch_with_local_checkpoint(tmp_path):
    config = {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1},
    }
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "overspec-tiny.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "cfg")
    model = tiny_clip()
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, tmp_path / "epoch_1.pt")
    spec = write_yaml(tmp_path / "tiny.yaml", {"family": "open_clip", "arch": "overspec-tiny", "weights": "epoch_1.pt"})
    encoder = load_model(spec)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_image(x), model.encode_image(x), atol=0, rtol=0)
    assert encoder.name == "tiny"
    with pytest.raises(
        ModelError, match="unknown open_clip architecture 'overspec-tinny'; did you mean 'overspec-tiny'"
    ):
        load_model({"family": "open_clip", "arch": "overspec-tinny", "weights": str(tmp_path / "epoch_1.pt")})


def test_hub_weights_offline_fail_at_once_naming_file_and_place(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        load_model({"family": "open_clip", "arch": "ViT-B-16", "pretrained": "openai"})
    assert "huggingface_hub's cache" in str(info.value) and "the hub cannot be reached (HF_HUB_OFFLINE=1)" in str(
        info.value
    )
    assert "`hf download timm/vit_base_patch16_clip_224.openai open_clip_model.safetensors`" in str(info.value)
    with pytest.raises(OfflineError, match=r"run `overspec fetch clip-vit-l14.openai`; or put the weights file at .*"):
        load_model("clip-vit-l14.openai")
    hf_message = r"hf_clip:openai/clip-vit-base-patch16: huggingface_hub's cache .* lacks openai/clip-vit-base-patch16/"
    with pytest.raises(OfflineError, match=hf_message):
        load_model({"family": "hf_clip", "weights": "openai/clip-vit-base-patch16"})


def test_hf_clip_directory_round_trip(tmp_path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    model = CLIPModel(config).eval()
    model.save_pretrained(tmp_path / "hf")
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(tmp_path / "hf")

    encoder = load_model({"family": "hf_clip", "weights": str(tmp_path / "hf")})
    images = [Image.open(p).convert("RGB") for p in sorted(PHOTOS.glob("*.jpg"))]
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ours = encoder.encode_image(pixels)
        out = model.get_image_features(pixel_values=pixels)
        theirs = out if isinstance(out, torch.Tensor) else out.pooler_output
    torch.testing.assert_close(ours, theirs, atol=0, rtol=0)
    # preprocessing read from preprocessor_config.json: same geometry and normalisation as the processor's
    # (transformers resizes with its own kernel, so pixels agree only up to resampling differences)
    mine = photos_batch(encoder.preprocess.transform())
    assert mine.shape == pixels.shape
    assert (mine - pixels).abs().mean() < 0.05
    assert ours.shape == (5, 16) and encoder.has_text
    tokens = open_clip.tokenize(["a face"])
    with torch.no_grad():
        out = model.get_text_features(input_ids=tokens)
        expected = out if isinstance(out, torch.Tensor) else out.pooler_output
        torch.testing.assert_close(encoder.encode_text(["a face"]), expected)


def test_initialisation_skipped_only_inside_its_block_and_every_loaded_tensor_exact(clip_file, monkeypatch):
    from overspec.models.skip_init import initialisation_skipped

    normal = torch.nn.init.normal_
    with pytest.raises(RuntimeError, match="inside"), initialisation_skipped():
        assert torch.nn.init.normal_ is not normal
        raise RuntimeError("inside")
    assert torch.nn.init.normal_ is normal  # restored, even after an error
    torch.manual_seed(0)
    assert torch.nn.init.normal_(torch.zeros(8)).abs().sum() > 0
    drawn = []

    def counted_normal_(tensor, *args, **kwargs):  # what open_clip's initialisation calls, counted
        drawn.append(tuple(tensor.shape))
        return normal(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "normal_", counted_normal_)
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    assert drawn == []  # no random initial value was drawn for the weights the load then wrote
    stored = torch.load(clip_file, map_location="cpu", weights_only=True)
    built = encoder.module.state_dict()
    assert set(built) == set(stored)
    assert all(torch.equal(built[k], stored[k].float()) for k in stored)  # no random value survives the build

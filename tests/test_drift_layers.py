"""Layer features in one forward pass, and drift of a fine-tuned model from its base, on tiny real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from overspec.analysis.drift import compare_layers, drift, drift_images
from overspec.data.images import ImageFiles, list_images
from overspec.errors import ModelError
from overspec.features.layer_extract import extract_layers
from overspec.features.layers import CLASS_TOKEN, EMBEDDING, PATCH_MEAN, STAGE_POOL, locate_layers
from overspec.models import load_model

BLOCKS = 4
ADAPTED = (2, 3)  # LoRA on these blocks only


def _faces(face_dir: Path) -> ImageFiles:
    return ImageFiles(list_images(face_dir), root=face_dir)


@pytest.fixture(scope="module")
def base_file(tmp_path_factory) -> Path:
    """A 4-block tiny CLIP in OpenAI format (what openai_clip and the study formats load)."""
    import open_clip

    torch.manual_seed(3)
    model = open_clip.model.CLIP(
        embed_dim=32,
        vision_cfg=open_clip.model.CLIPVisionCfg(layers=BLOCKS, width=64, patch_size=8, image_size=32),
        text_cfg=open_clip.model.CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
        quick_gelu=True,
    )
    path = tmp_path_factory.mktemp("drift_base") / "base.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def lora_spec(base_file, tmp_path_factory) -> dict:
    """A peft LoRA (random, non-zero B) on the MLP of blocks 2 and 3 only, saved and loaded as family peft."""
    from peft import LoraConfig, get_peft_model

    base = {"family": "openai_clip", "weights": str(base_file)}
    module = load_model(base).module
    targets = [f"visual.transformer.resblocks.{i}.mlp.c_fc" for i in ADAPTED]
    torch.manual_seed(0)
    adapted = get_peft_model(module, LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False))
    folder = tmp_path_factory.mktemp("drift_lora") / "adapter"
    adapted.save_pretrained(folder)
    return {"family": "peft", "base": base, "checkpoint": str(folder)}


def test_layers_of_each_kind_state_their_token(base_file):
    import timm

    clip = locate_layers(load_model({"family": "openai_clip", "weights": str(base_file)}))
    assert [x.name for x in clip] == [f"block {i}" for i in range(BLOCKS)] + ["embedding"]
    assert {x.token for x in clip[:-1]} == {CLASS_TOKEN} and clip[-1].token == EMBEDDING

    from overspec.features.layers import LOCATORS

    vit = LOCATORS.get("timm")(timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2))
    assert [(x.name, x.module, x.token) for x in vit] == [
        ("block 0", "blocks.0", CLASS_TOKEN),
        ("block 1", "blocks.1", CLASS_TOKEN),
    ]
    pooled = LOCATORS.get("timm")(
        timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1, class_token=False, global_pool="avg")
    )
    assert pooled[0].token == PATCH_MEAN and pooled[0].prefix == 0
    cnn = LOCATORS.get("timm")(timm.create_model("efficientnet_lite0", pretrained=False))
    assert [x.module for x in cnn] == [f"blocks.{i}" for i in range(7)] and {x.token for x in cnn} == {STAGE_POOL}
    resnet = LOCATORS.get("timm")(timm.create_model("resnet18", pretrained=False))
    assert [x.module for x in resnet] == ["layer1", "layer2", "layer3", "layer4"]


def test_hf_clip_blocks_are_found():
    from transformers import CLIPConfig, CLIPModel

    from overspec.features.layers import LOCATORS

    config = CLIPConfig(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=16,
    )  # fmt: skip
    model = CLIPModel(config).eval()
    layers = LOCATORS.get("hf_clip")(model)
    assert [x.module for x in layers] == [f"vision_model.encoder.layers.{i}" for i in range(3)]
    # the hooked class token equals the hidden state transformers itself reports for that layer
    modules = dict(model.named_modules())
    seen = {}
    handles = [
        modules[x.module].register_forward_hook(lambda m, i, o, x=x: seen.__setitem__(x.name, x.reduce(o)))
        for x in layers
    ]
    pixels = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        states = model.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states
    for handle in handles:
        handle.remove()
    for i, layer in enumerate(layers):
        torch.testing.assert_close(seen[layer.name], states[i + 1][:, 0])


def test_hooked_features_equal_open_clips_own_intermediates(base_file, face_dir):
    """Every block's class token from the hooks equals open_clip's forward_intermediates, and the embedding
    equals encode_image: one pass gives both."""
    encoder = load_model({"family": "openai_clip", "weights": str(base_file)})
    images = _faces(face_dir)
    features = extract_layers(encoder, images, cache=False, num_workers=0, progress=False, batch_size=5)
    batch = torch.stack([encoder.preprocess.transform()(images.load(i)) for i in range(len(images))])
    with torch.inference_mode():
        visual = encoder.module.visual
        found = visual.forward_intermediates(batch, intermediates_only=True, output_fmt="NLC", output_extra_tokens=True)
        embedding = encoder.encode_image(batch)
    for i, prefix in enumerate(found["image_intermediates_prefix"]):
        np.testing.assert_allclose(features.load(i), prefix[:, 0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(features.load(BLOCKS), embedding.numpy(), rtol=1e-5, atol=1e-5)


def test_a_model_against_itself_is_1_at_every_layer(base_file, face_dir):
    spec = {"family": "openai_clip", "weights": str(base_file)}
    result = drift(spec, spec, face_dir, permutations=4, k=3, num_workers=0, progress=False)
    assert result.n == 12 and len(result.layers) == BLOCKS + 1
    for layer in result.layers:
        assert layer.cka == pytest.approx(1.0, abs=1e-12)
        assert layer.calibrated == pytest.approx(1.0, abs=1e-12)
        assert layer.mutual_knn == 1.0


def test_a_lora_specialist_drifts_only_from_its_first_adapted_block(base_file, lora_spec, face_dir):
    base = {"family": "openai_clip", "weights": str(base_file)}
    result = drift(base, lora_spec, face_dir, permutations=4, k=3, num_workers=0, progress=False)
    by_name = {x.layer: x for x in result.layers}
    for i in range(ADAPTED[0]):
        assert by_name[f"block {i}"].cka == pytest.approx(1.0, abs=1e-9), f"block {i} is not adapted"
    for name in [f"block {i}" for i in ADAPTED] + ["embedding"]:
        assert by_name[name].cka < 1 - 1e-4, f"{name} is adapted (or after an adapted block)"
    document = result.document()
    assert document["layers"][0]["token"] == CLASS_TOKEN and document["calibrated"].startswith("(cka - null_mean)")


def test_layer_features_are_cached_and_reused(base_file, face_dir, monkeypatch):
    from overspec.features import layer_extract

    encoder = load_model({"family": "openai_clip", "weights": str(base_file)})
    images = _faces(face_dir)
    first = extract_layers(encoder, images, num_workers=0, progress=False, batch_size=4, chunk_rows=4)
    assert first.folder is not None and (first.folder / "meta.json").exists()
    calls = []
    monkeypatch.setattr(layer_extract, "_compute", lambda *a, **k: calls.append(a))
    again = extract_layers(encoder, images, num_workers=0, progress=False)
    assert not calls and again.folder == first.folder
    for i in range(BLOCKS + 1):
        np.testing.assert_array_equal(again.load(i), first.load(i))
    # the same pass filled the final-feature cache: a protocol on these images runs no second pass
    from overspec.features import extract

    monkeypatch.setattr(extract, "_compute", lambda *a, **k: pytest.fail("a second forward pass"))
    final = extract.extract_features(encoder, images, num_workers=0, progress=False)
    np.testing.assert_array_equal(final, first.load(BLOCKS))
    monkeypatch.undo()
    fresh = extract.extract_features(encoder, images, cache=False, num_workers=0, progress=False)
    np.testing.assert_allclose(final, fresh, rtol=1e-6, atol=1e-6)


def test_interrupted_extraction_resumes(base_file, face_dir):
    """Chunks of a stopped run (one layer a chunk ahead of the others) are reused, the excess dropped."""
    from overspec.features.cache import CacheEntry

    encoder = load_model({"family": "openai_clip", "weights": str(base_file)})
    images = _faces(face_dir)
    whole = extract_layers(encoder, images, cache=False, num_workers=0, progress=False)
    full = extract_layers(encoder, images, num_workers=0, progress=False, batch_size=4, chunk_rows=4)
    folder = full.folder
    # rebuild a stopped state: every layer has rows 0-3, layer 0 also rows 4-7
    for i in range(BLOCKS + 1):
        sub = folder / f"layer_{i:03d}"
        for f in sub.iterdir():
            f.unlink()
        CacheEntry(sub, 12).write_chunk(0, whole.load(i)[:4])
    CacheEntry(folder / "layer_000", 12).write_chunk(4, whole.load(0)[4:8])
    resumed = extract_layers(encoder, images, num_workers=0, progress=False, batch_size=4, chunk_rows=4)
    for i in range(BLOCKS + 1):
        np.testing.assert_allclose(resumed.load(i), whole.load(i), rtol=1e-5, atol=1e-6)


def test_models_of_other_architectures_are_refused(base_file, face_dir, clip_file):
    images = _faces(face_dir)
    a = extract_layers(load_model({"family": "openai_clip", "weights": str(base_file)}), images, cache=False,
                       num_workers=0, progress=False)  # fmt: skip
    b = extract_layers(load_model({"family": "openai_clip", "weights": str(clip_file)}), images, cache=False,
                       num_workers=0, progress=False)  # fmt: skip
    with pytest.raises(ModelError, match="different layers"):
        compare_layers(a, b)


def test_drift_images_reads_datasets_and_plain_folders(digits_folder, face_dir):
    name, images = drift_images(digits_folder, split="test")
    assert len(images) == 150
    _, train = drift_images(digits_folder, split="train", n=20)
    assert len(train) == 20
    name, faces = drift_images(face_dir)
    assert name == face_dir.name and len(faces) == 12

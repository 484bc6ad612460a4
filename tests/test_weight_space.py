"""Full fine-tunes (family finetuned), WiSE-FT mixing of two models (family interpolate), and data-parallel
training under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from helpers.cli import write_yaml
from helpers.data import REPO
from helpers.finetune import tiny_setup, trained_lora
from helpers.models import tiny_clip
from overspec.errors import OverspecError
from overspec.finetune.config import load_finetune_config
from overspec.finetune.train import finetune
from overspec.models import load_model

X = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def embed(model) -> torch.Tensor:
    with torch.no_grad():
        return load_model(model).encode_image(X)


def test_full_finetune_saves_the_image_tower_and_reloads_it_exactly(tmp_path):
    spec = finetune(load_finetune_config(tiny_setup(tmp_path, method="full", epochs=2)), log=lambda line: None)
    saved = load_file(str(tmp_path / "out" / "weights.safetensors"))
    assert saved and all(k.startswith("visual.") for k in saved)  # the text tower is left alone

    reference = load_model(tmp_path / "clip.yaml")
    before = {k: v.clone() for k, v in reference.module.state_dict().items()}
    assert any(not torch.equal(before[k], v) for k, v in saved.items())
    reference.module.load_state_dict(saved, strict=False)
    tuned = load_model(spec)
    assert tuned.family == "finetuned"
    with torch.no_grad():
        assert torch.equal(tuned.encode_image(X), reference.encode_image(X))
        assert torch.equal(tuned.encode_text(["a face"]), load_model(tmp_path / "clip.yaml").encode_text(["a face"]))

    # WiSE-FT points of a full fine-tune: the ends are the two models exactly, the middle is the weight mix
    half = {k: (before[k] + v) / 2 for k, v in saved.items()}
    reference.module.load_state_dict(half, strict=False)
    with torch.no_grad():
        middle = reference.encode_image(X)
    point = {
        "family": "finetuned",
        "base": str(tmp_path / "clip.yaml"),
        "checkpoint": str(tmp_path / "out" / "weights.safetensors"),
    }
    assert torch.equal(embed({**point, "adapter_scale": 0.0}), embed(tmp_path / "clip.yaml"))
    torch.testing.assert_close(embed({**point, "adapter_scale": 0.5}), middle, atol=1e-6, rtol=1e-5)


def test_interpolating_base_and_lora_specialist_equals_scaling_the_adapter(tmp_path):
    spec = finetune(load_finetune_config(tiny_setup(tmp_path, epochs=2)), log=lambda line: None)
    base = str(tmp_path / "clip.yaml")
    mixed = {"family": "interpolate", "base": base, "target": str(spec)}
    assert torch.equal(embed({**mixed, "adapter_scale": 0.0}), embed(base))
    assert torch.equal(embed({**mixed, "adapter_scale": 1.0}), embed(spec))
    scaled = embed(
        {
            "family": "peft",
            "base": base,
            "checkpoint": str(tmp_path / "out" / "adapter"),
            "adapter_layout": "split_attention",
            "adapter_scale": 0.5,
        }
    )
    torch.testing.assert_close(embed({**mixed, "adapter_scale": 0.5}), scaled, atol=1e-5, rtol=1e-4)
    assert (scaled - embed(base)).abs().max() > 1e-4 and (scaled - embed(spec)).abs().max() > 1e-4


def test_interpolate_refuses_two_architectures(tmp_path):
    import open_clip

    torch.save(tiny_clip().state_dict(), tmp_path / "a.pt")
    wider = open_clip.model.CLIP(
        embed_dim=32,
        vision_cfg=open_clip.model.CLIPVisionCfg(layers=2, width=96, patch_size=8, image_size=32),
        text_cfg=open_clip.model.CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
        quick_gelu=True,
    )
    torch.save(wider.state_dict(), tmp_path / "b.pt")
    spec = {
        "family": "interpolate",
        "name": "mix",
        "base": {"family": "openai_clip", "weights": str(tmp_path / "a.pt")},
        "target": {"family": "openai_clip", "weights": str(tmp_path / "b.pt")},
        "adapter_scale": 0.5,
    }
    with pytest.raises(OverspecError, match=r"does not fit.*other shapes"):
        load_model(spec)


@pytest.mark.slow
def test_data_parallel_finetune_under_torchrun_matches_one_process(tmp_path):
    """Two CPU processes (gloo) with half of every batch each give the one-process weights."""
    for run in ("one", "two"):
        (tmp_path / run).mkdir()
        tiny_setup(tmp_path / run, epochs=2, batch_size=7)  # 32 images: batches of 7, 7, 7, 7, 4
    finetune(load_finetune_config(tmp_path / "one" / "ft.yaml"), log=lambda line: None)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "overspec.cli", "finetune", "ft.yaml", "--nproc", "2"]
    done = subprocess.run(command, cwd=tmp_path / "two", env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("epoch 2/2: loss") == 1  # progress from rank 0 only
    one, two = trained_lora(tmp_path / "one" / "out"), trained_lora(tmp_path / "two" / "out")
    assert one.keys() == two.keys()
    for key in one:  # equal up to the order of float sums: two half-batch gradients all-reduced vs one batch, and
        # Adam divides by sqrt(v), so an element whose gradient is near 0 carries that rounding at ~1e-5 (seen 2.4e-5)
        torch.testing.assert_close(two[key], one[key], atol=1e-4, rtol=1e-3)
    assert any(not torch.equal(one[k], torch.zeros_like(one[k])) for k in one if "lora_B" in k)


def test_sweep_points_of_a_full_finetune_and_of_any_two_models(tmp_path):
    from overspec.errors import ConfigError
    from overspec.models import resolve_spec
    from overspec.sweep import point_spec

    write_yaml(tmp_path / "tuned.yaml", {"family": "finetuned", "base": "clip.yaml", "checkpoint": "w.safetensors"})
    full = point_spec(resolve_spec(tmp_path / "tuned.yaml"), 0.25)
    assert full["family"] == "finetuned" and full["adapter_scale"] == 0.25
    assert full["base"] == str(tmp_path / "clip.yaml") and full["checkpoint"] == str(tmp_path / "w.safetensors")

    write_yaml(tmp_path / "other.yaml", {"family": "openai_clip", "weights": "other.pt"})
    with pytest.raises(ConfigError, match="sweep --base"):
        point_spec(resolve_spec(tmp_path / "other.yaml"), 0.5)
    mixed = point_spec(resolve_spec(tmp_path / "other.yaml"), 0.5, model="/m/other.yaml", base="clip-vit-b16.openai")
    assert mixed == {
        "family": "interpolate",
        "name": "other@0.5",
        "base": "clip-vit-b16.openai",
        "target": "/m/other.yaml",
        "adapter_scale": 0.5,
    }

"""Models named by their hub references, served by a fake hub on 127.0.0.1: a timm tag, a timm repository, an
open_clip repository and a transformers CLIP, loaded online through huggingface_hub's cache, then offline from it
with the server stopped; `overspec fetch` offline from a populated cache; each refusal in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.cli import overspec, write_yaml
from helpers.data import PHOTOS
from helpers.hub import FakeHub, hub_env, publish_webdataset
from helpers.hub_models import hf_clip_repo, open_clip_hub_repo, timm_hub_repo, timm_tag_repo
from overspec.errors import ModelError, OfflineError
from overspec.models import load_model
from overspec.models.identity import spec_fingerprint

TIMM_TAG = "timm/test_vit.r160_in1k"
TIMM_HUB = "hf-hub:me/tiny-timm"
OPEN_CLIP_HUB = "hf-hub:me/tiny-open-clip"
HF_CLIP = "me/tiny-hf-clip"
REFERENCES = (TIMM_TAG, TIMM_HUB, OPEN_CLIP_HUB, HF_CLIP)


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """Each repository's files, built once."""
    root = tmp_path_factory.mktemp("repos")
    return {
        "timm/test_vit.r160_in1k": timm_tag_repo(),
        "me/tiny-timm": timm_hub_repo(root / "timm"),
        "me/tiny-open-clip": open_clip_hub_repo(root / "open_clip"),
        "me/tiny-hf-clip": hf_clip_repo(root / "hf_clip"),
        "me/tiny-siglip": open_clip_hub_repo(root / "siglip", siglip=True),
        "me/not-a-model": {"README.md": b"# nothing to load"},
    }


@pytest.fixture
def hub(repos):
    server = FakeHub().start()
    for repo, files in repos.items():
        server.add(repo, files, repo_type="model")
    yield server
    server.stop()


def _online(monkeypatch, hub: FakeHub, cache: Path) -> None:
    """This process talks to ``hub`` and keeps what it downloads in ``cache`` (huggingface_hub reads its offline
    flag and cache folder once, at import: they are set on its constants)."""
    from huggingface_hub import constants

    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))


def _offline(monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _photos(encoder) -> torch.Tensor:
    from PIL import Image

    transform = encoder.preprocess.transform()
    return torch.stack([transform(Image.open(p)) for p in sorted(PHOTOS.glob("*.jpg"))[:3]])


def _embed(encoder) -> np.ndarray:
    with torch.no_grad():
        return encoder.encode_image(_photos(encoder)).numpy()


def test_references_load_online_then_offline_from_the_cache(hub, repos, monkeypatch, tmp_path):
    _online(monkeypatch, hub, tmp_path / "hf")
    online = {ref: load_model(ref) for ref in REFERENCES}
    features = {ref: _embed(encoder) for ref, encoder in online.items()}
    fingerprints = {ref: spec_fingerprint(ref) for ref in REFERENCES}
    # each family's own preprocessing, read from what the repository (or timm's tag) says
    assert online[TIMM_TAG].preprocess.size == 160 and online[TIMM_TAG].preprocess.mean == (0.5, 0.5, 0.5)
    assert online[TIMM_HUB].preprocess.size == 48 and online[TIMM_HUB].preprocess.mean == (0.25, 0.5, 0.75)
    oc = online[OPEN_CLIP_HUB].preprocess
    assert (oc.size, oc.std, oc.interpolation) == (32, (0.25, 0.25, 0.25), "bilinear")
    assert online[HF_CLIP].preprocess.size == 32 and online[HF_CLIP].has_text and online[OPEN_CLIP_HUB].has_text
    # the weights served are the weights loaded: timm's own model given the same tensors embeds the same
    import timm
    from safetensors.torch import load

    reference = timm.create_model("test_vit.r160_in1k", pretrained=False).eval()
    reference.load_state_dict(load(repos["timm/test_vit.r160_in1k"]["model.safetensors"]))
    with torch.no_grad():
        expected = reference.forward_head(reference.forward_features(_photos(online[TIMM_TAG])), pre_logits=True)
    np.testing.assert_array_equal(features[TIMM_TAG], expected.numpy())
    served = hub.requests
    hub.stop()
    _offline(monkeypatch)
    for ref in REFERENCES:  # the same models, from the cache, with no hub to ask
        encoder = load_model(ref)
        assert spec_fingerprint(ref) == fingerprints[ref] and encoder.fingerprint == online[ref].fingerprint
        np.testing.assert_array_equal(_embed(encoder), features[ref])
    assert online[OPEN_CLIP_HUB].encode_text(["a photo"]).shape == (1, 32)
    assert hub.requests == served


def test_refusals_are_one_line(hub, monkeypatch, tmp_path):
    _online(monkeypatch, hub, tmp_path / "hf")
    with pytest.raises(ModelError, match=r"holds neither open_clip_config.json \(open_clip\) nor a config.json"):
        load_model("hf-hub:me/not-a-model")
    with pytest.raises(ModelError, match=r"there is no hub repository .*/me/absent"):
        load_model("hf-hub:me/absent")
    with pytest.raises(ModelError, match=r"has none of me/tiny-open-clip/config.json"):
        load_model({"family": "hf_clip", "weights": "me/tiny-open-clip"})
    with pytest.raises(ModelError, match=r"describes a None model, not a transformers CLIP; name an open_clip or"):
        load_model("me/tiny-timm")  # a timm repository named as a transformers CLIP
    _offline(monkeypatch)
    for ref, lacks in ((OPEN_CLIP_HUB, "open_clip_config.json"), (HF_CLIP, "config.json"), (TIMM_TAG, "model")):
        with pytest.raises(OfflineError) as info:
            load_model(ref)
        message = str(info.value)
        assert "\n" not in message and f"lacks {ref.removeprefix('hf-hub:')}/{lacks}" in message
        assert "the hub cannot be reached (HF_HUB_OFFLINE=1)" in message and f"run `overspec fetch {ref}`" in message


@pytest.mark.slow
def test_eval_by_reference_online_then_offline(hub, digits_folder, tmp_path):
    """What a user types: `eval REF`, online, then the same with the server stopped and HF_HUB_OFFLINE=1."""
    env = hub_env(hub, {**os.environ, "OVERSPEC_CACHE": str(tmp_path / "cache")})
    args = ("eval", OPEN_CLIP_HUB, str(digits_folder), "--protocol", "zeroshot", "--json", "--workers", "0")
    first = overspec(*args, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    hub.stop()
    offline = {**env, "HF_HUB_OFFLINE": "1", "OVERSPEC_CACHE": str(tmp_path / "cache2")}  # recomputed, not recalled
    again = overspec(*args, env=offline, timeout=120)
    assert again.returncode == 0, again.stderr
    metrics = [json.loads(run.stdout)["results"][0]["metrics"] for run in (first, again)]
    assert metrics[0] == metrics[1] and "acc1" in metrics[0]


@pytest.mark.slow
def test_config_by_reference_online_then_offline(hub, digits_folder, tmp_path):
    """An experiment naming its models by reference: timm (probe), open_clip and transformers CLIP (zero-shot)."""
    env = hub_env(hub, {**os.environ, "OVERSPEC_CACHE": str(tmp_path / "cache")})
    models = [
        {"name": TIMM_HUB, "protocols": ["linear_probe"]},
        {"name": OPEN_CLIP_HUB, "protocols": ["zeroshot"]},
        {"name": HF_CLIP, "protocols": ["zeroshot"]},
    ]
    general = {
        "datasets": ["digits"],
        "roots": {"digits": str(digits_folder)},
        "protocols": ["zeroshot", "linear_probe"],
    }
    config = write_yaml(tmp_path / "exp.yaml", {"name": "refs", "models": models, "general": general, "workers": 0})
    ran = overspec("run", str(config), "--out", str(tmp_path / "run"), env=env, timeout=180)
    assert ran.returncode == 0, ran.stderr
    hub.stop()
    offline = {**env, "HF_HUB_OFFLINE": "1", "OVERSPEC_CACHE": str(tmp_path / "cache2")}
    rerun = overspec("run", str(config), "--out", str(tmp_path / "run2"), env=offline, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    rows = [(tmp_path / d / "results.csv").read_text().splitlines() for d in ("run", "run2")]
    assert len(rows[0]) > 3 and [r.split(",")[:8] for r in rows[0]] == [r.split(",")[:8] for r in rows[1]]


def test_fetch_offline_lays_out_the_cached_dataset(hub, monkeypatch, tmp_path, clip_file):
    """The cluster set-up: an online node filled huggingface_hub's cache; an offline one fetches from it."""
    from overspec.fetch import fetch

    publish_webdataset(hub, "clip-benchmark/wds_vtab-svhn", tmp_path / "published")
    _online(monkeypatch, hub, tmp_path / "hf")
    fetch(["svhn"], root=tmp_path / "online", log=lambda line: None)
    shard = tmp_path / "online" / "svhn" / "test" / "0.tar"
    blobs = list((tmp_path / "hf").rglob("blobs/*"))
    assert any(b.stat().st_ino == shard.stat().st_ino for b in blobs)  # the cache's own file, linked: no copy
    hub.stop()
    _offline(monkeypatch)
    lines: list[str] = []
    fetch(["svhn"], root=tmp_path / "data", log=lines.append)
    assert lines == [
        f"svhn: test 60 samples in 2 shards, train 60 samples in 2 shards; class names match catalog/svhn.yaml "
        f"({tmp_path / 'data' / 'svhn'}) (from huggingface_hub's cache)"
    ]
    spec = write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    from typer.testing import CliRunner

    from overspec.cli import app

    args = ["eval", str(spec), "svhn", "--root", str(tmp_path / "data" / "svhn"), "--json", "--workers", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["counts"]["n_test"] == 60


def test_siglip_scores_prompts_with_its_sigmoid_and_bias(hub, monkeypatch, tmp_path):
    """A sigmoid-loss model (open_clip builds `logit_bias` from `init_logit_bias`, as for SigLIP and SigLIP 2):
    zero-shot logits are its own exp(logit_scale)·cos + logit_bias, and both prompt scorers of attack detection
    use its sigmoid; checked against the model's own tensors, computed here by hand."""
    from types import SimpleNamespace

    from overspec.protocols.attack_detection import PROMPTS, STUDY_PROMPTS, prompt_scores
    from overspec.protocols.zeroshot import text_classifier, zero_shot_logits

    _online(monkeypatch, hub, tmp_path / "hf")
    encoder = load_model("hf-hub:me/tiny-siglip")
    model = encoder.module
    scale, bias = float(model.logit_scale.detach().exp()), float(model.logit_bias.detach())
    assert encoder.prompt_rule.kind == "sigmoid" and (encoder.prompt_rule.scale, encoder.prompt_rule.bias) == (
        scale,
        bias,
    )
    assert -10.1 < bias < -9.9 and load_model(OPEN_CLIP_HUB).prompt_rule.kind == "softmax"  # CLIP keeps its softmax
    features = _embed(encoder)

    def prompt_embedding(prompts: list[str]) -> torch.Tensor:  # open_clip's prompt ensemble, by hand
        with torch.no_grad():
            text = model.encode_text(encoder.tokenizer(prompts)).double()
        mean = (text / text.norm(dim=-1, keepdim=True)).mean(dim=0)
        return mean / mean.norm()

    image = torch.from_numpy(features).double()
    image = image / image.norm(dim=-1, keepdim=True)
    sigmoid = torch.sigmoid

    bonafide, attack = PROMPTS["mad"]
    cos_b, cos_a = image @ prompt_embedding(bonafide), image @ prompt_embedding(attack)
    expected = sigmoid(scale * cos_b + bias) - sigmoid(scale * cos_a + bias)
    data = SimpleNamespace(task="mad")
    np.testing.assert_allclose(prompt_scores(encoder, {"test": features}, data), expected.numpy(), atol=1e-5)
    study = sigmoid(scale * (image @ prompt_embedding([STUDY_PROMPTS["mad"][0]])) + bias)
    ours = prompt_scores(encoder, {"test": features}, data, prompts="study")
    np.testing.assert_allclose(ours, study.numpy(), atol=1e-5)
    weights = text_classifier(encoder, ["cat", "dog"], ["a photo of a {c}."])
    logits = zero_shot_logits(features, weights, encoder.prompt_rule)
    by_hand = scale * (image @ torch.stack([prompt_embedding([f"a photo of a {c}."]) for c in ("cat", "dog")]).T)
    np.testing.assert_allclose(logits, (by_hand + bias).numpy(), atol=1e-3)


def test_zoo_foundation_families_name_their_hub_copies_and_preprocessing(monkeypatch):
    """DINOv2 (timm), SigLIP / SigLIP 2 and EVA-CLIP (open_clip) by zoo name: the hub copies their library publishes,
    the tag's own preprocessing, and offline without the cache, one line naming the fetch."""
    import open_clip

    from overspec.models import resolve_spec
    from overspec.models.hub import hub_needs
    from overspec.models.open_clip_family import tag_preprocess_cfg

    repos = {
        name: hub_needs(resolve_spec(name))[0].repo for name in ("dinov2-vit-s14.lvd142m", "siglip2-vit-b16.webli")
    }
    assert repos == {
        "dinov2-vit-s14.lvd142m": "timm/vit_small_patch14_dinov2.lvd142m",
        "siglip2-vit-b16.webli": "timm/ViT-B-16-SigLIP2",
    }
    tokenizer = [need for need in hub_needs(resolve_spec("siglip-vit-b16.webli")) if need.optional]
    assert {need.repo for need in tokenizer} == {"timm/ViT-B-16-SigLIP"}  # fetched with the weights
    defaults = {"size": 224, "mean": (0.48145466, 0.4578275, 0.40821073), "std": (0.26862954, 0.26130258, 0.27577711)}
    siglip = tag_preprocess_cfg(defaults, open_clip.get_pretrained_cfg("ViT-B-16-SigLIP2", "webli"))
    assert (siglip["mean"], siglip["std"], siglip["resize_mode"]) == ((0.5,) * 3, (0.5,) * 3, "squash")
    eva = tag_preprocess_cfg(defaults, open_clip.get_pretrained_cfg("EVA02-B-16", "merged2b_s8b_b131k"))
    assert eva["mean"] == defaults["mean"] and eva["resize_mode"] == "shortest"
    _offline(monkeypatch)
    with pytest.raises(OfflineError, match=r"run `overspec fetch siglip2-vit-b16.webli`$"):
        load_model("siglip2-vit-b16.webli")


def test_fetch_fills_the_cache_for_a_reference(hub, monkeypatch, tmp_path):
    """`overspec fetch REF` on the online node is what the offline message names: afterwards the offline node loads."""
    from overspec.fetch import describe, fetch
    from overspec.fetch.weights import HubModelTarget
    from overspec.models import resolve_spec

    _online(monkeypatch, hub, tmp_path / "hf")
    planned = fetch([HF_CLIP], dry_run=True, log=lambda line: None)
    assert [f.path for f in planned.transfers[0].files] == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    assert not list((tmp_path / "hf").rglob("model.safetensors"))  # a dry run downloads nothing
    done = fetch([HF_CLIP], log=lambda line: None)
    assert done.done == [f"{HF_CLIP}: 3 file(s) of {HF_CLIP} in huggingface_hub's cache ({tmp_path / 'hf'})"]
    hub.stop()
    _offline(monkeypatch)
    assert load_model(HF_CLIP).has_text
    with pytest.raises(OfflineError, match=f"run `overspec fetch {OPEN_CLIP_HUB}`"):
        load_model(OPEN_CLIP_HUB)  # never fetched into this cache
    target = HubModelTarget(resolve_spec(HF_CLIP))
    assert target.present() and describe(target).endswith(f"; fetch it: overspec fetch {HF_CLIP}")

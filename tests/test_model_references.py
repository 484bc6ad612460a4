"""Model references as the ecosystem writes them, resolved by one registry of forms into specs; spec fields typed
as users write them. Hub-backed loading is in test_hub_models.py."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers.cli import write_yaml
from overspec.errors import ConfigError, UnknownNameError
from overspec.models import resolve_spec
from overspec.models.identity import spec_fingerprint


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("clip-vit-b16.openai", {"family": "openai_clip", "arch": "ViT-B-16", "pretrained": "openai"}),
        ("open_clip:ViT-B-16/openai", {"family": "open_clip", "arch": "ViT-B-16", "pretrained": "openai"}),
        ("open_clip:ViT-B-16-SigLIP/webli", {"family": "open_clip", "arch": "ViT-B-16-SigLIP", "pretrained": "webli"}),
        (
            "timm/efficientnet_lite0.ra_in1k",
            {"family": "timm", "arch": "efficientnet_lite0.ra_in1k", "pretrained": True},
        ),
        ("efficientnet_lite0.ra_in1k", {"family": "timm", "arch": "efficientnet_lite0.ra_in1k", "pretrained": True}),
        ("efficientnet_lite0", {"family": "timm", "arch": "efficientnet_lite0.ra_in1k", "pretrained": True}),
        ("vit_small_patch14_dinov2.lvd142m", {"family": "timm", "arch": "vit_small_patch14_dinov2.lvd142m"}),
        ("openai/clip-vit-base-patch16", {"family": "hf_clip", "hub": "openai/clip-vit-base-patch16"}),
    ],
)
def test_each_form_becomes_its_spec(reference, expected):
    spec = resolve_spec(reference)
    assert spec.model_dump(include=set(expected)) == expected
    assert spec.name == reference  # results name the model as the user wrote it


@pytest.mark.parametrize("reference", ["ViT-B-16", "ViT-B-16:openai", "clip-vit-b16", "efficientnet-lite0"])
def test_unknown_reference_lists_near_matches_and_every_form(reference):
    with pytest.raises(UnknownNameError) as info:
        resolve_spec(reference)
    message = str(info.value)
    assert message.startswith(f"unknown model {reference!r};") and "\n" not in message
    for form in ("a spec file", "a zoo name", "hf-hub:ORG/REPO", "open_clip:ARCH/TAG", "timm/NAME.TAG", "ORG/REPO"):
        assert form in message
    if reference.startswith("ViT-B-16"):
        assert "did you mean open_clip:ViT-B-16/openai?" in message
    else:
        assert "did you mean 'clip-vit-b16.openai'" in message or "efficientnet-lite0.in1k" in message


def test_wrong_tags_name_the_published_ones():
    with pytest.raises(Exception, match=r"no pretrained tag 'nope' for ViT-B-16; published: open_clip:ViT-B-16/openai"):
        resolve_spec("open_clip:ViT-B-16/nope")
    with pytest.raises(Exception, match=r"no pretrained tag efficientnet_lite0.nope; published: efficientnet_lite0.ra"):
        resolve_spec("timm/efficientnet_lite0.nope")


def test_pretrained_is_a_boolean_as_yaml_writes_it(tmp_path):
    as_bool = tmp_path / "a.yaml"
    as_bool.write_text("family: timm\narch: efficientnet_lite0.ra_in1k\npretrained: true\n")
    as_text = write_yaml(
        tmp_path / "b.yaml", {"family": "timm", "arch": "efficientnet_lite0.ra_in1k", "pretrained": "true"}
    )
    assert resolve_spec(str(as_bool)).pretrained is True
    assert resolve_spec(str(as_text)).pretrained is True  # one value, hence one fingerprint
    off = resolve_spec({"family": "timm", "arch": "resnet10t", "pretrained": False, "weights": "w.pth"})
    assert off.pretrained is None


def test_hf_clip_weights_as_hub_id_or_folder(tmp_path):
    spec = resolve_spec({"family": "hf_clip", "weights": "openai/clip-vit-base-patch16"})
    assert spec.hub == "openai/clip-vit-base-patch16" and spec.weights is None
    (tmp_path / "me" / "my-clip").mkdir(parents=True)  # a folder beside the spec file with a hub-like name
    local = write_yaml(tmp_path / "local.yaml", {"family": "hf_clip", "weights": "me/my-clip"})
    spec = resolve_spec(str(local))
    assert spec.hub is None and spec.weights == str(tmp_path / "me" / "my-clip")
    remote = write_yaml(tmp_path / "remote.yaml", {"family": "hf_clip", "weights": "openai/clip-vit-base-patch16"})
    assert resolve_spec(str(remote)).hub == "openai/clip-vit-base-patch16"


def test_same_model_by_spec_and_by_reference_has_one_fingerprint(clip_file, tmp_path):
    spec = write_yaml(tmp_path / "s.yaml", {"family": "openai_clip", "weights": str(clip_file), "name": "anything"})
    assert spec_fingerprint(str(spec)) == spec_fingerprint({"family": "openai_clip", "weights": str(clip_file)})


def test_models_resolve_prints_yaml_and_json():
    from typer.testing import CliRunner

    from overspec.cli import app

    shown = CliRunner().invoke(app, ["models", "--resolve", "open_clip:ViT-B-16/openai"])
    assert shown.exit_code == 0, shown.output
    assert yaml.safe_load(shown.stdout) == {
        "family": "open_clip",
        "name": "open_clip:ViT-B-16/openai",
        "arch": "ViT-B-16",
        "pretrained": "openai",
    }
    as_json = CliRunner().invoke(app, ["models", "--resolve", "timm/efficientnet_lite0.ra_in1k", "--json"])
    assert json.loads(as_json.stdout)["pretrained"] is True


def test_unknown_reference_is_one_line_from_the_command(monkeypatch, capsys):
    from overspec.cli import run

    monkeypatch.setattr("sys.argv", ["overspec", "models", "--resolve", "ViT-B-16"])
    with pytest.raises(SystemExit) as exit_code:
        run()
    stderr = capsys.readouterr().err
    assert exit_code.value.code == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith("error: unknown model 'ViT-B-16'") and "a spec file" in stderr


def test_experiment_configs_take_references(tmp_path):
    from overspec.config import load_config

    base = {"name": "x", "general": {"root": str(tmp_path), "datasets": ["mnist"], "protocols": ["zeroshot"]}}
    config = write_yaml(
        tmp_path / "e.yaml", {**base, "models": ["open_clip:ViT-B-16/openai", "timm/resnet10t.c3_in1k"]}
    )
    assert [m.name for m in load_config(config, check_paths=False).model_entries()] == [
        "open_clip:ViT-B-16/openai",
        "timm/resnet10t.c3_in1k",
    ]
    wrong = write_yaml(tmp_path / "w.yaml", {**base, "models": ["ViT-B-16"]})
    with pytest.raises(ConfigError, match=r"key 'models.0': unknown model 'ViT-B-16'.*open_clip:ViT-B-16/openai"):
        load_config(wrong, check_paths=False)


def test_a_family_whose_library_is_not_installed_is_one_line_and_not_available(monkeypatch):
    """A wheel installed with the timm extra only: listing the zoo must not crash on the open_clip entries."""
    import sys

    from overspec.errors import ModelError
    from overspec.models import weights_available
    from overspec.models.hub import hub_needs
    from overspec.models.spec import spec_from_dict

    # open_clip's published ViT-B/16 by its tag, no local file (a zoo entry's weights path may exist from another test)
    spec = spec_from_dict(
        {"family": "open_clip", "arch": "ViT-B-16", "pretrained": "openai", "name": "clip"}, origin="test"
    )
    monkeypatch.setitem(sys.modules, "open_clip", None)  # `import open_clip` now raises ModuleNotFoundError
    with pytest.raises(ModelError) as caught:
        hub_needs(spec)
    assert str(caught.value).endswith(
        "needs the package open_clip, which is not installed; pip install 'overspec[clip]'"
    ) and "\n" not in str(caught.value)
    assert weights_available(spec) is False

"""The `overspec` command: listings, embedding, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.cli import overspec, write_yaml
from helpers.data import PHOTOS


def test_version_and_listings():
    from overspec import __version__

    assert overspec("--version").stdout.splitlines()[0] == f"overspec {__version__}"  # then the libraries
    rows = json.loads(overspec("models", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    for name in (
        "clip-vit-b16.openai",
        "clip-vit-l14.openai",
        "froundation-vit-b16",
        "froundation-vit-l14",
        "madation-vit-b16",
        "madation-vit-l14",
        "foundpad-vit-b16",
        "foundpad-vit-l14",
    ):
        assert by_name[name]["available"] is False
    assert by_name["froundation-vit-b16"] == {
        "name": "froundation-vit-b16",
        "family": "froundation",
        "arch": "ViT-B-16",
        "available": False,
    }
    assert by_name["efficientnet-lite0.in1k"]["available"] is True
    datasets = {r["name"]: r for r in json.loads(overspec("datasets", "--json").stdout)}
    assert datasets["cifar10"] == {
        "name": "cifar10",
        "title": "CIFAR-10",
        "classes": 10,
        "headline_metric": "acc1",
        "in_study": True,
    }
    assert sum(r["in_study"] for r in datasets.values()) == 14  # the study's general suite
    protocols = [r["name"] for r in json.loads(overspec("protocols", "--json").stdout)]
    assert sorted(protocols) == [
        "attack_acceptance",
        "attack_detection",
        "face_verification",
        "identification",
        "ijb",
        "linear_probe",
        "morph_acceptance",
        "zeroshot",
    ]


def test_embed_writes_features_and_paths(tmp_path, clip_file):
    spec = write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    result = overspec("embed", str(spec), str(PHOTOS), "--out", str(tmp_path / "out" / "f.npy"), "--workers", "0")
    assert result.returncode == 0, result.stderr
    features = np.load(tmp_path / "out" / "f.npy")
    names = [json.loads(line) for line in (tmp_path / "out" / "f.paths.jsonl").read_text().splitlines()]
    assert names == sorted(p.name for p in PHOTOS.glob("*.jpg")) and features.shape == (len(names), 32)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["embed", "froundation-vit-b61", "IMAGES", "--out", "f.npy"],
            "error: unknown model 'froundation-vit-b61'; did you mean 'froundation-vit-b16'",
        ),
        (["embed", "madation-vit-l14", "IMAGES", "--out", "f.npy"], "error: madation-vit-l14: checkpoint file"),
        (
            ["embed", "BAD_SPEC", "IMAGES", "--out", "f.npy"],
            "error: BAD_SPEC: key 'lora.r': Input should be greater than 0 (got 0)",
        ),
        (["embed", "EVIL_SPEC", "IMAGES", "--out", "f.npy"], "needs arbitrary unpickling, which can execute code"),
        (["embed", "clip-vit-b16.openai", "NO_DIR", "--out", "f.npy"], "error: image folder"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(tmp_path, args, message):
    bad = write_yaml(
        tmp_path / "bad.yaml", {"family": "froundation", "checkpoint": "x.pth", "lora": {"r": 0, "alpha": 1}}
    )
    torch.save(torch.nn.Linear(2, 2), tmp_path / "evil.pth")
    evil = write_yaml(tmp_path / "evil.yaml", {"family": "openai_clip", "weights": "evil.pth"})
    replace = {"BAD_SPEC": str(bad), "EVIL_SPEC": str(evil), "IMAGES": str(PHOTOS), "NO_DIR": str(tmp_path / "none")}
    result = overspec(*[replace.get(a, a) for a in args])
    message = message.replace("BAD_SPEC", str(bad))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

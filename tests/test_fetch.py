"""`overspec fetch` against a fake hub on 127.0.0.1: real downloads through huggingface_hub, then eval on them;
resume, re-fetch of a damaged shard, the offline line, dry runs, disk space, checksums, validate's full list."""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import time
from pathlib import Path

import pytest

from helpers.cli import overspec, write_yaml
from helpers.hub import FakeHub, hub_env, publish_webdataset

SVHN = "clip-benchmark/wds_vtab-svhn"
CLIP_REPO = "timm/vit_base_patch16_clip_224.openai"


@pytest.fixture
def hub():
    server = FakeHub().start()
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path, hub):
    return hub_env(hub, dict(os.environ))


def test_fetch_then_eval(hub, env, tmp_path, clip_file):
    publish_webdataset(hub, SVHN, tmp_path / "published")
    hub.add(CLIP_REPO, {"open_clip_pytorch_model.bin": clip_file.read_bytes()}, repo_type="model")
    data = tmp_path / "data"
    done = overspec("fetch", "svhn", "clip-vit-b16.openai", "--root", str(data), env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "svhn: test 60 samples in 2 shards, train 60 samples in 2 shards; class names match" in done.stderr
    weights = Path(env["OVERSPEC_WEIGHTS"]) / "clip" / "ViT-B-16.pt"
    assert weights.read_bytes() == clip_file.read_bytes() and "sha256" in done.stderr
    assert sorted(p.name for p in (data / "svhn" / "test").iterdir()) == ["0.tar", "1.tar", "nshards.txt"]
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    args = ("eval", "clip-vit-b16.openai", "svhn", "--root", str(data / "svhn"), "--json", "--workers", "0")
    result = overspec(*args, env=offline)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["counts"]["n_test"] == 60


def test_interrupted_download_resumes(hub, env, tmp_path):
    published = publish_webdataset(hub, SVHN, tmp_path / "published")
    with tarfile.open(published / "test" / "1.tar", "a") as tar:  # 12 MB: more than one 10 MiB download chunk
        info = tarfile.TarInfo("padding.bin")
        info.size = 12_000_000
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    hub.add_folder(SVHN, published)
    hub.fail["test/1.tar"] = 1  # the first run dies on this shard
    first = overspec("fetch", "svhn", "--root", str(tmp_path / "data"), env=env, timeout=60)
    assert first.returncode == 2 and first.stderr.count("\n") == 1, first.stderr
    assert "run the same command again: files already complete are kept" in first.stderr
    hub.cut["test/1.tar"] = 11_000_000  # the second run's connection drops after 11 MB of it
    second = overspec("fetch", "svhn", "--root", str(tmp_path / "data"), env=env, timeout=60)
    assert second.returncode == 0, second.stderr
    assert hub.ranges == [f"bytes={10 * 2**20}-"]  # it went on from the last whole chunk written
    assert hub.gets["test/1.tar"] == 1 and hub.gets["test/0.tar"] == 1  # the finished shard was not fetched again


def test_damaged_shard_is_fetched_again(hub, env, tmp_path):
    publish_webdataset(hub, SVHN, tmp_path / "published")
    data = tmp_path / "data"
    assert overspec("fetch", "svhn", "--root", str(data), env=env, timeout=60).returncode == 0
    shard = data / "svhn" / "test" / "0.tar"
    before = shard.stat()
    shard.write_bytes(b"\0" * before.st_size)  # same size, other bytes ...
    # ... and the old mtime: bit rot that huggingface_hub's own check (mtime against its metadata, with a second's
    # slack) trusts, so only overspec's sha256 can see it, however long the steps above took
    os.utime(shard, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = overspec("fetch", "svhn", "--root", str(data), env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "test/0.tar is damaged (sha256 differs from the published one); fetching it again" in again.stderr
    assert hub.gets["test/0.tar"] == 2 and shard.read_bytes() == (tmp_path / "published/test/0.tar").read_bytes()


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "closed port"])
def test_offline_is_one_line(env, tmp_path, how):
    if how == "HF_HUB_OFFLINE":
        env = {**env, "HF_HUB_OFFLINE": "1"}
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            env = {**env, "HF_ENDPOINT": f"http://127.0.0.1:{s.getsockname()[1]}"}  # closed once the block ends
    start = time.monotonic()
    result = overspec("fetch", "svhn", "--root", str(tmp_path / "data"), env=env, timeout=60)
    assert time.monotonic() - start < 15  # no retry loop
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: the hub cannot be reached")
    assert f"overspec fetch svhn --root DIR`, then copy DIR/svhn to {tmp_path / 'data' / 'svhn'}" in result.stderr


def test_dry_run_lists_files_and_bytes(hub, env, tmp_path):
    published = publish_webdataset(hub, SVHN, tmp_path / "published")
    result = overspec("fetch", "svhn", "--root", str(tmp_path / "data"), "--split", "test", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    expected = [p for p in published.rglob("*") if p.is_file() and not p.is_relative_to(published / "train")]
    total = sum(p.stat().st_size for p in expected)
    assert f"{len(expected)} files" in result.stdout and f"({total} bytes)" in result.stdout
    assert not (tmp_path / "data").exists() and not hub.gets


def test_refuses_when_the_disk_is_too_small(monkeypatch, tmp_path):
    import shutil

    from overspec.errors import StorageError
    from overspec.fetch.plan import Transfer, check_space
    from overspec.fetch.remote import RemoteFile

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 5000, 5000))
    transfer = Transfer("svhn", SVHN, "dataset", tmp_path / "svhn", [RemoteFile("test/0.tar", 2_000_000)])
    with pytest.raises(StorageError, match=r"fetching svhn needs 2.0 MB but its file system has 5.0 kB free"):
        check_space([transfer])


def test_wrong_sizes_and_class_names_are_refused(hub, env, tmp_path):
    publish_webdataset(hub, "clip-benchmark/wds_mnist", tmp_path / "mnist", classnames=[str(i) for i in range(10)])
    result = overspec("fetch", "mnist", "--root", str(tmp_path / "data"), env=env, timeout=60)
    assert result.returncode == 2
    assert "the test split has 60 samples but catalog/mnist.yaml (sizes.test) expects 10000" in result.stderr
    publish_webdataset(hub, SVHN, tmp_path / "svhn", classnames=[str(i) for i in range(10)])
    result = overspec("fetch", "svhn", "--root", str(tmp_path / "data"), env=env, timeout=60)
    assert result.returncode == 2 and "classnames.txt and the catalog" in result.stderr, result.stderr


def test_weights_checksum(hub, env, tmp_path, clip_file):
    import hashlib

    hub.add("me/tiny-clip", {"model.bin": clip_file.read_bytes()}, repo_type="model")
    good = hashlib.sha256(clip_file.read_bytes()).hexdigest()
    for sha, ok in (("0" * 64, False), (good, True)):
        spec = write_yaml(
            tmp_path / "tiny.yaml",
            {
                "family": "openai_clip",
                "weights": str(tmp_path / "w" / "tiny.pt"),
                "download": {"repo": "me/tiny-clip", "file": "model.bin", "sha256": sha},
            },
        )
        result = overspec("fetch", str(spec), env=env, timeout=60)
        assert (result.returncode == 0) == ok, result.stderr
        assert (tmp_path / "w" / "tiny.pt").exists() == ok
        assert ok or f"has sha256 {good}, not {'0' * 64} (the spec's download.sha256)" in result.stderr


def test_validate_lists_every_missing_item(tmp_path):
    config = write_yaml(
        tmp_path / "exp.yaml",
        {
            "name": "x",
            "models": ["clip-vit-b16.openai", {"name": "froundation-vit-b16", "base": "clip-vit-b16.openai"}],
            "general": {"root": str(tmp_path / "data"), "datasets": ["svhn", "mnist"], "protocols": ["zeroshot"]},
            "biometric": [{"name": "lfw", "protocol": "face_verification", "path": str(tmp_path / "lfw.bin")}],
        },
    )
    result = overspec("validate", str(config))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 6, result.stderr
    assert lines[0].startswith("missing weights of clip-vit-b16.openai at ")
    assert lines[0].endswith("fetch them: overspec fetch clip-vit-b16.openai")
    assert lines[1].startswith("missing froundation-vit-b16 checkpoint: get it from FRoundation")
    data = tmp_path / "data"
    assert lines[2] == f"missing dataset svhn at {data / 'svhn'}; fetch it: overspec fetch svhn --root {data}"
    assert lines[4].startswith("missing lfw: get it from insightface") and str(tmp_path / "lfw.bin") in lines[4]
    assert lines[5].startswith(f"error: {config}: 5 file(s) the experiment reads are missing")


def test_a_malformed_nshards_file_names_itself(tmp_path):
    from overspec.errors import FetchError
    from overspec.fetch.datasets import _shard_count

    declared = tmp_path / "nshards.txt"
    declared.write_text("12\n")
    assert _shard_count(declared) == 12
    declared.write_text("<html>rate limited</html>")
    with pytest.raises(FetchError, match=r"nshards.txt should hold the number of shards, not '<html>"):
        _shard_count(declared)

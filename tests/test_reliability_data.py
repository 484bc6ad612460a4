"""Data and config files read whole or refused: every case is real bytes on disk and one exact outcome (the
right number, or one error line naming the file with nothing written)."""

from __future__ import annotations

import numpy as np
import pytest

from overspec.errors import DataError


def _config_error(path) -> str:
    from overspec.config import load_config
    from overspec.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


# --- YAML the user writes ---------------------------------------------------------------------------------------


def test_a_key_given_twice_in_a_config_is_one_line_naming_file_key_and_lines(tmp_path):
    config = tmp_path / "twice.yaml"
    config.write_text(
        "name: twice\nmodels: [clip-vit-b16.openai]\n"
        "general:\n  datasets: [cifar10]\n  protocols: [zeroshot]\n"
        "general:\n  datasets: [cifar10]\n  protocols: [linear_probe]\n"
    )
    assert _config_error(config) == (
        f"{config}: line 6: key 'general' appears twice in one mapping (first on line 3); "
        "YAML would keep only the last: merge the two into one"
    )


def test_a_key_given_twice_in_a_model_spec_is_refused_and_merge_keys_still_work(tmp_path):
    from overspec._validation import parse_yaml
    from overspec.errors import ConfigError
    from overspec.models.spec import load_spec_file

    spec = tmp_path / "spec.yaml"
    spec.write_text("family: open_clip\narch: ViT-B-16\nweights: a.pt\nweights: b.pt\n")
    try:
        load_spec_file(spec)
    except ConfigError as exc:
        assert str(exc) == (
            f"{spec}: line 4: key 'weights' appears twice in one mapping (first on line 3); "
            "YAML would keep only the last: merge the two into one"
        )
    else:
        raise AssertionError("a repeated key was accepted")
    # an explicit key overriding one merged in through `<<` is YAML's intent, not a repeat
    assert parse_yaml("a: &x {k: 1, j: 2}\nb:\n  <<: *x\n  k: 3\n", origin="m.yaml")["b"] == {"k": 3, "j": 2}


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    config = tmp_path / "latin1.yaml"
    config.write_bytes("name: caf\u00e9\nmodels: [clip-vit-b16.openai]\n".encode("latin-1"))
    assert _config_error(config) == f"{config}: not UTF-8 text (byte 0xe9 on line 1); save the file as UTF-8"


# --- MAD/PAD protocol tables ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second", "what"),
    [("a.png,bonafide,,test", "twice"), ("./a.png,attack,print,train", "as bona fide and as attack")],
)
def test_a_protocol_csv_listing_an_image_twice_or_with_two_labels_is_refused(tmp_path, face_dir, second, what):
    from overspec.data.attack_protocol import load_attack_dataset

    for name, source in (("a.png", "face_00.png"), ("b.png", "face_01.png")):
        (tmp_path / name).write_bytes((face_dir / source).read_bytes())
    table = tmp_path / "protocol.csv"
    table.write_text(f"path,label,attack_type,split\na.png,bonafide,,test\nb.png,attack,print,test\n{second}\n")
    with pytest.raises(DataError) as caught:
        load_attack_dataset(table, task="mad")
    assert str(caught.value) == (
        f"{table}: image {tmp_path / 'a.png'} is listed {what} (lines 2 and 4); keep one row per image"
    )


# --- embed's path list ------------------------------------------------------------------------------------------


def test_embed_paths_survive_a_file_name_with_a_newline(tmp_path, clip_file, face_dir):
    import json

    import numpy as np
    from typer.testing import CliRunner

    from helpers.cli import write_yaml
    from overspec.cli import app

    images = tmp_path / "images"
    images.mkdir()
    names = ["a.png", "b\nc.png", "d.png", "e.png"]  # the newline sorts b\nc.png second
    for name, source in zip(names, sorted(face_dir.iterdir()), strict=False):
        (images / name).write_bytes(source.read_bytes())
    spec = write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    out = tmp_path / "f.npy"
    result = CliRunner().invoke(app, ["embed", str(spec), str(images), "--out", str(out), "--workers", "0"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "f.paths.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == names and np.load(out).shape == (4, 32)


# --- only regular files are read as images ----------------------------------------------------------------------

_READ_FOLDERS = """
import sys
from overspec.data import load_dataset
from overspec.errors import DataError
for root in sys.argv[1:]:
    dataset = load_dataset(root)
    try:
        dataset.fingerprint
    except DataError as exc:
        print(exc)
    try:
        dataset.split("train").images.load(2)
    except DataError as exc:
        print(exc)
"""


def test_a_named_pipe_or_device_called_png_is_refused_by_name_within_seconds(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from helpers.data import digit_images

    expected = []
    for kind, what in (("fifo", "a named pipe"), ("zero", "a device")):
        for i, (image, label) in enumerate(digit_images(2)[:4]):
            for split in ("train", "test"):
                (tmp_path / kind / split / f"c{label}").mkdir(parents=True, exist_ok=True)
                image.save(tmp_path / kind / split / f"c{label}" / f"{i}.png")
        bad = tmp_path / kind / "train" / "c0" / "x.png"  # sorts last in c0: sample 2 of train
        os.mkfifo(bad) if kind == "fifo" else bad.symlink_to("/dev/zero")
        expected += [f"cannot read image {bad}: not a regular file but {what}; remove or replace the file"] * 2
    start = time.perf_counter()
    result = subprocess.run(  # a child, so that a read that never ends fails the test instead of hanging it
        [sys.executable, "-c", _READ_FOLDERS, str(tmp_path / "fifo"), str(tmp_path / "zero")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.perf_counter() - start < 30, "reading waited on the file"
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


# --- decoded size bounded from the header -----------------------------------------------------------------------


def test_a_one_by_100000_png_is_refused_from_its_header(tmp_path):
    from PIL import Image

    from overspec.data.images import ImageFiles

    strip = tmp_path / "strip.png"
    Image.new("RGB", (1, 100_000), (200, 10, 10)).save(strip)
    assert strip.stat().st_size < 1000  # a few hundred bytes; decoded and resized to 224 wide: 15 GB
    with pytest.raises(DataError) as caught:
        ImageFiles([strip]).load(0)
    assert str(caught.value) == (
        f"image {strip} is 1 x 100000 pixels, longer on one side than 100 times the other (a shortest-side resize "
        "would make it enormous); crop it or remove it"
    )
    Image.new("RGB", (100, 1)).save(tmp_path / "edge.png")  # at the bound: read
    assert ImageFiles([tmp_path / "edge.png"]).load(0).size == (100, 1)


# --- a webdataset is read whole or refused ----------------------------------------------------------------------


def _shard(path, members) -> None:
    """A tar shard of ``members``: ``(name, bytes)`` files, ``(name, ("sym"|"hard", target))`` links."""
    import io
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            if isinstance(payload, tuple):
                info.type = tarfile.SYMTYPE if payload[0] == "sym" else tarfile.LNKTYPE
                info.linkname = payload[1]
                tar.addfile(info)
            else:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))


def _samples(n: int, offset: int = 0, labels=None) -> list:
    from helpers.data import digit_images, png_bytes

    members = []
    for i, (image, label) in enumerate(digit_images(n // 10 + 1, offset)[:n]):
        label = label if labels is None else labels[i]
        members += [(f"k{i:04d}.png", png_bytes(image)), (f"k{i:04d}.cls", str(label).encode())]
    return members


def test_two_splits_with_equal_shard_names_and_sizes_never_share_features(tmp_path, clip_file):
    from overspec.data import load_dataset
    from overspec.features import extract_features
    from overspec.models import load_model

    _shard(tmp_path / "wds" / "train" / "0.tar", _samples(20, 0))
    _shard(tmp_path / "wds" / "test" / "0.tar", _samples(20, 60))
    (tmp_path / "wds" / "classnames.txt").write_text("\n".join(str(i) for i in range(10)))
    assert (tmp_path / "wds/train/0.tar").stat().st_size == (tmp_path / "wds/test/0.tar").stat().st_size
    dataset = load_dataset(tmp_path / "wds")
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})

    def features(split, **options):
        return extract_features(encoder, dataset.split(split).images, num_workers=0, progress=False, **options)

    train = features("train")
    test = features("test")  # before: the train split's cached rows
    assert not np.array_equal(train, test)
    np.testing.assert_array_equal(test, features("test", cache=False))


def test_a_shard_rewritten_in_place_with_its_mtime_restored_is_read_again(tmp_path, clip_file):
    import os

    from overspec.data import load_dataset
    from overspec.features import extract_features
    from overspec.models import load_model

    shard = tmp_path / "wds" / "test" / "0.tar"
    _shard(shard, _samples(20))
    (tmp_path / "wds" / "classnames.txt").write_text("\n".join(str(i) for i in range(10)))
    stat = shard.stat()
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    before = load_dataset(tmp_path / "wds").split("test")
    extract_features(encoder, before.images, num_workers=0, progress=False)

    relabelled = [(i * 7 + 3) % 10 for i in range(20)]
    _shard(shard, _samples(20, 60, labels=relabelled))  # other images, other labels, the same size
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert shard.stat().st_size == stat.st_size and shard.stat().st_mtime_ns == stat.st_mtime_ns
    after = load_dataset(tmp_path / "wds").split("test")
    assert after.labels.tolist() == relabelled
    cached = extract_features(encoder, after.images, num_workers=0, progress=False)
    np.testing.assert_array_equal(cached, extract_features(encoder, after.images, cache=False, num_workers=0))


def _cut_before_last_sample(shard, into: int) -> None:
    import tarfile

    with tarfile.open(shard) as tar:
        cut = tar.getmembers()[-2].offset + into  # the last sample's image header: the shard ends after a sample
    shard.write_bytes(shard.read_bytes()[:cut])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: _cut_before_last_sample(s, 0), "is truncated at a member boundary (no end-of-archive block"),
        (lambda s: _cut_before_last_sample(s, 200), "is truncated inside a header (no end-of-archive block"),
        (lambda s: s.write_bytes(bytes(s.stat().st_size)), "holds no samples; delete it and fetch it again"),
    ],
    ids=["at a member boundary", "inside a header", "zeroed"],
)
def test_a_truncated_or_zeroed_shard_is_one_line_naming_it(tmp_path, damage, message):
    from overspec.data import load_dataset

    shard = tmp_path / "wds" / "test" / "0.tar"
    _shard(shard, _samples(20))
    (tmp_path / "wds" / "classnames.txt").write_text("\n".join(str(i) for i in range(10)))
    damage(shard)
    with pytest.raises(DataError) as caught:
        load_dataset(tmp_path / "wds")  # before: read as 19 samples (0 when zeroed), no word
    assert str(caught.value).startswith(f"webdataset shard {shard} {message}")
    assert str(caught.value).endswith("; delete it and fetch it again")


def test_a_missing_shard_is_caught_by_nshards_and_the_catalog_sizes(tmp_path):
    from overspec.data import load_dataset
    from overspec.data.catalog import catalog

    root = tmp_path / "cifar10"
    for shard in range(2):
        _shard(root / "test" / f"{shard}.tar", _samples(10, 10 * shard))
    (root / "classnames.txt").write_text("\n".join(catalog().get("cifar10").classnames))
    (root / "test" / "nshards.txt").write_text("3\n")
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10", root=root)
    assert str(caught.value) == (
        f"{root / 'test' / 'nshards.txt'} says 3 shards but {root / 'test'} holds 2; the copy is incomplete: "
        "fetch it again"
    )
    (root / "test" / "nshards.txt").write_text("2\n")
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10", root=root)
    assert str(caught.value) == (
        f"{root / 'test'}: 20 samples, but catalog/cifar10.yaml (sizes.test) expects 10000; the copy is "
        "incomplete or another version: fetch it again"
    )


_PNG = b"\x89PNG\r\n\x1a\n"  # only the index is read: the bytes need not decode


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([("k9.png", ("sym", "k0000.png")), ("k9.cls", b"1")], "member k9.png is a symbolic link; samples must"),
        ([("k9.png", ("hard", "k0000.png")), ("k9.cls", b"1")], "member k9.png is a hard link; samples must"),
        ([("k0001.png", _PNG)], "member k0001.png is a second image of sample 'k0001' (after k0001.png)"),
        ([("k0001.cls", b"4")], "member k0001.cls repeats the label of sample 'k0001'"),
        ([("k0001.jpg", _PNG)], "member k0001.jpg is a second image of sample 'k0001' (after k0001.png)"),
        ([("k9.cls", b"1")], "label k9.cls has no image; every sample needs both"),
        ([("k9.png", _PNG)], "image k9.png has no .cls label; every sample needs both"),
        ([("k.9.png", _PNG), ("k.9.cls", b"1")], "member k.9.png has a dot inside its key"),
    ],
    ids=[
        "symlink",
        "hardlink",
        "repeated image",
        "repeated label",
        "png and jpg",
        "orphan label",
        "orphan image",
        "dotted key",
    ],
)
def test_a_member_that_would_drop_or_double_a_sample_is_refused_by_name(tmp_path, extra, message):
    from overspec.data.sources.webdataset import index_shard

    shard = tmp_path / "0.tar"
    _shard(shard, _samples(4) + extra)
    with pytest.raises(DataError) as caught:
        index_shard(shard)
    assert str(caught.value).startswith(f"{shard}: {message}")


def test_a_header_claiming_a_huge_member_is_refused_without_reading_it(tmp_path):
    import tarfile

    from overspec.data.sources.webdataset import index_shard

    for name, limit, what in (("k.cls", 64, "label"), ("k.png", 64 << 20, "image")):
        info = tarfile.TarInfo(name)
        info.size = 1 << 40  # 1 TiB claimed, nothing written after the header
        shard = tmp_path / f"{what}.tar"
        shard.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024))
        with pytest.raises(DataError) as caught:
            index_shard(shard)
        assert str(caught.value).startswith(
            f"{shard}: member {name} is 1,099,511,627,776 bytes, over the limit of {limit:,} for a {what}"
        )


def test_a_compressed_shard_is_refused_before_decompressing(tmp_path):
    import gzip
    import resource
    import tarfile

    from overspec.data.sources.webdataset import index_shard

    info = tarfile.TarInfo("k.cls")
    info.size = 1 << 30
    zeros = gzip.compress(bytes(10 << 20), compresslevel=9)
    shard = tmp_path / "0.tar"
    shard.write_bytes(gzip.compress(info.tobuf()) + zeros * 103)  # 1 GiB of zeros behind the header once inflated
    assert shard.stat().st_size < 2 << 20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError) as caught:
        index_shard(shard)
    assert str(caught.value) == (
        f"webdataset shard {shard} is gzip-compressed; shards are read as plain tar: decompress it"
    )
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100_000  # kB: nothing inflated


# --- one rule for relative paths in a config --------------------------------------------------------------------


def test_a_config_reads_the_same_files_from_any_working_directory(tmp_path, monkeypatch, clip_file, digits_folder):
    import csv
    import shutil

    from helpers.cli import write_yaml
    from overspec.runner import run_experiment

    study = tmp_path / "study"
    shutil.copytree(digits_folder, study / "data" / "digits")
    shutil.copy(clip_file, study / "clip.pt")
    write_yaml(study / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"})
    config = write_yaml(
        study / "study.yaml",
        {
            "name": "where",
            "output": "runs/where",
            "models": [{"name": "clip", "spec": "clip.yaml"}],
            "general": {"datasets": ["digits"], "roots": {"digits": "data/digits"}, "protocols": ["zeroshot"]},
            "workers": 0,
        },
    )
    elsewhere = tmp_path / "elsewhere"  # a decoy at the same relative path, read before when run from here
    shutil.copytree(digits_folder, elsewhere / "data" / "digits", ignore=shutil.ignore_patterns("000[5-9].png", "001*"))

    def rows(cwd):
        monkeypatch.chdir(cwd)
        summary = run_experiment(config, report=False, log=lambda line: None)
        assert summary.out == study / "runs" / "where"
        with open(summary.out / "results.csv") as f:
            found = {(r["metric"], r["value"], r["n"], r["dataset_fingerprint"]) for r in csv.DictReader(f)}
        shutil.rmtree(summary.out)
        return found

    here, there = rows(study), rows(elsewhere)
    assert here == there and {n for _, _, n, _ in here} == {"150"}

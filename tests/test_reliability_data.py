"""Data and config files read whole or refused: every case is real bytes on disk and one exact outcome (the
right number, or one error line naming the file with nothing written)."""

from __future__ import annotations

import pytest

from helpers.cli import overspec
from overspec.errors import DataError


def _one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    return lines[0]


# --- YAML the user writes ---------------------------------------------------------------------------------------


def test_a_key_given_twice_in_a_config_is_one_line_naming_file_key_and_lines(tmp_path):
    config = tmp_path / "twice.yaml"
    config.write_text(
        "name: twice\nmodels: [clip-vit-b16.openai]\n"
        "general:\n  datasets: [cifar10]\n  protocols: [zeroshot]\n"
        "general:\n  datasets: [cifar10]\n  protocols: [linear_probe]\n"
    )
    assert _one_error_line(overspec("validate", str(config))) == (
        f"error: {config}: line 6: key 'general' appears twice in one mapping (first on line 3); "
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
    assert _one_error_line(overspec("validate", str(config))) == (
        f"error: {config}: not UTF-8 text (byte 0xe9 on line 1); save the file as UTF-8"
    )


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

_READ_FOLDER = """
import sys
from overspec.data import load_dataset
from overspec.errors import DataError
dataset = load_dataset(sys.argv[1])
try:
    dataset.fingerprint
except DataError as exc:
    print(exc)
try:
    dataset.split("train").images.load(int(sys.argv[2]))
except DataError as exc:
    print(exc)
"""


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_a_named_pipe_or_device_called_png_is_refused_by_name_within_seconds(tmp_path, kind):
    import os
    import subprocess
    import sys
    import time

    from helpers.data import digit_images

    for i, (image, label) in enumerate(digit_images(2)[:4]):
        for split in ("train", "test"):
            (tmp_path / split / f"c{label}").mkdir(parents=True, exist_ok=True)
            image.save(tmp_path / split / f"c{label}" / f"{i}.png")
    bad = tmp_path / "train" / "c0" / "x.png"  # sorts last in c0: sample 2 of train
    os.mkfifo(bad) if kind == "fifo" else bad.symlink_to("/dev/zero")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _READ_FOLDER, str(tmp_path), "2"], capture_output=True, text=True, timeout=60
    )
    assert time.perf_counter() - start < 30, "reading waited on the file"
    what = "a named pipe" if kind == "fifo" else "a device"
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"cannot read image {bad}: not a regular file but {what}; remove or replace the file",
        f"cannot read image {bad}: not a regular file but {what}; remove or replace the file",
    ]


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

"""Bad input gets exact pixels or one clear line, in bounded time; a run folder has one writer."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from helpers.cli import overspec, write_yaml
from overspec.data.images import open_rgb
from overspec.errors import ConfigError, DataError


def test_sixteen_bit_and_float_images_are_scaled_not_clipped(tmp_path):
    ramp16 = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp16).save(tmp_path / "ramp16.png")  # mode I;16
    assert Image.open(tmp_path / "ramp16.png").mode.startswith("I")
    got = np.asarray(open_rgb(tmp_path / "ramp16.png", "ramp16.png"))
    np.testing.assert_array_equal(got[..., 0], np.round(ramp16 / 257).astype(np.uint8))
    assert (got[..., 0] == got[..., 2]).all() and got.min() == 0 and got.max() == 255

    ramp_f = np.linspace(0, 1, 64 * 64).reshape(64, 64).astype(np.float32)
    Image.fromarray(ramp_f, mode="F").save(tmp_path / "ramp.tiff")
    got = np.asarray(open_rgb(tmp_path / "ramp.tiff", "ramp.tiff"))
    np.testing.assert_array_equal(got[..., 1], np.round(ramp_f * 255).astype(np.uint8))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "1", "RGB"])
def test_other_modes_convert_as_pillow_does(tmp_path, mode):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).convert(mode)
    path = tmp_path / f"x.{'tiff' if mode == 'CMYK' else 'png'}"
    image.save(path)
    expected = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(open_rgb(path, path.name)), expected)


def test_an_oversized_image_header_is_one_line_naming_the_file(tmp_path):
    Image.new("1", (16500, 16500)).save(tmp_path / "huge.png")  # 272 M pixels, a few kB on disk
    with pytest.raises(DataError, match=r"image huge.png is .*over the limit of .*pixels"):
        open_rgb(tmp_path / "huge.png", "huge.png")


def test_a_yaml_alias_bomb_is_refused_in_bounded_time(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 values expanded
    (tmp_path / "bomb.yaml").write_text("name: bomb\n" + "\n".join(lines) + "\n")
    start = time.perf_counter()
    result = overspec("validate", str(tmp_path / "bomb.yaml"))
    assert result.returncode == 2 and time.perf_counter() - start < 30
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'bomb.yaml'}: the document expands to more than 100,000 values through YAML aliases "
        "(&/*); write the values out or use fewer nested aliases"
    ]


def test_a_second_run_on_one_folder_stops_at_once(tmp_path):
    from filelock import FileLock

    from overspec.config import Experiment
    from overspec.runner import run_experiment

    out = tmp_path / "run"
    out.mkdir()
    experiment = Experiment(name="busy", models=["clip-vit-b16.openai"])
    with FileLock(str(out / ".overspec-run.lock")):
        with pytest.raises(ConfigError, match=r"is in use by another `overspec run`.*give this run another --out"):
            run_experiment(experiment, out=out)


def test_an_experiment_name_cannot_leave_the_output_root(tmp_path):
    path = write_yaml(tmp_path / "escape.yaml", {"name": "../../etc", "models": ["clip-vit-b16.openai"]})
    result = overspec("validate", str(path))
    assert result.returncode == 2 and "key 'name': use letters, digits" in result.stderr


def test_score_files_with_a_bom_read_and_bad_headers_or_bytes_are_one_line(tmp_path):
    rows = "score,label\n0.9,1\n0.2,0\n0.8,1\n0.1,0\n"
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + rows.encode())
    read = overspec("score", "verification", str(tmp_path / "bom.csv"), "--json", "--bootstrap", "0")
    assert read.returncode == 0, read.stderr
    (tmp_path / "twice.csv").write_text("score,label,score\n0.9,1,0.1\n0.2,0,0.3\n")
    (tmp_path / "latin1.csv").write_bytes("score,label\n0.9,1\n0.2,0 é\n".encode("latin-1"))
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n")
    for name, message in (
        ("twice.csv", "twice.csv: column(s) score appear more than once in the header"),
        ("latin1.csv", "latin1.csv: not UTF-8 text (byte "),
        ("passwd", "passwd: not a score file with the needed columns (missing score, label)"),
    ):
        result = overspec("score", "verification", str(tmp_path / name), "--json")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "root:x" not in result.stderr


def test_analyze_refuses_repeated_rows_and_writes_strict_json_for_an_undefined_gelo(tmp_path):
    import json

    table = "model,dataset,protocol,value\nclip,a,zeroshot,0\nclip,b,zeroshot,0\nft,a,zeroshot,0.5\nft,b,zeroshot,0.2\n"
    (tmp_path / "zero.csv").write_text(table)
    result = overspec("analyze", str(tmp_path / "zero.csv"), "--baseline", "clip", "--json")
    assert result.returncode == 0, result.stderr
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    (found,) = json.loads(result.stdout)
    assert found["gelo"] is None and found["gelo_undefined"] == "the base's mean over the suite is 0"
    (tmp_path / "twice.csv").write_text(table + "ft,a,zeroshot,0.6\n")
    repeated = overspec("analyze", str(tmp_path / "twice.csv"), "--baseline", "clip")
    assert repeated.returncode == 2 and "twice.csv, line 6: repeats line 4 (ft, a, zeroshot)" in repeated.stderr


def test_a_read_only_cache_is_read_and_no_cache_writes_nothing(tmp_path, clip_file, face_dir, monkeypatch):
    import os

    from overspec.data import ImageFiles
    from overspec.features import extract_features
    from overspec.models import load_model

    spec = write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    cache = tmp_path / "cache"
    env = {**os.environ, "OVERSPEC_CACHE": str(cache)}
    result = overspec(
        "embed", str(spec), str(face_dir), "--out", str(tmp_path / "f.npy"), "--workers", "0", "--no-cache", env=env
    )
    assert result.returncode == 0, result.stderr
    assert not cache.exists()  # neither features nor the weights' digest memo

    monkeypatch.setenv("OVERSPEC_CACHE", str(cache))
    encoder = load_model(spec)
    images = ImageFiles(sorted(face_dir.glob("*.png")))
    expected = extract_features(encoder, images, num_workers=0, progress=False)
    before = sorted(p for p in cache.rglob("*"))
    monkeypatch.setenv("OVERSPEC_CACHE_WRITE", "0")  # a read-only cache (as a read-only folder is for non-root)
    np.testing.assert_array_equal(extract_features(encoder, images, num_workers=0, progress=False), expected)
    other = ImageFiles(sorted(face_dir.glob("*.png"))[:3])
    np.testing.assert_allclose(extract_features(encoder, other, num_workers=0, progress=False), expected[:3], atol=1e-5)
    assert sorted(p for p in cache.rglob("*")) == before  # read, computed, nothing written


def test_an_image_rewritten_with_its_old_size_and_mtime_gets_new_features(clip_file, face_dir, tmp_path):
    """``cp`` of other bytes of the same size, then ``touch -r`` to restore the mtime: a path + size + mtime key
    would serve the old features."""
    import os

    from overspec.data import ImageFiles
    from overspec.features import extract_features
    from overspec.models import load_model

    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    folder = tmp_path / "imgs"
    folder.mkdir()
    for png in sorted(face_dir.glob("*.png")):  # BMP: the same pixel size always gives the same file size
        Image.open(png).convert("RGB").save(folder / f"{png.stem}.bmp")
    paths = sorted(folder.glob("*.bmp"))
    before = extract_features(encoder, ImageFiles(paths, root=folder), num_workers=0, progress=False)
    target = paths[0]
    stat = target.stat()
    pixels = np.asarray(Image.open(target)).copy()
    Image.fromarray(255 - pixels).save(tmp_path / "other.bmp")
    data = (tmp_path / "other.bmp").read_bytes()
    assert len(data) == stat.st_size
    with open(target, "r+b") as f:  # in place: same inode
        f.write(data)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_mtime_ns == stat.st_mtime_ns
    after = extract_features(encoder, ImageFiles(paths, root=folder), num_workers=0, progress=False)
    assert not np.allclose(after[0], before[0]) and np.array_equal(after[1:], before[1:])


def test_a_million_score_rows_with_default_options_finish_in_bounded_time(tmp_path):
    import json

    from overspec.metrics import attack_detection_report

    rng = np.random.default_rng(7)
    n = 1_000_000
    bonafide = rng.random(n) < 0.3
    scores = np.round(np.where(bonafide, rng.normal(0.5, 0.15, n), rng.normal(0.05, 0.12, n)), 4)
    text = np.char.add(scores.astype(str), np.where(bonafide, ",bonafide", ",attack"))
    (tmp_path / "big.csv").write_text("score,label\n" + "\n".join(text.tolist()) + "\n")
    started = time.perf_counter()
    result = overspec("score", "pad", str(tmp_path / "big.csv"), "--json", timeout=300)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = attack_detection_report(scores, bonafide)
    assert report["eer"] == expected.eer and report["hter"] == expected.hter and report["auc"] == expected.auc
    assert report["n_bonafide"] == bonafide.sum() and "subsample" in report["ci_method"]
    low, high = report["ci"]["eer"]
    assert low < report["eer"] < high and high - low < 0.01
    assert seconds < 60, f"took {seconds:.0f} s"

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


def test_analyze_warns_of_mixed_scales_and_of_a_model_sharing_no_dataset_with_its_base(tmp_path):
    mixed = (
        "model,dataset,protocol,value\nclip,a,zeroshot,0.8\nclip,b,zeroshot,0.6\nft,a,zeroshot,75\nft,b,zeroshot,0.5\n"
    )
    (tmp_path / "mixed.csv").write_text(mixed)
    result = overspec("analyze", str(tmp_path / "mixed.csv"), "--baseline", "clip")
    assert result.returncode == 0, result.stderr
    assert "mixed.csv: value mixes scales: line 4 has 75 (a percentage?) and line 2 0.8 (a fraction?)" in result.stderr

    apart = "model,dataset,protocol,value\nclip,a,zeroshot,0.8\nft,b,zeroshot,0.5\nft2,a,zeroshot,0.7\n"
    (tmp_path / "apart.csv").write_text(apart)
    result = overspec("analyze", str(tmp_path / "apart.csv"), "--baseline", "clip")
    assert result.returncode == 0, result.stderr
    assert "ft and its base clip share no zeroshot dataset (b vs a); no GELO for it" in result.stderr
    assert "scales" not in result.stderr


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_temporary_files(tmp_path, clip_file, face_dir):
    """A file-size limit (what ``ulimit -f`` sets) makes the kernel refuse writes exactly as a full disk does:
    a short write, then an error. numpy's own ``np.save`` loses that error and left a truncated cache file."""
    import os
    import resource
    import signal

    spec = write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    cache = tmp_path / "cache"
    env = {**os.environ, "OVERSPEC_CACHE": str(cache)}

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of the process being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # 12 x 32 float32 features need 1,664 bytes

    args = ("embed", str(spec), str(face_dir), "--out", str(tmp_path / "f.npy"), "--workers", "0")
    refused = overspec(*args, env=env, preexec_fn=small_files)
    assert refused.returncode == 2, refused.stderr
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: cannot write {cache}") and "rows_000000000000.npy: the file size limit" in line
    assert "Traceback" not in refused.stderr
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name or p.name.startswith("rows_")]
    again = overspec(*args, env=env)  # the space is back: the same command completes
    assert again.returncode == 0, again.stderr
    assert np.load(tmp_path / "f.npy").shape == (12, 32)


def test_garbage_model_files_and_a_hostile_face_bin_are_one_line(tmp_path, face_dir):
    import pickle
    import zipfile

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    onnx_spec = write_yaml(
        tmp_path / "onnx.yaml",
        {"family": "onnx", "weights": str(garbage), "preprocess": {"mean": [0, 0, 0], "std": [1, 1, 1]}},
    )
    forged = tmp_path / "forged.pt"
    marker = tmp_path / "executed"
    with zipfile.ZipFile(forged, "w") as archive:  # a TorchScript-looking archive whose code would touch a file
        archive.writestr("archive/code/__torch__.py", f"import os\nos.system('touch {marker}')\n")
        archive.writestr("archive/data.pkl", b"not a pickle")
    script_spec = write_yaml(tmp_path / "forged.yaml", {"family": "openai_clip", "weights": str(forged)})
    for spec, expected in (
        (onnx_spec, f"{garbage} is not an ONNX model (DecodeError"),
        (script_spec, f"{forged} looks like a TorchScript archive but cannot be read as one"),
    ):
        result = overspec("embed", str(spec), str(face_dir), "--out", str(tmp_path / "f.npy"), "--workers", "0")
        assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()

    class Rot13:  # unpickles as _codecs.encode("...", "rot13"): a global the .bin reader allows, with another codec
        def __reduce__(self):
            import _codecs

            return _codecs.encode, ("ABC", "rot13")

    hostile = tmp_path / "lfw.bin"
    hostile.write_bytes(pickle.dumps(([Rot13(), Rot13()], [True]), protocol=2))
    from overspec.data.insightface_bin import read_bin

    with pytest.raises(DataError, match=r"lfw.bin: the file asks for the text codec 'rot13'"):
        read_bin(hostile)


def test_a_corrupt_results_store_is_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    result = overspec("report", str(run))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{run / 'results.sqlite'}: not a readable results store" in result.stderr


def test_a_one_class_dataset_is_refused_and_classes_without_images_are_named(tmp_path, capfd):
    from overspec.data import load_dataset

    digits = np.asarray(Image.new("RGB", (8, 8), (10, 20, 30)))
    for split, classes in (("train", ("cat", "dog", "emu")), ("test", ("cat", "dog"))):
        for name in classes:
            (tmp_path / "three" / split / name).mkdir(parents=True)
            Image.fromarray(digits).save(tmp_path / "three" / split / name / "a.png")
    (tmp_path / "three" / "test" / "emu").mkdir()  # an empty class folder
    data = load_dataset(tmp_path / "three")
    assert data.classnames == ["cat", "dog", "emu"] and len(data.split("test")) == 2
    assert "three (test): 1 of 3 classes have no images (emu); they count in no accuracy" in capfd.readouterr().err

    (tmp_path / "one" / "test" / "cat").mkdir(parents=True)
    Image.fromarray(digits).save(tmp_path / "one" / "test" / "cat" / "a.png")
    with pytest.raises(DataError, match=r"one: only one class \('cat'\); classification needs at least two"):
        load_dataset(tmp_path / "one")


@pytest.mark.slow
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
    metrics = report["metrics"]
    assert metrics["eer"] == expected.eer and metrics["hter"] == expected.hter and metrics["auc"] == expected.auc
    assert report["n_bonafide"] == bonafide.sum() and "subsample" in report["ci_method"]
    low, high = report["ci"]["eer"]
    assert low < metrics["eer"] < high and high - low < 0.01
    assert seconds < 60, f"took {seconds:.0f} s"

"""The feature cache: hits without a forward pass, resume after a kill, two processes at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from overspec.data import ImageFiles, list_images
from overspec.features import FeatureCache, extract_features
from overspec.models import load_model

# A child process that extracts features of many copies of the face crops, slowly, so it can be killed
# half-way. Written as a script because a kill must hit a real separate process.
CHILD = textwrap.dedent(
    """
    import sys, time
    from overspec.data import ImageFiles
    from overspec.features import extract_features
    from overspec.models import load_model

    clip_file, folder, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    encoder = load_model({"family": "openai_clip", "weights": clip_file})
    forward = encoder.encode_image
    rows = [0]
    def slow(batch):
        time.sleep(delay)
        rows[0] += len(batch)
        return forward(batch)
    encoder.encode_image = slow
    paths = sorted(__import__("pathlib").Path(folder).glob("*.png")) * 8
    extract_features(encoder, ImageFiles(paths), batch_size=4, chunk_rows=8, num_workers=0, progress=False)
    print(rows[0])
    """
)


def counting(encoder):
    calls = {"n": 0}
    forward = encoder.encode_image

    def counted(batch):
        calls["n"] += len(batch)
        return forward(batch)

    encoder.encode_image = counted
    return calls


def face_copies(face_dir: Path) -> ImageFiles:
    return ImageFiles(sorted(face_dir.glob("*.png")) * 8)


def test_second_extraction_is_served_from_cache(clip_file, face_dir):
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    calls = counting(encoder)
    data = ImageFiles(list_images(face_dir), root=face_dir)
    first = extract_features(encoder, data, batch_size=5, num_workers=0, progress=False)
    assert calls["n"] == 12 and first.shape == (12, 32) and first.dtype == np.float32
    second = extract_features(encoder, data, batch_size=5, num_workers=0, progress=False)
    assert calls["n"] == 12  # no forward pass
    np.testing.assert_array_equal(first, second)
    uncached = extract_features(encoder, data, cache=False, batch_size=12, num_workers=0, progress=False)
    np.testing.assert_allclose(uncached, first, atol=1e-6)
    # another preprocessing is another cache entry
    other = load_model(
        {"family": "openai_clip", "weights": str(clip_file), "preprocess": {"interpolation": "bilinear"}}
    )
    calls_other = counting(other)
    extract_features(other, data, num_workers=0, progress=False)
    assert calls_other["n"] == 12


def test_workers_give_the_same_features(clip_file, face_dir):
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    data = face_copies(face_dir)
    serial = extract_features(encoder, data, cache=False, batch_size=16, num_workers=0, progress=False)
    parallel = extract_features(encoder, data, cache=False, batch_size=16, num_workers=2, progress=False)
    np.testing.assert_allclose(serial, parallel, atol=1e-6)


def _child(clip_file, face_dir, delay):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(clip_file), str(face_dir), str(delay)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _chunks(cache_root: Path) -> list[Path]:
    return list(cache_root.rglob("rows_*.npy"))


@pytest.mark.slow
def test_killed_extraction_resumes_with_identical_features(clip_file, face_dir):
    cache_root = Path(os.environ["OVERSPEC_CACHE"]) / "features"
    child = _child(clip_file, face_dir, delay=0.25)
    deadline = time.time() + 120
    while len(_chunks(cache_root)) < 3 and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done_before = len(_chunks(cache_root))
    assert done_before >= 3 and not list(cache_root.rglob("features.npy")), "the child was not killed mid-way"

    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    calls = counting(encoder)
    data = face_copies(face_dir)
    resumed = extract_features(encoder, data, batch_size=4, chunk_rows=8, num_workers=0, progress=False)
    assert calls["n"] == len(data) - 8 * done_before  # only the rows the killed run had not written
    whole = extract_features(encoder, data, cache=False, batch_size=4, num_workers=0, progress=False)
    np.testing.assert_allclose(resumed, whole, atol=1e-6)
    assert not _chunks(cache_root)  # chunks were consolidated


@pytest.mark.slow
def test_two_processes_at_once_compute_once(clip_file, face_dir):
    first, second = _child(clip_file, face_dir, 0.02), _child(clip_file, face_dir, 0.02)
    outputs = [p.communicate(timeout=180) for p in (first, second)]
    assert all(p.returncode == 0 for p in (first, second)), outputs
    assert sorted(int(out) for out, _ in outputs) == [0, 96]  # one computed everything, the other waited
    cache = FeatureCache()
    entries = list(cache.root.rglob("features.npy"))
    assert len(entries) == 1
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    np.testing.assert_allclose(
        np.load(entries[0]),
        extract_features(encoder, face_copies(face_dir), cache=False, num_workers=0, progress=False),
        atol=1e-6,
    )


def test_unreadable_image_names_the_file(clip_file, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    from overspec.errors import DataError

    for workers in (0, 1):
        with pytest.raises(DataError, match=r"cannot read image .*broken.png"):
            extract_features(encoder, ImageFiles([tmp_path / "broken.png"]), num_workers=workers, progress=False)


def _entry(root: Path) -> Path:
    (final,) = list((root / "features").rglob("features.npy"))
    return final


@pytest.mark.parametrize("damage", ["flipped_bytes", "other_shape", "truncated", "no_record"])
def test_a_damaged_cache_entry_is_recomputed_never_served(clip_file, face_dir, tmp_path, capfd, damage):
    """Flipped bytes, an array of another shape, a truncated file or a missing checksum record: each is moved
    aside, reported in one line naming the file, and the right features are computed again."""
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    images = face_copies(face_dir)
    expected = extract_features(encoder, images, batch_size=16, num_workers=0, progress=False)
    final = _entry(tmp_path / "cache")
    raw = bytearray(final.read_bytes())
    if damage == "flipped_bytes":
        raw[-40:-30] = bytes(b ^ 0xFF for b in raw[-40:-30])
        final.write_bytes(bytes(raw))
    elif damage == "other_shape":
        np.save(final, np.zeros((3, 7), np.float32))
    elif damage == "truncated":
        final.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        final.with_name("features.npy.json").unlink()
    capfd.readouterr()
    calls = counting(encoder)
    again = extract_features(encoder, images, batch_size=16, num_workers=0, progress=False)
    err = capfd.readouterr().err
    np.testing.assert_array_equal(again, expected)
    assert calls["n"] == len(images)  # recomputed, not served
    (line,) = [line for line in err.splitlines() if line.startswith("overspec: warning:")]
    assert str(final) in line and "moved aside as .corrupt, computing again" in line
    assert final.with_name("features.npy.corrupt").exists()
    calls["n"] = 0
    np.testing.assert_array_equal(extract_features(encoder, images, num_workers=0, progress=False), expected)
    assert calls["n"] == 0  # the recomputed entry is served


def test_a_damaged_chunk_resumes_from_the_last_good_one(clip_file, face_dir, tmp_path):
    from overspec.features.cache import CacheEntry, FeatureCache

    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    images = face_copies(face_dir)
    expected = extract_features(encoder, images, batch_size=8, num_workers=0, progress=False, cache=False)
    folder = tmp_path / "entry"
    folder.mkdir()
    entry = CacheEntry(folder, len(images))
    for start in range(0, 48, 16):
        entry.write_chunk(start, expected[start : start + 16])
    chunk = folder / "rows_000000000016.npy"
    np.save(chunk, np.ones((16, 5), np.float32))  # wrong width, same name
    assert entry.resume_row() == 16 and [s for s, _ in entry.chunks()] == [0]
    assert chunk.with_name(chunk.name + ".corrupt").exists()
    assert FeatureCache(tmp_path / "c").get("absent") is None

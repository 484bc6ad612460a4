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

"""PAD datasets released as videos: frames sampled with PyAV, scores averaged per video (FoundPAD's
``compute_video_score``), on videos written in the test from real face photos."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.data import write_oulu_videos
from overspec.data.attack_protocol import load_attack_dataset
from overspec.data.video import MediaFiles, sampled_frames
from overspec.metrics import attack_detection_report


def test_frames_are_sampled_evenly_first_and_last_included():
    assert sampled_frames(9, 4) == [0, 3, 5, 8]
    assert sampled_frames(3, 25) == [0, 1, 2]
    assert sampled_frames(100, 2) == [0, 99]


def test_oulu_videos_are_read_frame_by_frame_and_scored_per_video(tmp_path, clip_file):
    from overspec.models import load_model
    from overspec.protocols.attack_detection import run_attack_detection

    written = write_oulu_videos(tmp_path / "oulu", per_split=3, n_frames=9)
    data = load_attack_dataset(tmp_path / "oulu", layout="oulu_npu", task="pad", frames_per_video=4)
    test = data.split("test")
    assert isinstance(test.images, MediaFiles) and len(test) == 9 * 4  # 3 users x 3 accesses, 4 frames each
    assert sorted(set(test.attack_types)) == ["", "print", "replay"]
    assert test.videos[0] == test.videos[3] != test.videos[4] and test.videos[0] == "Test_files/1_1_01_1"
    first = tmp_path / "oulu" / "Test_files" / "1_1_01_1.avi"
    for position, frame in enumerate((0, 3, 5, 8)):  # the decoded frames are the written pixels
        np.testing.assert_array_equal(np.asarray(test.images.load(position)), np.asarray(written[first][frame]))

    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    options = {"scorer": "probe", "num_workers": 0, "progress": False}
    per_frame = run_attack_detection(encoder, data, video_scores="frame", **options)
    per_video = run_attack_detection(encoder, data, **options)  # the default: one score per video
    assert per_frame.details["scored_per"] == "image" and per_video.details["scored_per"] == "video"
    assert (per_video.metrics["n_bonafide"], per_video.metrics["n_attack"]) == (3, 6)
    means = per_frame.samples["score"].reshape(9, 4).mean(axis=1)  # a video's frames are consecutive
    np.testing.assert_allclose(per_video.samples["score"], means, rtol=1e-6)
    bonafide = test.bonafide.reshape(9, 4)[:, 0]
    expected = attack_detection_report(means, bonafide, test.attack_types.reshape(9, 4)[:, 0])
    assert per_video.metrics["eer"] == expected.eer and per_video.metrics["auc"] == expected.auc


def test_an_unreadable_video_is_a_one_line_error_naming_it(tmp_path):
    from overspec.errors import DataError

    with pytest.raises(DataError, match=r"cannot read image or video .*gone\.avi.*remove or replace the file"):
        MediaFiles([(tmp_path / "gone.avi", 0)]).fingerprint  # noqa: B018 - the property reads the file

"""MAD/PAD: every dataset layout reader, the protocol CSV, and each scorer on real face images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from conftest import lfw_faces
from overspec.data.attack_protocol import load_attack_dataset, write_protocol_csv
from overspec.errors import DataError
from overspec.metrics import attack_detection_report
from overspec.models import load_model
from overspec.protocols import PROTOCOLS
from test_split_attention_families import to_split_lora_format


def save(image, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def morph(a, b):
    """A simulated morph: the average of two aligned face photos (real bytes, synthetic attack)."""
    return Image.blend(a, b, 0.5)


def recapture(face):
    """A simulated print/replay: blur, reduced contrast, a colour cast."""
    out = face.filter(ImageFilter.GaussianBlur(1.2)).point(lambda v: int(40 + 0.7 * v))
    r, g, b = out.split()
    return Image.merge("RGB", (r, g.point(lambda v: int(v * 0.9)), b))


FACES = None


def faces():
    global FACES
    FACES = FACES or lfw_faces(40)
    return FACES


def build(layout, root):
    """Write a small dataset in ``layout``; return the expected (n_bonafide, attack types, splits)."""
    f = faces()
    if layout == "smdd":
        for i in range(4):
            save(f[i], root / "o25k_bf_t" / f"img{i:06d}.png")
            save(morph(f[i], f[i + 1]), root / "m15k_t" / f"morphed_img{i:06d}_img{i + 1:06d}.png")
        return 4, {"smdd"}, {"train"}
    if layout == "syn_mad22":
        for i in range(3):
            save(f[i], root / "BonaFide" / f"00{i}_03.jpg")
            for method in ("FaceMorpher", "OpenCV", "MorDIFF"):
                save(morph(f[i], f[i + 3]), root / method / f"00{i}_03-vs-00{i + 3}_03.jpg")
        return 3, {"FaceMorpher", "OpenCV", "MorDIFF"}, {"test"}
    if layout == "frll_morphs":
        for i in range(3):
            save(f[i], root / "raw" / f"00{i}_03.jpg")
            save(morph(f[i], f[i + 1]), root / "morph_amsl" / f"00{i}_00{i + 1}.jpg")
            save(morph(f[i], f[i + 2]), root / "morph_stylegan" / f"00{i}_00{i + 2}.jpg")
        return 3, {"amsl", "stylegan"}, {"test"}
    if layout == "oulu_npu":
        for folder in ("Train_files", "Dev_files", "Test_files"):
            for access in (1, 2, 4):
                video = f"1_1_0{access}_{access}"
                for frame in range(2):
                    face = f[access + frame]
                    save(face if access == 1 else recapture(face), root / folder / video / f"{frame}.png")
        return 6, {"print", "replay"}, {"train", "dev", "test"}
    if layout == "casia_fasd":
        for split in ("train_release", "test_release"):
            for stem in ("1", "HR_1", "3", "6", "HR_4"):
                save(f[0] if stem in ("1", "HR_1") else recapture(f[1]), root / split / "5" / f"{stem}_frame0.png")
        return 4, {"warped_photo", "cut_photo", "video_replay"}, {"train", "test"}
    if layout == "replay_attack":
        for split in ("train", "devel", "test"):
            save(f[0], root / split / "real" / "client001_session01_webcam_authenticate_adverse_1" / "0.png")
            save(
                recapture(f[1]),
                root / split / "attack" / "fixed" / "attack_print_client001_session01_highdef_photo_adverse" / "0.png",
            )
            save(
                recapture(f[2]),
                root / split / "attack" / "hand" / "attack_mobile_client001_session01_mobile_video_adverse" / "0.png",
            )
        return 3, {"print", "mobile"}, {"train", "dev", "test"}
    if layout == "msu_mfsd":
        (root).mkdir(parents=True, exist_ok=True)
        (root / "train_sub_list.txt").write_text("002\n")
        (root / "test_sub_list.txt").write_text("003\n")
        for client in ("002", "003"):
            save(f[0], root / "scene01" / "real" / f"real_client{client}_android_SD_scene01" / "0.png")
            save(
                recapture(f[1]),
                root / "scene01" / "attack" / f"attack_client{client}_android_SD_printed_photo_scene01_0.png",
            )
        return 2, {"printed_photo"}, {"train", "test"}
    if layout == "celeba_spoof":
        labels = {}
        for split in ("train", "test"):
            for i, live in enumerate((True, False, True)):
                relative = f"Data/{split}/{i}/{'live' if live else 'spoof'}/00000{i}.jpg"
                save(f[i] if live else recapture(f[i]), root / relative)
                labels[relative] = [0] * 40 + [0 if live else 3, 0, 0, 0 if live else 1]
            (root / "metas" / "intra_test").mkdir(parents=True, exist_ok=True)
            (root / "metas" / "intra_test" / f"{split}_label.json").write_text(json.dumps(labels))
            labels = {}
        return 4, {"a4"}, {"train", "test"}
    raise AssertionError(layout)


@pytest.mark.parametrize(
    "layout",
    ["smdd", "syn_mad22", "frll_morphs", "oulu_npu", "casia_fasd", "replay_attack", "msu_mfsd", "celeba_spoof"],
)
def test_layout_readers(layout, tmp_path):
    n_bonafide, types, splits = build(layout, tmp_path / layout)
    data = load_attack_dataset(tmp_path / layout, layout=layout) if "test" in splits else None
    from overspec.data.attack_layouts import LAYOUTS

    samples = LAYOUTS.get(layout)(tmp_path / layout)
    assert sum(s.bonafide for s in samples) == n_bonafide
    assert {s.attack_type for s in samples if not s.bonafide} == types
    assert {s.split for s in samples} == splits
    assert all(s.attack_type == "" for s in samples if s.bonafide)
    if data is not None:  # round trip through the protocol CSV
        csv_path = write_protocol_csv(samples, tmp_path / layout / "protocol.csv")
        again = load_attack_dataset(csv_path)
        assert len(again.split("test")) == len(data.split("test"))
        np.testing.assert_array_equal(again.split("test").bonafide, data.split("test").bonafide)


def test_protocol_csv_errors_name_the_line(tmp_path):
    save(faces()[0], tmp_path / "a.png")
    (tmp_path / "p.csv").write_text("path,label,attack_type,split\na.png,bonafide,,test\na.png,fake,print,test\n")
    with pytest.raises(DataError, match=r"p.csv, line 3: label 'fake' is not bonafide or attack"):
        load_attack_dataset(tmp_path / "p.csv")
    (tmp_path / "q.csv").write_text("path,label,attack_type,split\nmissing.png,bonafide,,test\n")
    with pytest.raises(DataError, match=r"q.csv, line 2: image .*missing.png does not exist"):
        load_attack_dataset(tmp_path / "q.csv")


@pytest.fixture
def mad_protocol(tmp_path):
    build("syn_mad22", tmp_path / "test_set")
    build("smdd", tmp_path / "train_set")
    from overspec.data.attack_layouts import LAYOUTS

    samples = LAYOUTS.get("smdd")(tmp_path / "train_set") + LAYOUTS.get("syn_mad22")(tmp_path / "test_set")
    return load_attack_dataset(write_protocol_csv(samples, tmp_path / "mad.csv"), task="mad")


def test_each_scorer_on_a_real_image_protocol(mad_protocol, tmp_path):
    model = tiny_madation(tmp_path)
    encoder = load_model(model)
    test = mad_protocol.split("test")
    transform = encoder.preprocess.transform()
    with torch.no_grad():
        features = encoder.encode_image(torch.stack([transform(test.images.load(i)) for i in range(len(test))]))
        head_scores = encoder.head.scores(features).numpy()

    head = PROTOCOLS.get("attack_detection")(encoder, mad_protocol, scorer="auto", num_workers=0, progress=False)
    assert head.details["scorer"] == "head"
    expected = attack_detection_report(head_scores, test.bonafide, test.attack_types)
    assert head.metrics["eer"] == pytest.approx(expected.eer) and head.metrics["auc"] == pytest.approx(expected.auc)
    per_type = []
    for attack in ("FaceMorpher", "MorDIFF", "OpenCV"):
        keep = test.bonafide | (test.attack_types == attack)
        report = attack_detection_report(head_scores[keep], test.bonafide[keep], threshold=expected.threshold)
        assert head.metrics[f"eer@{attack}"] == pytest.approx(report.eer)
        per_type.append(report.eer)
    assert head.metrics["mean_eer"] == pytest.approx(np.mean(per_type))
    assert head.metrics["worst_eer"] == pytest.approx(max(per_type)) and head.headline_metric == "mean_eer"

    probe = PROTOCOLS.get("attack_detection")(encoder, mad_protocol, scorer="probe", num_workers=0, progress=False)
    assert probe.details["scorer"] == "probe" and 0 <= probe.metrics["auc"] <= 1

    prompt = PROTOCOLS.get("attack_detection")(encoder, mad_protocol, scorer="prompt", num_workers=0, progress=False)
    from overspec.protocols.attack_detection import PROMPTS
    from overspec.protocols.zeroshot import text_classifier

    e = features.numpy() / np.linalg.norm(features.numpy(), axis=1, keepdims=True)
    direct = (
        e @ text_classifier(encoder, ["b"], PROMPTS["mad"][0]) - e @ text_classifier(encoder, ["a"], PROMPTS["mad"][1])
    ).ravel()
    assert prompt.metrics["auc"] == pytest.approx(attack_detection_report(direct, test.bonafide).auc)


def tiny_madation(tmp_path):
    from conftest import tiny_clip

    state, _ = to_split_lora_format(tiny_clip(seed=11), 2, seed=12)
    torch.save(state, tmp_path / "mad_backbone.pth")
    torch.save({"linear.weight": torch.randn(2, 32), "linear.bias": torch.zeros(2)}, tmp_path / "mad_header.pth")
    return {
        "family": "madation",
        "checkpoint": str(tmp_path / "mad_backbone.pth"),
        "head": str(tmp_path / "mad_header.pth"),
    }

"""MAD/PAD: every dataset layout reader, the protocol CSV, and each scorer on real face images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.data import build_attack_layout, faces, save
from helpers.models import tiny_madation
from overspec.data.attack_protocol import load_attack_dataset, write_protocol_csv
from overspec.errors import DataError
from overspec.metrics import attack_detection_report
from overspec.models import load_model
from overspec.protocols import PROTOCOLS


@pytest.mark.parametrize(
    "layout",
    ["smdd", "syn_mad22", "frll_morphs", "oulu_npu", "casia_fasd", "replay_attack", "msu_mfsd", "celeba_spoof"],
)
def test_layout_readers(layout, tmp_path):
    n_bonafide, types, splits = build_attack_layout(layout, tmp_path / layout)
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
    with pytest.raises(DataError, match=r"p.csv, line 3: label 'fake' is not bona fide"):
        load_attack_dataset(tmp_path / "p.csv")
    (tmp_path / "q.csv").write_text("path,label,attack_type,split\nmissing.png,bonafide,,test\n")
    with pytest.raises(DataError, match=r"q.csv, line 2: image .*missing.png does not exist"):
        load_attack_dataset(tmp_path / "q.csv")


@pytest.fixture
def mad_protocol(tmp_path):
    build_attack_layout("syn_mad22", tmp_path / "test_set")
    build_attack_layout("smdd", tmp_path / "train_set")
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

    # the madation convention: MADation's rules (tested against its transcription in test_conventions.py) on the
    # whole test set and on each attack type against all bona fide samples
    from overspec.metrics.conventions import ScoreSet
    from overspec.metrics.conventions.madation import madation_metrics

    mad = PROTOCOLS.get("attack_detection")(
        encoder, mad_protocol, scorer="head", convention="madation", num_workers=0, progress=False
    )
    overall = madation_metrics(ScoreSet.of("mad", head_scores, test.bonafide))
    assert mad.metrics["eer"] == overall["eer"] and mad.metrics["auc"] == overall["auc"]
    # too few attacks to resolve APCER 10 %: no number (MADation's code would report its nearest ROC point)
    n_attack = int((~test.bonafide).sum())
    assert n_attack < 10 and mad.metrics["bpcer_at_apcer_0.1"] is None
    assert mad.unresolved["bpcer_at_apcer_0.1"] == f"needs >= 10 attack samples, has {n_attack}"
    eers = []
    for attack in ("FaceMorpher", "MorDIFF", "OpenCV"):
        keep = test.bonafide | (test.attack_types == attack)
        eers.append(madation_metrics(ScoreSet.of("mad", head_scores[keep], test.bonafide[keep]))["eer"])
        assert mad.metrics[f"eer@{attack}"] == eers[-1]
    assert mad.metrics["mean_eer"] == pytest.approx(np.mean(eers)) and mad.details["convention"] == "madation"

    probe = PROTOCOLS.get("attack_detection")(encoder, mad_protocol, scorer="probe", num_workers=0, progress=False)
    from sklearn.metrics import roc_auc_score

    from overspec.protocols.linear_probe import fit_probe

    train = mad_protocol.split("train")
    with torch.no_grad():
        train_features = encoder.encode_image(
            torch.stack([transform(train.images.load(i)) for i in range(len(train))])
        ).numpy()
        fitted, _, _ = fit_probe(train_features, train.bonafide.astype(np.int64), 2)
        logits = fitted.logits(features).numpy()
    # the probe is fitted on the train split only, and scores bona fide high
    expected_auc = roc_auc_score(test.bonafide, logits[:, 1] - logits[:, 0])
    assert probe.details["scorer"] == "probe" and probe.metrics["auc"] == pytest.approx(expected_auc, abs=1e-9)

    prompt = PROTOCOLS.get("attack_detection")(encoder, mad_protocol, scorer="prompt", num_workers=0, progress=False)
    from overspec.protocols.attack_detection import PROMPTS
    from overspec.protocols.zeroshot import text_classifier

    e = features.numpy() / np.linalg.norm(features.numpy(), axis=1, keepdims=True)
    direct = (
        e @ text_classifier(encoder, ["b"], PROMPTS["mad"][0]) - e @ text_classifier(encoder, ["a"], PROMPTS["mad"][1])
    ).ravel()
    assert prompt.metrics["auc"] == pytest.approx(attack_detection_report(direct, test.bonafide).auc)

    # MADation's zero-shot test (src/training/trainer.py, ``test_clip``), transcribed: the text features of
    # ["face image morphing attack", "bona-fide presentation"] and the image features, each L2-normalised; the
    # score is softmax(100 * image @ text.T)[:, 1]
    from overspec.protocols.zeroshot import _text_tower

    study = PROTOCOLS.get("attack_detection")(
        encoder, mad_protocol, scorer="prompt", prompts="study", num_workers=0, progress=False
    )
    with torch.no_grad():
        text = _text_tower(encoder).encode_text(["face image morphing attack", "bona-fide presentation"]).float()
    text = text / text.norm(dim=-1, keepdim=True)
    image = features.float() / features.float().norm(dim=-1, keepdim=True)
    reference = (100.0 * image @ text.T).softmax(dim=-1)[:, 1].numpy()
    assert study.details["prompts"] == "study"
    np.testing.assert_allclose(study.samples["score"], reference, rtol=1e-5, atol=1e-7)


def test_foundpads_own_test_lists_read_as_protocol_files(tmp_path):
    """FoundPAD's lists (``image_path,label``; e.g. ``cross_domain_cropface/mco_ca/test.csv``) have no split
    column: every row is a test sample."""
    from helpers.data import recapture

    rows = ["image_path,label"]
    for i, face in enumerate(faces()[:6]):
        live, spoof = tmp_path / "crops" / f"live_{i}.png", tmp_path / "crops" / f"spoof_{i}.png"
        save(face, live)
        save(recapture(face), spoof)
        rows += [f"{live},bonafide", f"{spoof},attack"]
    (tmp_path / "test.csv").write_text("\n".join(rows) + "\n")
    data = load_attack_dataset(tmp_path / "test.csv", task="pad")
    assert list(data.splits) == ["test"]
    test = data.split("test")
    assert len(test) == 12 and test.bonafide.sum() == 6 and set(test.attack_types[~test.bonafide]) == {"attack"}
    # a frame's video, as FoundPAD's trainer derives it: the file name up to its last "_"
    assert test.videos[0] == str((tmp_path / "crops" / "live").resolve())

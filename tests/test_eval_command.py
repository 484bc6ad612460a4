"""`overspec eval` on every protocol through the runner's cells, its versioned JSON document, and its refusals: each
one line, each before any forward pass."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import torch

from helpers.cli import overspec, write_yaml
from helpers.data import build_attack_layout, lfw_faces, write_bin, write_ijb
from overspec.errors import OverspecError
from overspec.evaluation import evaluate
from overspec.models import load_model
from overspec.protocols import PROTOCOLS


@pytest.fixture
def no_forward_pass(monkeypatch):
    """Any forward pass fails the test: the refusal must come first."""
    import overspec.features.extract as extract

    def refuse(*args, **kwargs):
        raise AssertionError("a forward pass ran before the refusal")

    monkeypatch.setattr(extract, "_compute", refuse)


@pytest.fixture(scope="module")
def clip_spec(tmp_path_factory, clip_file):
    return write_yaml(
        tmp_path_factory.mktemp("spec") / "clip.yaml", {"family": "openai_clip", "weights": str(clip_file)}
    )


@pytest.fixture(scope="module")
def mad_csv(tmp_path_factory):
    from overspec.data.attack_layouts import LAYOUTS
    from overspec.data.attack_protocol import write_protocol_csv

    root = tmp_path_factory.mktemp("mad")
    build_attack_layout("syn_mad22", root / "test")
    build_attack_layout("smdd", root / "train")
    samples = LAYOUTS.get("smdd")(root / "train") + LAYOUTS.get("syn_mad22")(root / "test")
    return write_protocol_csv(samples, root / "mad.csv")


def schema() -> dict:
    return json.loads(resources.files("overspec").joinpath("schemas", "eval.schema.json").read_text())


def validate(document: dict) -> None:
    """Against the package's JSON Schema, with jsonschema (installed with the test extras)."""
    import jsonschema

    jsonschema.validate(document, schema(), cls=jsonschema.Draft202012Validator)


def test_face_verification_from_a_bin_and_from_an_lfw_pair_list(tmp_path, clip_spec):
    """The pair list reader, checked against the .bin reader on the same images in the same order; the eval's
    numbers are the protocol's own."""
    faces = lfw_faces(8)
    names = ["Ann_A", "Bob_B", "Cid_C", "Dee_D"]
    for i, name in enumerate(names):  # two images per person
        (tmp_path / "lfw" / name).mkdir(parents=True)
        faces[2 * i].save(tmp_path / "lfw" / name / f"{name}_0001.png")
        faces[2 * i + 1].save(tmp_path / "lfw" / name / f"{name}_0002.png")
    lines = ["2\t2", "Ann_A\t1\t2", "Bob_B 2 1", "Ann_A\t1\tCid_C\t2", "Dee_D\t1\tBob_B\t1"]
    lines += ["Cid_C\t1\t2", "Dee_D\t1\t2", "Cid_C\t1\tDee_D\t2", "Ann_A\t2\tBob_B\t2"]  # 2 folds x (1 same, 1 diff)
    (tmp_path / "lfw" / "pairs.txt").write_text("\n".join(lines[:5]) + "\n")
    from overspec.errors import DataError

    with pytest.raises(
        DataError, match=r"pairs.txt, line 1: says 2 folds of 2 same and 2 different pairs \(8\), the file has 4"
    ):
        evaluate(clip_spec, tmp_path / "lfw", ["face_verification"], num_workers=0)
    (tmp_path / "lfw" / "pairs.txt").write_text("\n".join(lines) + "\n")
    from overspec.data.pair_list import load_pair_list

    images, genuine = load_pair_list(tmp_path / "lfw")
    assert genuine.tolist() == [True, True, False, False, True, True, False, False]
    assert [p.name for p in images.paths[:4]] == [
        "Ann_A_0001.png",
        "Ann_A_0002.png",
        "Bob_B_0002.png",
        "Bob_B_0001.png",
    ]
    # the same pairs as an insightface .bin of the same PNG bytes (the same pixels)
    import pickle

    with open(tmp_path / "same.bin", "wb") as f:
        pickle.dump(([p.read_bytes() for p in images.paths], genuine.tolist()), f, protocol=2)
    folds = {"face_verification": {"folds": 2}}
    listed = evaluate(clip_spec, tmp_path / "lfw" / "pairs.txt", ["face_verification"], options=folds, num_workers=0)
    binned = evaluate(clip_spec, tmp_path / "same.bin", ["face_verification"], options=folds, num_workers=0)
    assert listed.outcomes[0].result.metrics == binned.outcomes[0].result.metrics
    encoder = load_model(clip_spec)
    direct = PROTOCOLS.get("face_verification")(encoder, tmp_path / "same.bin", folds=2, num_workers=0, progress=False)
    assert binned.outcomes[0].result.metrics == direct.metrics
    document = listed.document()
    validate(document)
    assert document["results"][0]["counts"] == {"n_pairs": 8, "n_genuine": 4, "n_impostor": 4}
    assert document["results"][0]["convention"] == "iso"
    assert "fold_thresholds" in document["results"][0]["details"]  # internals under details, not metrics


def test_attack_detection_with_a_convention_and_the_output_file(tmp_path, clip_spec, mad_csv):
    out = tmp_path / "eval.json"
    args = ["eval", str(clip_spec), str(mad_csv), "--protocol", "attack_detection", "--task", "mad"]
    args += ["--convention", "madation", "--option", "scorer=probe", "--workers", "0", "--output", str(out), "--json"]
    from typer.testing import CliRunner

    from overspec.cli import app

    done = CliRunner().invoke(app, args)  # in this process (the one-line error path is tested in a fresh one below)
    assert done.exit_code == 0, done.output
    document = json.loads(out.read_text())
    assert json.loads(done.stdout) == document  # --json prints what --output writes
    validate(document)
    entry = document["results"][0]
    assert entry["convention"] == "madation" and entry["options"] == {"convention": "madation", "scorer": "probe"}
    assert entry["details"]["scorer"] == "probe" and entry["headline_metric"] == "mean_eer"
    from overspec.data.attack_protocol import load_attack_dataset

    direct = PROTOCOLS.get("attack_detection")(
        load_model(clip_spec),
        load_attack_dataset(mad_csv, task="mad"),
        convention="madation",
        scorer="probe",
        num_workers=0,
        progress=False,
    )
    assert {k: v["value"] for k, v in entry["metrics"].items()} == {  # exactly; None where unresolved
        k: v for k, v in direct.metrics.items() if not k.startswith("n_")
    }
    assert document["model"]["reference"] == str(clip_spec) and len(document["model"]["fingerprint"]) == 64
    assert document["device"] == "cpu" and document["precision"] == "fp32"
    assert document["schema_version"] == 2 and document["provenance"]["device"] == "cpu"
    assert document["provenance"]["torch"] == torch.__version__  # the imported torch's, local tag included
    # a released layout read as is: SYN-MAD 2022 has no train split, so `auto` falls back to zero-shot prompts
    released = evaluate(clip_spec, mad_csv.parent / "test", ["attack_detection"], task="mad", layout="syn_mad22")
    entry = released.document()["results"][0]
    assert entry["details"]["scorer"] == "prompt" and entry["options"] == {"convention": "iso"}
    assert entry["counts"] == {"n_bonafide": direct.metrics["n_bonafide"], "n_attack": direct.metrics["n_attack"]}


def test_the_document_for_zeroshot_and_the_probe(tmp_path, digits_folder, clip_spec):
    """Two protocols: one document, one entry each; top-1 and top-5 carry the runner's Wilson interval."""
    import shutil

    from overspec.runner.run import wilson_interval

    for split, keep in (("train", 8), ("test", 6)):  # 6 classes: a small probe
        for folder in sorted((digits_folder / split).iterdir())[:6]:
            (tmp_path / "digits" / split / folder.name).mkdir(parents=True)
            for image in sorted(folder.iterdir())[:keep]:
                shutil.copy(image, tmp_path / "digits" / split / folder.name)
    (tmp_path / "digits" / "classnames.txt").write_text("zero\none\ntwo\nthree\nfour\nfive\n")
    evaluation = evaluate(
        clip_spec, tmp_path / "digits", ["zeroshot", "linear_probe"], options={"linear_probe": {"k_shot": 5}}
    )
    document = evaluation.document()
    validate(document)
    zeroshot, probe = document["results"]
    assert (zeroshot["protocol"], zeroshot["convention"], probe["protocol"], probe["convention"]) == (
        "zeroshot",
        "clip",
        "linear_probe",
        "lbfgs",
    )
    acc1 = zeroshot["metrics"]["acc1"]
    assert zeroshot["counts"] == {"n_test": 36} and acc1["interval_method"] == "wilson"
    assert acc1["interval"] == list(wilson_interval(acc1["value"], 36))
    assert "interval" not in zeroshot["metrics"]["mean_per_class_recall"]
    assert "l2_path" in probe["details"] and "l2_path" not in probe["metrics"] and probe["details"]["k_shot"] == 5
    assert probe["options"] == {"k_shot": 5, "recipe": "lbfgs"}
    broken = json.loads(json.dumps(document))
    broken["results"][0]["metrics"]["acc1"]["l2_path"] = []
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):  # the schema can fail
        validate(broken)


def test_ijb_with_its_options_and_convention(tmp_path, clip_spec):
    write_ijb(tmp_path / "IJBC", lfw_faces(4, size=112))
    evaluation = evaluate(
        clip_spec, tmp_path / "IJBC", ["ijb"], convention="insightface", options={"ijb": {"which": "ijbc"}}
    )
    direct = PROTOCOLS.get("ijb")(
        load_model(clip_spec), tmp_path / "IJBC", convention="insightface", num_workers=0, progress=False
    )
    document = evaluation.document()
    validate(document)
    entry = document["results"][0]
    assert entry["options"] == {"convention": "insightface", "which": "ijbc"} and entry["counts"]["n_pairs"] == 16
    assert {k: v["value"] for k, v in entry["metrics"].items()} == {
        k: v for k, v in direct.metrics.items() if not k.startswith("n_")
    }
    assert entry["details"]["flip"] is True and entry["headline_metric"] == "tar_at_far_0.0001"


def refuse(*args, **kwargs) -> str:
    with pytest.raises(OverspecError) as caught:
        evaluate(*args, num_workers=0, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_zero_shot_on_an_image_only_model_is_refused_before_any_image(digits_folder, no_forward_pass):
    # listed after the probe, it still fails first: every protocol's checks run before the first forward pass
    message = refuse("efficientnet-lite0.in1k", digits_folder, ["linear_probe", "zeroshot"])
    assert message.startswith("efficientnet-lite0.in1k (timm) has no text tower; zero-shot needs one")
    assert "set `base:` in its spec" in message and "`family: conse`" in message


def test_refusals_before_any_forward_pass(tmp_path, clip_spec, digits_folder, mad_csv, no_forward_pass):
    write_bin(tmp_path / "lfw.bin", n_pairs=4)
    cases = [
        ((clip_spec, digits_folder, ["zeroshot", "face_verif"]), {}, "unknown protocol 'face_verif'; did you mean"),
        (
            (clip_spec, mad_csv, ["attack_detection"]),
            {"options": {"attack_detection": {"promts": "study"}}},
            "'promts' is not an option of protocol attack_detection",
        ),
        ((clip_spec, mad_csv, ["attack_detection"]), {}, "--task: attack_detection evaluates mad or pad"),
        (
            (clip_spec, mad_csv, ["attack_detection"]),
            {"task": "mad", "options": {"attack_detection": {"scorer": "head"}}},
            "clip has no bona fide / attack head; use scorer probe or prompt",
        ),
        (
            (clip_spec, mad_csv, ["attack_detection"]),
            {"task": "mad", "options": {"attack_detection": {"video_scores": "median"}}},
            "video_scores 'median': use one of mean, frame",
        ),
        (
            (clip_spec, tmp_path / "lfw.bin", ["face_verification"]),
            {"convention": "madation"},
            "convention 'madation' does not score verification files",
        ),
        ((clip_spec, digits_folder, ["zeroshot"]), {"convention": "iso"}, "zeroshot has one convention (clip)"),
        ((clip_spec, tmp_path / "none.bin", ["face_verification"]), {}, "none.bin does not exist"),
        ((clip_spec, tmp_path, ["ijb"]), {}, "meta/ijbc_face_tid_mid.txt does not exist: an IJB folder holds"),
        ((clip_spec, digits_folder, ["zeroshot", "face_verification"]), {}, "evaluate them in two calls"),
    ]
    (tmp_path / "pairs.txt").write_text("Ann_A\t1\t2\n")
    cases.append(((clip_spec, tmp_path, ["face_verification"]), {}, "pairs.txt, line 1: image"))
    missing = write_yaml(tmp_path / "gone.yaml", {"family": "openai_clip", "weights": str(tmp_path / "gone.pt")})
    cases.append(((missing, digits_folder, ["zeroshot"]), {}, "gone.pt does not exist"))
    test_only = tmp_path / "test_only"
    test_only.mkdir()
    import shutil

    shutil.copytree(digits_folder / "test", test_only / "test")
    shutil.copy(digits_folder / "classnames.txt", test_only)
    cases.append(((clip_spec, test_only, ["linear_probe"]), {}, "has no 'train' split"))
    for args, options, expected in cases:
        assert expected in refuse(*args, **options), (args, options)


def test_a_refusal_on_the_command_line_is_one_line(digits_folder):
    result = overspec("eval", "clip-vit-b16.openai", str(digits_folder), "--protocol", "zeroshot,face_verif")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --protocol: unknown protocol 'face_verif'; did you mean 'face_verification'? available: "
        "attack_acceptance, attack_detection, face_verification, identification, ijb, linear_probe, morph_acceptance, "
        "zeroshot"
    ]


def test_options_on_the_command_line():
    from overspec.cli import _protocol_options

    assert _protocol_options(["attack_detection"], ["scorer=probe", "attack_detection.prompts=study"]) == {
        "attack_detection": {"scorer": "probe", "prompts": "study"}
    }
    assert _protocol_options(["face_verification", "ijb"], ["flip=false", "ijb.which=ijbb"]) == {
        "face_verification": {"flip": False},
        "ijb": {"flip": False, "which": "ijbb"},
    }
    with pytest.raises(OverspecError, match=r"--option 'k=1': none of zeroshot has an option 'k'"):
        _protocol_options(["zeroshot"], ["k=1"])
    with pytest.raises(OverspecError, match=r"write KEY=VALUE"):
        _protocol_options(["zeroshot"], ["split"])

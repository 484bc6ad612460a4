"""Fine-tuning: real EfficientNet-Lite0 weights on real face photos, resume, adapter reload, MAD heads, sweeps."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers.cli import write_yaml
from helpers.data import build_attack_layout, lfw_faces, views
from helpers.finetune import tiny_setup, trained_lora
from helpers.models import tiny_clip
from overspec.data import load_dataset
from overspec.finetune.config import load_finetune_config
from overspec.finetune.train import finetune
from overspec.models import load_model
from overspec.protocols import PROTOCOLS
from overspec.quickstart.run import BASE

EFFNET = BASE  # EfficientNet-Lite0 with real ImageNet weights at 96 px, as the quickstart uses it
# The data, the training views and the fine-tune all follow this seed; scripts/seed_check.py reruns the
# statistical test below under other seeds.
SEED = int(os.environ.get("OVERSPEC_TEST_SEED", "0"))
N_PAIRS = 300
LR_BACKBONE, EPOCHS = 2e-4, 8  # stronger recipes broke verification in some seeds (see the test below)
N_PATCHES = (30, 50)  # per photo: train, test (950 test patches in all)


@pytest.fixture(scope="module")
def face_study(tmp_path_factory, digits_folder):
    from overspec.quickstart.data import photo_patches

    root = tmp_path_factory.mktemp("faces")
    faces = lfw_faces(100, size=96)
    rng = np.random.default_rng(SEED)
    for i in range(30):  # training identities: faces 0-29
        for k, image in enumerate(views(faces[i], rng, 6)):
            path = root / "ids" / f"id{i:03d}" / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)
    rng = np.random.default_rng(SEED + 1000)
    bins, same = [], []
    held = faces[40:100]  # verification pairs from held-out faces
    for j in range(N_PAIRS):
        i = j % 60
        a = views(held[i], rng, 1)[0]
        b = views(held[i] if j % 2 == 0 else held[(i + 1 + j // 60 * 7) % 60], rng, 1)[0]
        for image in (a, b):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            bins.append(buffer.getvalue())
        same.append(j % 2 == 0)
    with open(root / "heldout.bin", "wb") as f:
        pickle.dump((bins, same), f, protocol=4)
    # natural images: 19 real photos, patches from each photo's left half to train, its right half to test
    photo_patches(root / "photos", n_train=N_PATCHES[0], n_test=N_PATCHES[1], seed=SEED)
    write_yaml(root / "base.yaml", EFFNET)
    write_yaml(
        root / "fr.yaml",
        {
            "name": "effnet-fr",
            "base": "base.yaml",
            "task": "fr",
            "data": "ids",
            "output": "out_fr",
            "method": "full",
            "head": {"kind": "cosface", "scale": 30, "margin": 0.2},
            "epochs": EPOCHS,
            "batch_size": 30,
            "lr_backbone": LR_BACKBONE,
            "lr_head": 0.02,
            "warmup_epochs": 0.5,
            "seed": SEED,
        },
    )
    roots = {"photos": str(root / "photos"), "digits": str(digits_folder)}
    write_yaml(
        root / "suite.yaml",
        {
            "name": "suite",
            "workers": 0,
            "general": {"datasets": sorted(roots), "protocols": ["linear_probe"], "roots": roots},
            "biometric": [{"name": "heldout", "protocol": "face_verification", "path": str(root / "heldout.bin")}],
        },
    )
    return root


def evaluate(model, root, digits_folder):
    encoder = load_model(model)
    fv = PROTOCOLS.get("face_verification")(encoder, root / "heldout.bin", num_workers=0, progress=False)
    probe = PROTOCOLS.get("linear_probe")
    lp = {
        name: probe(encoder, load_dataset(name, root=folder), num_workers=0, progress=False)
        for name, folder in (("photos", root / "photos"), ("digits", digits_folder))
    }
    return fv, lp


@pytest.fixture(scope="module")
def study_cache(tmp_path_factory) -> Path:
    """The feature cache this module's real-weights tests share."""
    return tmp_path_factory.mktemp("study_cache")


@pytest.fixture(scope="module")
def fr_specialist(face_study, digits_folder, study_cache):
    """The fine-tuned spec, and base and specialist evaluated once for this module's tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERSPEC_CACHE", str(study_cache))
        spec = finetune(load_finetune_config(face_study / "fr.yaml"), log=lambda line: None)
        base = evaluate(face_study / "base.yaml", face_study, digits_folder)
        tuned = evaluate(spec, face_study, digits_folder)
    return spec, base, tuned


def paired_auc_gain_low(scores: np.ndarray, base_scores: np.ndarray, genuine: np.ndarray, n_boot: int = 1000):
    """Lower end of the 95 % paired bootstrap interval (resampling pairs) of AUC(scores) - AUC(base_scores)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    gains = []
    for _ in range(n_boot):
        i = rng.integers(0, len(genuine), len(genuine))
        gains.append(roc_auc_score(genuine[i], scores[i]) - roc_auc_score(genuine[i], base_scores[i]))
    return float(np.percentile(gains, 2.5))


@pytest.mark.slow
def test_fr_finetune_of_real_weights_gains_its_task(fr_specialist):
    """A short full FR fine-tune of ImageNet EfficientNet-Lite0 on real faces raises verification AUC beyond its
    sampling noise: the lower end of a paired bootstrap interval over the 300 held-out pairs is above 0.

    Seeds 0-19 (scripts/seed_check.py; data, views and training all follow the seed): the gain held in 20 of 20,
    its lower bound between +0.009 and +0.094. What the fine-tune does to the linear probe on natural photo patches
    is printed, not asserted, because it is not stable: from -7.1 to +3.0 points, a significant drop (McNemar
    p < 0.05) in 10 of 20 seeds and a significant rise in seed 9 (81.4 -> 84.3 %, p = 0.004). Stronger recipes
    made the drop large but broke verification in some seeds (lr 4e-4 x 12 epochs: seed 0; lr 1e-3: seed 2). How
    GELO measures the change is checked exactly by the sweep test below; that this toy fine-tune forgets is not a
    property to assert.
    """
    from overspec.analysis.gelo import paired_accuracy_test

    spec, (base_fv, base_lp), (tuned_fv, tuned_lp) = fr_specialist
    assert yaml.safe_load(spec.read_text())["family"] == "finetuned"
    genuine = base_fv.samples["genuine"].astype(bool)
    assert np.array_equal(genuine, tuned_fv.samples["genuine"].astype(bool)) and genuine.sum() == N_PAIRS // 2
    low = paired_auc_gain_low(tuned_fv.samples["score"], base_fv.samples["score"], genuine)
    before, after = base_lp["photos"], tuned_lp["photos"]
    _, p_value = paired_accuracy_test(after.samples["correct"], before.samples["correct"], seed=0)
    print(
        f"STATS seed={SEED} auc {base_fv.metrics['auc']:.4f}->{tuned_fv.metrics['auc']:.4f} (gain low {low:+.4f}) "
        f"photos {before.headline:.4f}->{after.headline:.4f} (McNemar p {p_value:.2g})"
    )
    assert low > 0


@pytest.mark.slow
def test_sweep_ends_are_the_base_and_the_specialist_exactly(fr_specialist, face_study, study_cache, monkeypatch):
    """Exact properties only: s = 0 has the base's weights, so it has the base's fingerprint and all its
    features come from the cache; s = 1 is the specialist bit for bit; GELO is the ratio of the suite means."""
    from overspec.features.cache import FeatureCache
    from overspec.sweep import run_sweep

    monkeypatch.setenv("OVERSPEC_CACHE", str(study_cache))

    spec, (base_fv, base_lp), (tuned_fv, tuned_lp) = fr_specialist
    base, tuned = load_model(face_study / "base.yaml"), load_model(spec)
    cached = {p.parent for p in FeatureCache().root.rglob("features.npy")}
    points = run_sweep(
        spec, face_study / "suite.yaml", scales=[0.5], out=face_study / "sweep", task="fr", log=lambda line: None
    )
    assert [p.scale for p in points] == [0.0, 0.5, 1.0]
    ends = load_model(points[0].spec), load_model(points[-1].spec)
    assert ends[0].fingerprint == base.fingerprint and ends[1].fingerprint == tuned.fingerprint
    middle = load_model(points[1].spec)
    new = {p.parent for p in FeatureCache().root.rglob("features.npy")} - cached
    assert new and all(middle.fingerprint in (p / "meta.json").read_text() for p in new)  # only s = 0.5 embedded
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ends[0].encode_image(x), base.encode_image(x), atol=0, rtol=0)
        torch.testing.assert_close(ends[1].encode_image(x), tuned.encode_image(x), atol=0, rtol=0)
    assert points[0].biometric == base_fv.metrics["accuracy"] and points[0].gelo == 1.0
    assert points[-1].biometric == tuned_fv.metrics["accuracy"]
    mean = {
        model: np.mean([lp[n].headline for n in ("digits", "photos")])
        for model, lp in (("base", base_lp), ("tuned", tuned_lp))
    }
    assert points[-1].gelo == pytest.approx(mean["tuned"] / mean["base"], rel=1e-12)
    assert sum(p.knee for p in points) <= 1 and any(p.pareto for p in points)  # a knee only beyond the interval
    assert (points[0].gelo_low, points[0].gelo_high) == (1.0, 1.0)  # the base against itself
    assert all(np.isfinite(p.gelo_low) and p.gelo_low < p.gelo_high for p in points[1:])  # each point's interval
    assert (face_study / "sweep" / "sweep.png").exists() and (face_study / "sweep" / "sweep.json").exists()
    assert yaml.safe_load(Path(points[1].spec).read_text())["adapter_scale"] == 0.5


def test_resumed_finetune_equals_uninterrupted(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    finetune(load_finetune_config(tiny_setup(tmp_path / "a")), log=lambda line: None)

    class Killed(Exception):
        pass

    def kill_after_second(epoch):
        if epoch == 1:
            raise Killed

    config = load_finetune_config(tiny_setup(tmp_path / "b", workers=2))  # views do not depend on the loader
    with pytest.raises(Killed):
        finetune(config, log=lambda line: None, on_epoch_end=kill_after_second)
    lines = []
    finetune(config, log=lines.append)
    assert "resuming after epoch 2 (step 8)" in lines
    uninterrupted, resumed = trained_lora(tmp_path / "a" / "out"), trained_lora(tmp_path / "b" / "out")
    assert uninterrupted.keys() == resumed.keys() and any("lora_A" in k for k in resumed)
    for key in uninterrupted:
        assert torch.equal(uninterrupted[key], resumed[key]), key


def test_saved_adapter_reloads_bit_for_bit_through_the_loader(tmp_path):
    from peft import PeftModel

    spec = finetune(load_finetune_config(tiny_setup(tmp_path, epochs=2)), log=lambda line: None)
    written = trained_lora(tmp_path / "out")
    assert all(".q_proj." in k or ".v_proj." in k for k in written)  # the study's recipe: q and v only
    loaded = load_model(spec)

    from overspec.models.adapters import prepare

    reference = load_model(tmp_path / "clip.yaml")
    prepare(reference, "split_attention")
    adapted = PeftModel.from_pretrained(reference.module, str(tmp_path / "out" / "adapter"))
    reread = {k: v for k, v in adapted.state_dict().items() if "lora_" in k}
    assert len(reread) == len(written)
    for key, value in written.items():
        match = [
            v
            for k, v in reread.items()
            if k.endswith(key.split("base_model.model.", 1)[-1].replace(".weight", ".default.weight"))
        ]
        assert match and torch.equal(match[0], value)
    merged = adapted.merge_and_unload().eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(x), merged.encode_image(x), atol=0, rtol=0)
        assert (loaded.encode_image(x) - load_model(tmp_path / "clip.yaml").encode_image(x)).abs().max() > 1e-4


def test_mad_finetune_writes_a_head_the_detector_uses(tmp_path):
    from overspec.data.attack_layouts import LAYOUTS
    from overspec.data.attack_protocol import load_attack_dataset, write_protocol_csv

    build_attack_layout("smdd", tmp_path / "smdd")
    build_attack_layout("syn_mad22", tmp_path / "syn")
    samples = LAYOUTS.get("smdd")(tmp_path / "smdd") + LAYOUTS.get("syn_mad22")(tmp_path / "syn")
    write_protocol_csv(samples, tmp_path / "mad.csv")
    torch.save(tiny_clip().state_dict(), tmp_path / "clip.pt")
    write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"})
    write_yaml(
        tmp_path / "mad.yaml",
        {
            "name": "tiny-mad",
            "base": "clip.yaml",
            "task": "mad",
            "data": "mad.csv",
            "output": "out",
            "preset": "madation",
            "epochs": 2,
            "batch_size": 4,
            "forgetting": {"l2sp_weight": 0.1, "freeze_blocks": [0]},
        },
    )
    spec = finetune(load_finetune_config(tmp_path / "mad.yaml"), log=lambda line: None)
    written = trained_lora(tmp_path / "out")
    assert written and not any("resblocks.0." in k for k in written)  # block 0 frozen
    encoder = load_model(spec)
    assert encoder.head is not None and encoder.head.positive == "bonafide"
    result = PROTOCOLS.get("attack_detection")(
        encoder, load_attack_dataset(tmp_path / "mad.csv", task="mad"), num_workers=0, progress=False
    )
    assert result.details["scorer"] == "head"
    record = yaml.safe_load((tmp_path / "out" / "model.yaml").read_text())
    assert "l2sp_weight': 0.1" in record["notes"] and record["family"] == "peft"


def write_recordio(folder: Path, images_and_labels) -> None:
    """insightface's layout: a header record 0 (label = one past the last image), then the images."""
    import struct

    folder.mkdir(parents=True, exist_ok=True)
    records = [(0, struct.pack("<IfQQ", 0, float(len(images_and_labels) + 1), 0, 0))]
    for i, (image, label) in enumerate(images_and_labels, start=1):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95)
        records.append((i, struct.pack("<IfQQ", 0, float(label), i, 0) + buffer.getvalue()))
    with open(folder / "train.rec", "wb") as rec, open(folder / "train.idx", "w") as idx:
        for key, payload in records:
            idx.write(f"{key}\t{rec.tell()}\n")
            rec.write(struct.pack("<II", 0xCED7230A, len(payload)) + payload + b"\0" * (-len(payload) % 4))


def test_insightface_recordio_training_data(tmp_path):
    from overspec.finetune.data import training_data

    faces = lfw_faces(6, size=48)
    samples = [(face, i // 2 + 10) for i, face in enumerate(faces)]
    write_recordio(tmp_path / "casia", samples)
    images, labels, names = training_data("fr", tmp_path / "casia")
    assert len(images) == 6 and labels.tolist() == [0, 0, 1, 1, 2, 2] and names == ["10", "11", "12"]
    decoded = np.asarray(images.load(3), dtype=float)
    assert np.abs(decoded - np.asarray(faces[3], dtype=float)).mean() < 4  # JPEG round trip


def test_divergence_stops_with_advice_and_resume_refuses_changed_settings(tmp_path):
    from overspec.errors import TrainingError

    config = load_finetune_config(tiny_setup(tmp_path, epochs=2, lr_head=1e30, lr_backbone=1e30))
    with pytest.raises(TrainingError, match=r"loss became (nan|inf).*Lower lr_backbone \(now 1e\+30\)"):
        finetune(config, log=lambda line: None)

    config = load_finetune_config(tiny_setup(tmp_path, epochs=1))
    finetune(config, log=lambda line: None)
    changed = load_finetune_config(tiny_setup(tmp_path, epochs=1, lr_backbone=0.5))
    with pytest.raises(TrainingError, match=r"other settings \(lr_backbone: 0.01 -> 0.5\).*delete the checkpoint"):
        finetune(changed, log=lambda line: None)

"""The side-effect benchmarks through real loaders on real bytes: the morph and attack sets' readers, the IJB-C 1:N
reader on insightface's file names and columns, an identity folder's split, and an experiment whose morph,
attack and identification cells match an independent computation, export their comparisons and reach the
report."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import yaml

from helpers.data import lfw_faces, morph, recapture, save, views, write_bin, write_ijb
from overspec.data.comparison_sets import load_attack_targets, load_morph_set
from overspec.data.identification_sets import load_ijb_1n, split_identity_folder
from overspec.errors import DataError
from overspec.metrics.identification import cmc, search
from overspec.metrics.side_effects import read_comparisons, score_comparisons
from overspec.metrics.vulnerability import mmpmr, threshold_at_far

N_IDS = 8


def identity_folder(root, n=N_IDS, per_id=3, seed=0):
    rng = np.random.default_rng(seed)
    faces = lfw_faces(n, size=64)
    for i, face in enumerate(faces):
        for k, image in enumerate(views(face, rng, per_id)):
            save(image, root / "identities" / f"id{i}" / f"{k}.png")
    return faces


def side_effect_data(root):
    """Identities, morphs of neighbours with their contributors, recaptures with their targets, a verification .bin
    (20 impostor pairs: FAR 0.05 needs 20)."""
    faces = identity_folder(root)
    morphs = [["path", "role", "subject", "method"]]
    targets = [["path", "role", "subject", "attack_type"]]
    for i in range(N_IDS):
        j = (i + 1) % N_IDS
        save(morph(faces[i], faces[j]), root / "morphs" / f"{i}_{j}.png")
        morphs.append([f"morphs/{i}_{j}.png", "morph", f"id{i};id{j}", "blend" if i % 2 else "even"])
        morphs += [[f"identities/id{i}/{k}.png", "probe", f"id{i}", ""] for k in (1, 2)]
        save(recapture(faces[i]), root / "recaptures" / f"{i}.png")
        targets.append([f"identities/id{i}/0.png", "enrolment", f"id{i}", ""])
        targets.append([f"recaptures/{i}.png", "attack", f"id{i}", "print" if i % 2 else "replay"])
    for name, rows in (("morphs.csv", morphs), ("targets.csv", targets)):
        with open(root / name, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    write_bin(root / "pairs.bin", n_pairs=40)


def test_readers_pair_each_morph_with_its_contributors_probes_and_each_attack_with_its_target(tmp_path):
    side_effect_data(tmp_path)
    plan = load_morph_set(tmp_path / "morphs.csv")
    assert len(plan) == N_IDS * 2 * 2  # each morph x two contributors x two probes
    first = [k for k in range(len(plan)) if plan.ids["morph"][k] == "morphs/0_1.png"]
    assert sorted(plan.ids["probe"][k] for k in first) == [f"identities/id{s}/{v}.png" for s in (0, 1) for v in (1, 2)]
    assert {plan.images.paths[plan.left[k]].name for k in first} == {"0_1.png"}
    attacks = load_attack_targets(tmp_path / "targets.csv")
    assert len(attacks) == N_IDS and attacks.ids["subject"][3] == "id3"
    assert attacks.images.paths[attacks.right[3]] == tmp_path / "identities" / "id3" / "0.png"


def test_bad_morph_and_attack_rows_get_one_line(tmp_path):
    side_effect_data(tmp_path)
    (tmp_path / "bad.csv").write_text("path,role,subject\nmorphs/0_1.png,morph,id0\n")
    with pytest.raises(DataError, match=r"bad.csv, line 2: a morph needs two or more contributors"):
        load_morph_set(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("path,role,subject\nmorphs/0_1.png,morph,id0;id99\n")
    with pytest.raises(DataError, match=r"line 2: subject id0 of morph 0_1.png has no probe image"):
        load_morph_set(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("path,role,subject,attack_type\nrecaptures/0.png,attack,id0,print\n")
    with pytest.raises(DataError, match=r"line 2: subject id0 has no enrolment row"):
        load_attack_targets(tmp_path / "bad.csv")


def test_frll_names_give_contributors_and_probes_exclude_the_morphed_images(tmp_path):
    faces = lfw_faces(3)
    for s, face in enumerate(faces):
        for pose in ("03", "08"):
            save(face, tmp_path / "raw" / f"00{s}_{pose}.jpg")
    save(morph(faces[0], faces[1]), tmp_path / "morph_opencv" / "000_03-001_03.png")
    save(morph(faces[1], faces[2]), tmp_path / "morph_stylegan" / "001_002.png")
    plan = load_morph_set(tmp_path, layout="frll_morphs")
    by_morph = {}
    for k in range(len(plan)):
        by_morph.setdefault((plan.ids["morph"][k], plan.ids["method"][k]), []).append(plan.ids["probe"][k])
    assert sorted(by_morph[("morph_opencv/000_03-001_03.png", "opencv")]) == ["raw/000_08.jpg", "raw/001_08.jpg"]
    assert len(by_morph[("morph_stylegan/001_002.png", "stylegan")]) == 4  # no pose in the name: every image
    save(faces[0], tmp_path / "morph_opencv" / "single.png")
    with pytest.raises(DataError, match="cannot tell the two contributors from the name with morph_pattern"):
        load_morph_set(tmp_path, layout="frll_morphs")


def write_ijb_1n(root, n=N_IDS):
    """insightface's IJB-C layout (tests/helpers write_ijb: template 100+i with two images, 200+i with one, subject
    i) and its 1:N lists: G1 enrols subjects 0..n/2-1 by template 100+i, G2 the others; every 200+i probes."""
    write_ijb(root, lfw_faces(n, size=112))
    header = "TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID,FACE_X,FACE_Y,FACE_WIDTH,FACE_HEIGHT\n"
    half = n // 2
    for name, rows in (
        ("ijbc_1N_gallery_G1.csv", [(100 + i, i) for i in range(half)]),
        ("ijbc_1N_gallery_G2.csv", [(100 + i, i) for i in range(half, n)]),
        ("ijbc_1N_probe_mixed.csv", [(200 + i, i) for i in range(n)]),
    ):
        lines = [f"{t},{s},img/{t}.jpg,{t},0,0,10,10" for t, s in rows]
        (root / "meta" / name).write_text(header + "\n".join(lines) + "\n")


def test_ijbc_1n_reader_reads_insightfaces_file_names_and_columns(tmp_path):
    write_ijb_1n(tmp_path / "ijbc")
    found = load_ijb_1n(tmp_path / "ijbc")
    assert sorted(found.galleries) == ["G1", "G2"]
    assert found.galleries["G1"][0].tolist() == [100, 101, 102, 103] and found.galleries["G2"][1].tolist() == [
        "4",
        "5",
        "6",
        "7",
    ]
    assert found.probes[0].tolist() == [200 + i for i in range(N_IDS)]
    assert len(found.images) == 3 * N_IDS and set(found.templates) == {*range(100, 108), *range(200, 208)}
    union = load_ijb_1n(tmp_path / "ijbc", gallery="union")
    assert list(union.galleries) == ["union"] and len(union.galleries["union"][0]) == N_IDS
    (tmp_path / "ijbc" / "meta" / "ijbc_1N_gallery_G2.csv").unlink()
    with pytest.raises(DataError, match=r"ijbc_1N_gallery_G2.csv does not exist"):
        load_ijb_1n(tmp_path / "ijbc")


def test_identity_folder_split_enrols_the_first_images_and_leaves_some_identities_out(tmp_path):
    identity_folder(tmp_path, n=10, per_id=3)
    closed = split_identity_folder(tmp_path / "identities")
    (templates, subjects) = closed.galleries["gallery"]
    assert len(templates) == 10 and closed.images.paths[templates[0]].name == "0.png"
    assert len(closed.probes[0]) == 20
    opened = split_identity_folder(tmp_path / "identities", unenrolled=0.3, seed=1)
    enrolled = set(opened.galleries["gallery"][1])
    assert len(enrolled) == 7 and sum(s not in enrolled for s in opened.probes[1]) == 3 * 3


def embed(encoder, paths, flip=True):
    from PIL import Image

    transform = encoder.preprocess.transform()
    with torch.no_grad():
        images = [Image.open(p).convert("RGB") for p in paths]
        e = encoder.encode_image(torch.stack([transform(i) for i in images])).numpy().astype(np.float64)
        if flip:
            e = e + encoder.encode_image(torch.stack([transform(i.transpose(0)) for i in images])).numpy()
    return e / np.linalg.norm(e, axis=1, keepdims=True)


@pytest.mark.slow
def test_an_experiment_scores_morphs_attacks_and_searches_as_computed_by_hand(tmp_path, clip_file):
    from overspec.config import Experiment
    from overspec.data.insightface_bin import load_pairs
    from overspec.models import load_model
    from overspec.runner import run_experiment

    side_effect_data(tmp_path)
    spec = {"family": "openai_clip", "weights": str(clip_file)}
    (tmp_path / "clip.yaml").write_text(yaml.safe_dump(spec))
    at = {"verification": str(tmp_path / "pairs.bin"), "far": 0.05}
    experiment = Experiment.model_validate(
        {
            "name": "side",
            "models": [{"name": "clip", "spec": str(tmp_path / "clip.yaml"), "task": "fr"}],
            "biometric": [
                {"name": "pairs", "protocol": "face_verification", "path": str(tmp_path / "pairs.bin")},
                {"name": "morphs", "protocol": "morph_acceptance", "path": str(tmp_path / "morphs.csv"), "options": at},
                {
                    "name": "targets",
                    "protocol": "attack_acceptance",
                    "path": str(tmp_path / "targets.csv"),
                    "options": at,
                },
                {"name": "ids", "protocol": "identification", "path": str(tmp_path / "identities")},
            ],
            "workers": 0,
        }
    )
    out = tmp_path / "run"
    run_experiment(experiment, out=out, log=lambda line: None)
    with open(out / "results.csv") as f:
        rows = [r for r in csv.DictReader(f)]
    value = {(r["dataset"], r["metric"]): float(r["value"]) for r in rows}

    # independently: embed every image (and its mirror), cosine, threshold at FAR 5 % on the .bin's impostors
    encoder = load_model(spec)
    images, genuine = load_pairs(tmp_path / "pairs.bin")
    pairs = []
    for i in range(len(images)):
        path = tmp_path / "bin" / f"{i}.png"
        save(images.load(i), path)
        pairs.append(path)
    e = embed(encoder, pairs)
    pair_scores = np.einsum("ij,ij->i", e[0::2], e[1::2])
    tau = threshold_at_far(pair_scores[~genuine], 0.05)
    rows_m = []
    for i in range(N_IDS):
        j = (i + 1) % N_IDS
        paths = [tmp_path / "morphs" / f"{i}_{j}.png"] + [
            tmp_path / "identities" / f"id{s}" / f"{k}.png" for s in (i, j) for k in (1, 2)
        ]
        f = embed(encoder, paths)
        rows_m += [(f"m{i}", s, float(f[0] @ f[1 + n])) for n, s in enumerate([i, i, j, j])]
    m, n, s = zip(*rows_m, strict=True)
    assert value[("morphs", "mmpmr")] == pytest.approx(mmpmr(s, m, n, tau), abs=1e-9)
    assert value[("morphs", "fnmr")] == pytest.approx(np.mean(pair_scores[genuine] <= tau), abs=1e-9)
    attacks = [
        float(
            np.prod(
                embed(encoder, [tmp_path / "recaptures" / f"{i}.png", tmp_path / f"identities/id{i}/0.png"]), axis=0
            ).sum()
        )
        for i in range(N_IDS)
    ]
    assert value[("targets", "iapmr")] == pytest.approx(np.mean(np.array(attacks) > tau), abs=1e-9)
    gallery = embed(encoder, [tmp_path / f"identities/id{i}/0.png" for i in range(N_IDS)])
    probe_paths = [(i, tmp_path / f"identities/id{i}/{k}.png") for i in range(N_IDS) for k in (1, 2)]
    probes = embed(encoder, [p for _, p in probe_paths])
    searches = search(probes @ gallery.T, [f"id{i}" for i, _ in probe_paths], [f"id{i}" for i in range(N_IDS)])
    assert (
        value[("ids", "cmc_1")] == pytest.approx(cmc(searches, 1))
        and value[("ids", "headline")] == value[("ids", "cmc_1")]
    )

    # every cell's comparisons are exported and re-score to the run's values; rows carry intervals
    cells = {r["cell"]: r["dataset"] for r in rows if r["protocol"] != "face_verification"}
    for cell, dataset in cells.items():
        meta = json.loads((out / "scores" / f"{cell}.json").read_text())
        again = score_comparisons(
            read_comparisons(out / "scores" / f"{cell}.csv"), **({"far": meta["far"]} if meta["far"] else {})
        )
        for key, v in again.values.items():
            if v is not None:
                assert value[(dataset, key)] == pytest.approx(v, abs=1e-12)
    assert len(cells) == 3
    assert all(r["ci_low"] for r in rows if r["dataset"] == "morphs" and r["metric"] in ("mmpmr", "rmmr"))
    summary = json.loads((out / "summary.json").read_text())
    assert not [g for g in summary["biometric_gains"] if g["benchmark"] in ("morphs", "targets", "ids")]
    report = (out / "report.md").read_text()
    assert "What each face model now accepts" in report


@pytest.mark.slow
def test_ijbc_1n_searches_each_gallery_as_computed_by_hand(tmp_path, clip_file):
    from overspec.models import load_model
    from overspec.protocols import PROTOCOLS

    write_ijb_1n(tmp_path / "ijbc")
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    result = PROTOCOLS.get("identification")(encoder, tmp_path / "ijbc", layout="ijb", num_workers=0, progress=False)
    found = load_ijb_1n(tmp_path / "ijbc")
    transform = encoder.preprocess.transform()
    with torch.no_grad():
        images = [found.images.load(i) for i in range(len(found.images))]
        e = encoder.encode_image(torch.stack([transform(i) for i in images])).numpy().astype(np.float64)
        e += encoder.encode_image(torch.stack([transform(i.transpose(0)) for i in images])).numpy()
    pooled = {}  # insightface's pooling, by loops: media means summed per template, normalised
    for template in np.unique(found.templates):
        mine = found.templates == template
        total = sum(e[mine & (found.media == m)].mean(0) for m in np.unique(found.media[mine]))
        pooled[int(template)] = total / np.linalg.norm(total)
    probes = np.stack([pooled[200 + i] for i in range(N_IDS)])
    ranks = []
    for name, members in (("G1", range(N_IDS // 2)), ("G2", range(N_IDS // 2, N_IDS))):
        gallery = np.stack([pooled[100 + i] for i in members])
        searches = search(probes @ gallery.T, [str(i) for i in range(N_IDS)], [str(i) for i in members])
        assert result.metrics[f"cmc_1@{name}"] == pytest.approx(cmc(searches, 1), abs=1e-12)
        ranks.append(cmc(searches, 1))
        assert result.unresolved[f"tpir_at_fpir_0.1@{name}"] == "needs >= 10 non-mated searches, has 4"
    assert result.metrics["cmc_1"] == pytest.approx(np.mean(ranks)) and result.headline_metric == "cmc_1"
    # insightface's ijb_1n.py: one gallery of G1 and G2, every probe mated; its TPIR from the largest pair scores
    insight = PROTOCOLS.get("identification")(
        encoder, tmp_path / "ijbc", layout="ijb", convention="insightface", num_workers=0, progress=False
    )
    union = np.stack([pooled[100 + i] for i in range(N_IDS)])
    similarity = probes @ union.T
    mated = similarity[np.arange(N_IDS), np.arange(N_IDS)]
    others = np.sort(similarity[~np.eye(N_IDS, dtype=bool)])[::-1]
    assert insight.metrics["cmc_1"] == pytest.approx(np.mean(similarity.argmax(axis=1) == np.arange(N_IDS)))
    assert insight.metrics["tpir_at_fpir_0.1"] == pytest.approx(np.mean(mated > others[0]))  # ceil(8 * 0.1) = 1st
    assert insight.details["galleries"] == ["union"] and insight.details["convention"] == "insightface"


def test_side_effects_are_shown_beside_the_verification_gain_and_never_counted_as_one():
    from types import SimpleNamespace

    from overspec.analysis.gelo import Record, biometric_gains
    from overspec.report.side_effects import side_effect_sections

    def row(model, dataset, protocol, metric, value, low=None, high=None, base=None):
        headline = {"face_verification": "accuracy", "morph_acceptance": "mmpmr"}[protocol]
        return SimpleNamespace(
            model=model, dataset=dataset, protocol=protocol, metric=metric, value=value, ci_low=low, ci_high=high,
            base=base, headline_metric=headline,
        )  # fmt: skip

    rows = [
        row("base", "pairs", "face_verification", "headline", 0.80),
        row("fr", "pairs", "face_verification", "headline", 0.95, base="base"),
        row("base", "morphs", "morph_acceptance", "mmpmr", 0.30, 0.2, 0.4),
        row("fr", "morphs", "morph_acceptance", "mmpmr", 0.42, 0.3, 0.5, base="base"),
    ]
    ((name, table),) = side_effect_sections(rows)
    assert name == "side_effects" and table.columns == ["model", "pairs: accuracy ↑", "morphs: mmpmr ↓"]
    assert table.rows[1] == ["fr (base base)", "95.0 (+15.0)", "42.0 [30.0, 50.0] (+12.0)"]
    assert side_effect_sections([r for r in rows if r.protocol == "face_verification"]) == []
    records = [
        Record(r.model, "", r.dataset, r.protocol, r.value, r.headline_metric, r.metric != "mmpmr", "fr", r.base, "fr")
        for r in rows
    ]
    assert [(g.benchmark, round(g.gain, 6)) for g in biometric_gains(records)] == [("pairs", 0.15)]


def test_a_side_effect_layout_outside_options_is_refused_in_one_line():
    from pydantic import ValidationError

    from overspec.config import BiometricBenchmark

    with pytest.raises(ValidationError, match=r"morph_acceptance reads its layout from options: write options: "):
        BiometricBenchmark(name="m", protocol="morph_acceptance", path="/x", layout="frll_morphs")
    assert BiometricBenchmark(name="m", protocol="identification", path="/x").task == "fr"


def test_a_far_the_verification_set_cannot_resolve_is_refused_at_plan_time(tmp_path):
    from overspec.config import Experiment
    from overspec.errors import ConfigError
    from overspec.runner.plan import plan

    side_effect_data(tmp_path)
    (tmp_path / "clip.pt").write_bytes(b"weights are not read at plan time")
    (tmp_path / "clip.yaml").write_text(yaml.safe_dump({"family": "openai_clip", "weights": str(tmp_path / "clip.pt")}))
    at = {"verification": str(tmp_path / "pairs.bin")}  # FAR 0.1 % by default: 20 impostor pairs cannot resolve it
    experiment = Experiment.model_validate(
        {
            "name": "x",
            "models": [{"name": "clip", "spec": str(tmp_path / "clip.yaml")}],
            "biometric": [
                {"name": "m", "protocol": "morph_acceptance", "path": str(tmp_path / "morphs.csv"), "options": at}
            ],
        }
    )
    with pytest.raises(
        ConfigError,
        match=r"^benchmark m: option far: .*pairs.bin has 20 impostor pairs; a threshold at FAR "
        r"0.001 needs >= 1000: raise far or name a larger verification set$",
    ):
        plan(experiment)

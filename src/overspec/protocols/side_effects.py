"""What a face model accepts beside what it was tuned for: morphs (``morph_acceptance``), presentation attacks
(``attack_acceptance``), and how it searches a gallery (``identification``).

The comparator is the model's embedding with cosine similarity, as in face verification (the flip test by default,
as ``face_verification`` runs it). Morph and attack acceptance fix the operating threshold at ``far`` (FAR 0.1 % by
default) on the named ``verification`` set (a ``.bin`` or a pair list, ``data/pair_list.py``), as a deployed system
would: ``overspec.metrics.vulnerability``. Data: ``data/comparison_sets.py`` and ``data/identification_sets.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from overspec.data.comparison_sets import MORPH_PATTERN, ComparisonPlan, load_attack_targets, load_morph_set
from overspec.data.identification_sets import load_identification_set
from overspec.data.pair_list import load_verification_pairs
from overspec.errors import DataError
from overspec.metrics.side_effects import (
    DEFAULT_FAR,
    FPIR_TARGETS,
    Comparisons,
    comparison_intervals,
    identification_comparisons,
    score_comparisons,
)
from overspec.metrics.specs import needed_samples
from overspec.models.encoder import Encoder
from overspec.protocols.face_verification import _normalise, face_embeddings, pair_scores
from overspec.protocols.result import ProtocolResult

HEADLINES = {"morph_acceptance": "mmpmr", "attack_acceptance": "iapmr", "identification": "cmc_1"}
SEARCH_BLOCK = 4096  # probes per similarity block
RESAMPLES = 200  # as `overspec run`'s other biometric cells (metrics/conventions/scoring.py RUN_RESAMPLES)


def _convention(convention: str) -> None:
    if convention != "iso":
        raise DataError(f"side-effect benchmarks follow convention iso only (the definitions), not {convention!r}")


def _far(far, verification) -> float:
    """``far`` as a number (YAML reads ``1e-3`` as text), checked against what the verification set resolves."""
    try:
        far = float(far)
    except (TypeError, ValueError):
        raise DataError(f"option far: {far!r}; a FAR in (0, 1), e.g. 0.001 for FAR 0.1 %") from None
    if not 0 < far < 1:
        raise DataError(f"option far: {far!r}; a FAR in (0, 1), e.g. 0.001 for FAR 0.1 %")
    if verification is None:
        raise DataError(
            "option verification: name the verification set (a .bin or a pair list) the threshold is set on"
        )
    _, genuine = load_verification_pairs(verification)
    impostors = int(np.count_nonzero(~np.asarray(genuine, dtype=bool)))
    if impostors < needed_samples(far):
        raise DataError(
            f"option far: {verification} has {impostors} impostor pairs; a threshold at FAR {far:g} needs >= "
            f"{needed_samples(far)}: raise far or name a larger verification set"
        )
    return far


def check_morph_acceptance(
    encoder,
    path,
    *,
    verification=None,
    far=DEFAULT_FAR,
    layout="csv",
    morph_pattern=MORPH_PATTERN,
    convention="iso",
    **_,
) -> None:
    _convention(convention)
    _far(far, verification)
    load_morph_set(path, layout=layout, morph_pattern=morph_pattern)


def check_attack_acceptance(encoder, path, *, verification=None, far=DEFAULT_FAR, convention="iso", **_) -> None:
    _convention(convention)
    _far(far, verification)
    load_attack_targets(path)


def check_identification(encoder, path, *, layout="folder", convention="iso", **options) -> None:
    if convention not in ("iso", "insightface"):
        raise DataError(f"identification follows convention iso or insightface (its ijb_1n.py), not {convention!r}")
    if layout == "ijb":
        gallery = "union" if convention == "insightface" else options.get("gallery", "each")
        load_identification_set(path, layout=layout, which=options.get("which", "ijbc"), gallery=gallery)
    else:
        split = {k: options[k] for k in ("gallery_images", "unenrolled", "seed") if k in options}
        load_identification_set(path, layout=layout, **split)


def _embed(encoder: Encoder, images, name: str, flip: bool, run: dict) -> np.ndarray:
    return _normalise(face_embeddings(encoder, images, flip=flip, name=name, **run).astype(np.float64))


def _verification_rows(encoder, verification, flip: bool, run: dict) -> tuple[np.ndarray, np.ndarray]:
    images, genuine = load_verification_pairs(verification)
    features = face_embeddings(encoder, images, flip=flip, name=Path(verification).stem, **run)
    scores = pair_scores(features)
    genuine = np.asarray(genuine, dtype=bool)
    return scores, np.where(genuine, "genuine", "impostor")


def _comparisons(kind: str, encoder, plan: ComparisonPlan, name: str, verification, flip: bool, run) -> Comparisons:
    e = _embed(encoder, plan.images, name, flip, run)
    scores = np.einsum("ij,ij->i", e[plan.left], e[plan.right])
    v_scores, v_roles = _verification_rows(encoder, verification, flip, run)
    blank = [""] * len(v_scores)
    role = "morph" if kind == "morph_acceptance" else "attack"
    return Comparisons.of(
        kind,
        np.r_[v_scores, scores],
        [*v_roles, *[role] * len(scores)],
        **{k: blank + list(v) for k, v in plan.ids.items()},
    )


def _result(
    kind: str, name: str, encoder, data: Comparisons, far: float, details: dict, convention: str = "iso"
) -> ProtocolResult:
    scored = score_comparisons(data, far=far, convention=convention)
    found = comparison_intervals(data, scored, n_resamples=RESAMPLES)
    return ProtocolResult(
        kind,
        name,
        encoder.name,
        scored.values | scored.counts,
        HEADLINES[kind],
        {**details, **scored.decisions, "convention": convention, "ci_resamples": found.resamples},
        {},
        found.intervals,
        found.method,
        {},
        scored.unresolved,
        data,  # exported by the runner as scores/CELL.csv (metrics/side_effects.py write_comparisons)
    )


def run_morph_acceptance(
    encoder: Encoder,
    path: str | Path,
    *,
    verification: str | None = None,
    far: float = DEFAULT_FAR,
    layout: str = "csv",
    morph_pattern: str = MORPH_PATTERN,
    flip: bool = True,
    convention: str = "iso",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """MMPMR, ProdAvg-MMPMR and RMMR (pooled and per morphing method), with the FAR reached and FNMR, of
    ``encoder`` as a face comparator at its threshold at ``far`` on ``verification`` (headline: MMPMR)."""
    check_morph_acceptance(
        encoder,
        path,
        verification=verification,
        far=far,
        layout=layout,
        morph_pattern=morph_pattern,
        convention=convention,
    )
    far = float(far)
    plan = load_morph_set(path, layout=layout, morph_pattern=morph_pattern)
    run = {"batch_size": batch_size, "num_workers": num_workers, "progress": progress}
    name = Path(path).stem
    data = _comparisons("morph_acceptance", encoder, plan, name, verification, flip, run)
    details = {"verification": str(verification), "flip": flip, "layout": layout}
    return _result("morph_acceptance", name, encoder, data, far, details)


def run_attack_acceptance(
    encoder: Encoder,
    path: str | Path,
    *,
    verification: str | None = None,
    far: float = DEFAULT_FAR,
    flip: bool = True,
    convention: str = "iso",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """IAPMR (pooled, per attack type, their mean and worst) of ``encoder`` at its threshold at ``far`` on
    ``verification``: each attack presentation against its target's enrolment (headline: pooled IAPMR)."""
    check_attack_acceptance(encoder, path, verification=verification, far=far, convention=convention)
    far = float(far)
    plan = load_attack_targets(path)
    run = {"batch_size": batch_size, "num_workers": num_workers, "progress": progress}
    name = Path(path).stem
    data = _comparisons("attack_acceptance", encoder, plan, name, verification, flip, run)
    return _result("attack_acceptance", name, encoder, data, far, {"verification": str(verification), "flip": flip})


def run_identification(
    encoder: Encoder,
    path: str | Path,
    *,
    layout: str = "folder",
    which: str = "ijbc",
    gallery: str = "each",
    gallery_images: int = 1,
    unenrolled: float = 0.0,
    seed: int = 0,
    flip: bool = True,
    detector_weighting: bool = False,
    convention: str = "iso",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """CMC at ranks 1 and 5 and TPIR at FPIR 1 % and 10 % (rank 1) of ``encoder`` searching each gallery
    (``data/identification_sets.py``; headline: rank-1 identification rate)."""
    from overspec.protocols.ijb import template_features

    if convention not in ("iso", "insightface"):
        raise DataError(f"identification follows convention iso or insightface (its ijb_1n.py), not {convention!r}")
    insightface = convention == "insightface"
    if layout == "ijb":  # insightface searches one gallery of G1 and G2 together
        options = {"which": which, "gallery": "union" if insightface else gallery}
    else:
        options = {"gallery_images": gallery_images, "unenrolled": unenrolled, "seed": seed}
    found = load_identification_set(path, layout=layout, **options)
    run = {"batch_size": batch_size, "num_workers": num_workers, "progress": progress}
    name = which if layout == "ijb" else Path(path).name
    features = face_embeddings(encoder, found.images, flip=flip, name=name, **run)
    weights = found.detector_scores if detector_weighting and found.detector_scores is not None else None
    ids, pooled = template_features(features, found.templates, found.media, weights)
    row_of = {int(t): i for i, t in enumerate(ids)}

    def rows(templates) -> np.ndarray:
        return pooled[[row_of[int(t)] for t in templates]].astype(np.float64)

    probe_templates, probe_subjects = found.probes
    galleries = {g: (rows(templates), subjects) for g, (templates, subjects) in found.galleries.items()}
    pair_top = math.ceil(len(probe_templates) * max(FPIR_TARGETS)) if insightface else 0
    data = identification_comparisons(
        rows(probe_templates), (probe_templates, probe_subjects), galleries, pair_top=pair_top, block=SEARCH_BLOCK
    )
    details = {"layout": layout, "flip": flip, "galleries": sorted(found.galleries), **options}
    return _result("identification", name, encoder, data, DEFAULT_FAR, details, convention)


def content_fingerprint(protocol: str, path: Path, options: dict) -> str:
    """What a side-effect cell's numbers depend on beyond its file or folder (whose content the plan hashes): the
    images a CSV names and the verification set the threshold is fixed on (`overspec eval`'s remembered results)."""
    from overspec._hashing import digest, path_sha256

    parts = []
    if options.get("verification"):
        verification = Path(options["verification"])
        images, _ = load_verification_pairs(verification)
        parts.append(path_sha256(verification) if verification.suffix == ".bin" else images.fingerprint)
    if protocol == "morph_acceptance":
        layout, pattern = options.get("layout", "csv"), options.get("morph_pattern", MORPH_PATTERN)
        parts.append(load_morph_set(path, layout=layout, morph_pattern=pattern).images.fingerprint)
    elif protocol == "attack_acceptance":
        parts.append(load_attack_targets(path).images.fingerprint)
    return digest(parts)


def export_comparisons(folder: Path, cell, outcome) -> Path:
    """``scores/CELL.csv`` (``write_comparisons``) and ``scores/CELL.json``: the FAR and threshold the run used and
    the Python call that re-scores the file to the run's values."""
    from overspec._atomic import atomic_open
    from overspec._json import strict_dumps
    from overspec.metrics.side_effects import write_comparisons

    path = write_comparisons(outcome.score_set, folder / f"{cell.key}.csv")
    far = outcome.details.get("far_target")
    convention = outcome.details.get("convention", "iso")
    meta = {
        "cell": cell.key,
        "model": cell.model.name,
        "dataset": cell.dataset,
        "protocol": cell.protocol.name,
        "kind": outcome.score_set.kind,
        "far": far,
        "threshold": outcome.details.get("threshold"),
        "convention": convention,
        "rescore": "from overspec.metrics.side_effects import read_comparisons, score_comparisons; "
        f"score_comparisons(read_comparisons({str(path)!r}){'' if far is None else f', far={far!r}'}"
        f"{'' if convention == 'iso' else f', convention={convention!r}'})",
    }
    with atomic_open(path.with_suffix(".json"), "w") as f:
        f.write(strict_dumps(meta, indent=1))
    return path

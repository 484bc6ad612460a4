"""``iso``: overspec's own rules: exact thresholds (every distinct score), ISO/IEC 30107-3 for MAD/PAD.

Verification: ROC AUC, EER (nearest point, see ``overspec.metrics.scores.equal_error_point``) and TAR at the
highest-TAR point whose FAR does not exceed each target. MAD/PAD: ``attack_detection_report``, plus, when
the file names attack types, BPCER@APCER and APCER@BPCER for each PAI species (bona fide against that
species' attacks alone) and the worst species, as ISO/IEC 30107-3 asks for APCER.
"""

from __future__ import annotations

import numpy as np

from overspec.metrics.conventions.base import KINDS, Convention, ScoreSet
from overspec.metrics.iso30107 import OPERATING_POINTS, apcer_at_bpcer_of, attack_detection_report, bpcer_at_apcer_of
from overspec.metrics.scores import equal_error_point, sweep
from overspec.metrics.specs import metric_key
from overspec.metrics.verification import auc_of, tar_at_far_of

FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
_AT = {"bpcer_at_apcer": bpcer_at_apcer_of, "apcer_at_bpcer": apcer_at_bpcer_of}


def iso_metrics(data: ScoreSet) -> dict[str, float]:
    return verification_metrics(data) if data.kind == "verification" else attack_metrics(data)


def verification_metrics(data: ScoreSet) -> dict[str, float]:
    points = sweep(data.scores, data.positive, what="verification scores")
    eer, threshold, _, _ = equal_error_point(points)
    values = {"auc": auc_of(points), "eer": eer, "eer_threshold": data.sign * threshold}
    return values | {metric_key("tar_at_far", point=t): v for t, v in tar_at_far_of(points, list(FAR_TARGETS)).items()}


def attack_metrics(data: ScoreSet) -> dict[str, float]:
    types = data.attack_types  # names built from the codes once per call (once per bootstrap resample)
    report = attack_detection_report(data.scores, data.positive, types, threshold=data.threshold)
    values = {k: getattr(report, k) for k in ("auc", "eer", "apcer", "apcer_max", "bpcer", "acer", "hter")}
    values |= {"eer_threshold": data.sign * report.eer_threshold, "threshold": data.sign * report.threshold}
    values |= {metric_key("bpcer_at_apcer", point=k): v for k, v in report.bpcer_at_apcer.items()}
    values |= {metric_key("apcer_at_bpcer", point=k): v for k, v in report.apcer_at_bpcer.items()}
    values |= {metric_key("apcer", attack=k): v for k, v in report.apcer_per_attack.items()}
    if types is not None:
        values |= per_species(data.scores, data.positive, types)
    return values


def per_species(scores: np.ndarray, bonafide: np.ndarray, attack_types: np.ndarray) -> dict[str, float]:
    """BPCER@APCER and APCER@BPCER of each attack type (all bona fide against that type's attacks) as
    ``NAME_POINT@TYPE``, and the worst type's (the highest error) as ``worst_NAME_POINT``."""
    values: dict[str, float] = {}
    for species in sorted(set(attack_types[~bonafide]), key=str):
        keep = bonafide | (attack_types == species)
        points = sweep(scores[keep], bonafide[keep], what="attack detection scores")
        for name, at in _AT.items():
            for x in OPERATING_POINTS:
                values[metric_key(name, point=f"{x:g}", attack=str(species))] = at(points, x)
    for name in _AT:
        for x in OPERATING_POINTS:
            key = metric_key(name, point=f"{x:g}")
            values[f"worst_{key}"] = max(v for k, v in values.items() if k.startswith(f"{key}@"))
    return values


ISO = Convention(
    name="iso",
    kinds=KINDS,
    reference="overspec (ISO/IEC 30107-3:2023; exact thresholds at every distinct score)",
    summary="every distinct score is a threshold; operating points never exceed their target",
    metrics=iso_metrics,
)

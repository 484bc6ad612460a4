"""``iso``: overspec's own rules: exact thresholds (every distinct score), ISO/IEC 30107-3 for MAD/PAD.

Verification: ROC AUC, EER (nearest point, see ``overspec.metrics.scores.equal_error_point``) and TAR at the
highest-TAR point whose FAR does not exceed each target. MAD/PAD: ``attack_detection_report`` at the given
threshold (else this set's EER threshold), with APCER's worst attack type (``apcer_max``) and ACER when the set
names attack types; per attack type (``overspec.metrics.conventions.scoring``) AUC, EER, APCER and HTER at the
pooled threshold, BPCER@APCER and APCER@BPCER.
"""

from __future__ import annotations

import numpy as np

from overspec.metrics.conventions.base import KINDS, Convention, ScoreSet
from overspec.metrics.iso30107 import OPERATING_POINTS, attack_detection_report
from overspec.metrics.scores import equal_error_point, sweep
from overspec.metrics.specs import metric_key
from overspec.metrics.verification import auc_of, tar_at_far_of

FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def iso_metrics(data: ScoreSet) -> dict[str, float]:
    return verification_metrics(data) if data.kind == "verification" else attack_metrics(data)


def verification_metrics(data: ScoreSet) -> dict[str, float]:
    points = sweep(data.scores, data.positive, what="verification scores")
    eer, threshold, _, _ = equal_error_point(points)
    values = {"auc": auc_of(points), "eer": eer, "eer_threshold": data.sign * threshold}
    return values | {metric_key("tar_at_far", point=t): v for t, v in tar_at_far_of(points, list(FAR_TARGETS)).items()}


def attack_metrics(data: ScoreSet) -> dict[str, float]:
    report = attack_detection_report(data.scores, data.positive, threshold=data.threshold)
    values = {k: getattr(report, k) for k in ("auc", "eer", "apcer", "apcer_max", "bpcer", "acer", "hter")}
    if data.attack_codes is not None:  # ISO/IEC 30107-3's APCER is the worst attack type's
        worst = worst_type_apcer(data, report.threshold)
        values |= {"apcer_max": worst, "acer": (worst + report.bpcer) / 2}
    values |= {"eer_threshold": data.sign * report.eer_threshold, "threshold": data.sign * report.threshold}
    values |= {metric_key("bpcer_at_apcer", point=k): v for k, v in report.bpcer_at_apcer.items()}
    return values | {metric_key("apcer_at_bpcer", point=k): v for k, v in report.apcer_at_bpcer.items()}


def worst_type_apcer(data: ScoreSet, threshold: float) -> float:
    """The highest APCER over the attack types present, at ``score >= threshold`` meaning bona fide."""
    attacks = ~data.positive
    codes = data.attack_codes[attacks]
    accepted = np.bincount(codes[data.scores[attacks] >= threshold], minlength=len(data.attack_names))
    present = np.bincount(codes, minlength=len(data.attack_names))
    return float(np.max(accepted[present > 0] / present[present > 0]))


ISO = Convention(
    name="iso",
    kinds=KINDS,
    reference="overspec (ISO/IEC 30107-3:2023; exact thresholds at every distinct score)",
    summary="every distinct score is a threshold; operating points never exceed their target",
    metrics=iso_metrics,
    points={"tar_at_far": FAR_TARGETS, "bpcer_at_apcer": OPERATING_POINTS, "apcer_at_bpcer": OPERATING_POINTS},
    per_attack=("auc", "eer", "apcer", "hter", "bpcer_at_apcer", "apcer_at_bpcer"),
)

"""Presentation/morphing attack detection metrics after ISO/IEC 30107-3.

Scores are higher for more bona fide; a presentation is classified bona fide when ``score >= t``.
- APCER(t): proportion of attack presentations classified bona fide, per attack type (PAI species);
  ISO/IEC 30107-3 reports the maximum over types as the system's APCER.
- BPCER(t): proportion of bona fide presentations classified as attacks.
- BPCER@APCER=x: the lowest BPCER over thresholds whose pooled APCER does not exceed x (and
  APCER@BPCER=x symmetrically), the operating points the MAD literature (MADation, SYN-MAD 2022) reports.
- ACER = (max-type APCER + BPCER) / 2 (OULU-NPU's protocol; deprecated by the 2023 edition of the
  standard but still what PAD papers report). HTER = (pooled APCER + BPCER) / 2, at a threshold fixed
  beforehand (on a development set where the protocol has one; otherwise the EER threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from overspec.errors import DataError
from overspec.metrics.scores import ThresholdSweep, check_scores, equal_error_point, sweep
from overspec.metrics.verification import auc_of

OPERATING_POINTS = (0.01, 0.05, 0.10, 0.20)


def bpcer_at_apcer(scores, bonafide, apcer: float) -> float:
    """Lowest BPCER among thresholds with pooled APCER <= ``apcer`` (rejecting everything qualifies)."""
    return bpcer_at_apcer_of(sweep(scores, bonafide, what="attack detection scores"), apcer)


def apcer_at_bpcer(scores, bonafide, bpcer: float) -> float:
    """Lowest pooled APCER among thresholds with BPCER <= ``bpcer`` (accepting everything qualifies)."""
    return apcer_at_bpcer_of(sweep(scores, bonafide, what="attack detection scores"), bpcer)


def bpcer_at_apcer_of(points: ThresholdSweep, apcer: float) -> float:
    """``bpcer_at_apcer`` on an already computed sweep."""
    return float(points.fnr[points.fpr <= apcer + 1e-15].min())


def apcer_at_bpcer_of(points: ThresholdSweep, bpcer: float) -> float:
    """``apcer_at_bpcer`` on an already computed sweep."""
    return float(points.fpr[points.fnr <= bpcer + 1e-15].min())


def apcer_per_attack(scores, bonafide, attack_types, threshold: float) -> dict[str, float]:
    """APCER of each attack type at ``score >= threshold`` meaning bona fide."""
    s, b = check_scores(scores, bonafide, what="attack detection scores")
    types = np.asarray(attack_types, dtype=object)
    if len(types) != len(s):
        raise DataError(f"{len(types)} attack types for {len(s)} scores")
    return {str(t): float((s[~b & (types == t)] >= threshold).mean()) for t in sorted(set(types[~b]), key=str)}


@dataclass(frozen=True)
class AttackDetectionReport:
    """Every ISO/IEC 30107-3 figure of one score set, as fractions."""

    n_bonafide: int
    n_attack: int
    auc: float
    eer: float
    eer_threshold: float
    threshold: float
    apcer: float
    apcer_max: float
    bpcer: float
    acer: float
    hter: float
    apcer_per_attack: dict[str, float] = field(default_factory=dict)
    bpcer_at_apcer: dict[str, float] = field(default_factory=dict)
    apcer_at_bpcer: dict[str, float] = field(default_factory=dict)


def attack_detection_report(
    scores, bonafide, attack_types=None, *, threshold: float | None = None, operating_points=OPERATING_POINTS
) -> AttackDetectionReport:
    """All metrics at ``threshold`` (default: this set's EER threshold; pass a development-set threshold
    for an HTER that is not tuned on the test data)."""
    s, b = check_scores(scores, bonafide, what="attack detection scores")
    points = sweep(s, b)
    eer_value, eer_threshold, _, _ = equal_error_point(points)
    t = eer_threshold if threshold is None else float(threshold)
    apcer = float((s[~b] >= t).mean())
    per_type = {"attack": apcer} if attack_types is None else apcer_per_attack(s, b, attack_types, t)
    bpcer = float((s[b] < t).mean())
    worst = max(per_type.values())
    return AttackDetectionReport(
        n_bonafide=int(b.sum()),
        n_attack=int((~b).sum()),
        auc=auc_of(points),
        eer=eer_value,
        eer_threshold=eer_threshold,
        threshold=t,
        apcer=apcer,
        apcer_max=worst,
        bpcer=bpcer,
        acer=(worst + bpcer) / 2,
        hter=(apcer + bpcer) / 2,
        apcer_per_attack=per_type,
        bpcer_at_apcer={f"{x:g}": bpcer_at_apcer_of(points, x) for x in operating_points},
        apcer_at_bpcer={f"{x:g}": apcer_at_bpcer_of(points, x) for x in operating_points},
    )

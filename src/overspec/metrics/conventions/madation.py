"""``madation``: the MAD numbers of MADation (Caldeira et al., WACVW 2025), reproduced exactly.

Reference: gurayozgur/MADation ``src/utils/utils.py`` (commit f3e6397362fe2085ec23877cb96139990314d64f),
``evaluate_mad_performance`` as ``src/training/trainer.py`` calls it: scores are the bona fide probability,
labels 1 = bona fide, ``fpr, tpr, thr = roc_curve(labels, scores, pos_label=1)`` (scikit-learn's dropped
curve); APCER = fpr, BPCER = 1 - tpr.

- ``eer``: ``get_eer_threhold``: ``fpr[np.nanargmin(np.abs(tpr + fpr - 1))]`` (the FAR side of the
  nearest point, not the mean of FAR and FRR).
- ``bpcer_at_apcer``: ``get_apcer_op``: BPCER at ``np.argmin(abs(apcer - op))``, the nearest APCER (which
  may exceed ``op``), the *first* such point.
- ``apcer_at_bpcer``: ``get_bpcer_op``: APCER at the *last* index where ``abs(bpcer - op)`` is minimal.
- ``auc``: ``sklearn.metrics.auc(fpr, tpr)``.

Operating points 0.01, 0.1 and 0.2, as the reference reports. Scores are z-scored first, in file order,
as ``trainer.py`` does: monotone, yet its rounding can merge scores a few ulps apart into one ROC point.
``madation:float32`` z-scores in float32 as ``trainer.py`` does on its float32 softmax scores
(``raw_test_scores = scores.cpu().numpy()``, then ``np.mean``/``np.std`` and the division on that array).
"""

from __future__ import annotations

import numpy as np

from overspec.metrics.conventions._roc import dropped_roc, trapezoid_auc, z_scores
from overspec.metrics.conventions.base import Convention, ScoreSet
from overspec.metrics.scores import sweep
from overspec.metrics.specs import metric_key

OPERATING_POINTS = (0.01, 0.1, 0.2)


def madation_metrics(data: ScoreSet, *, float32: bool = False) -> dict[str, float]:
    z = z_scores(data.scores, float32=float32)
    apcer, tpr, _ = dropped_roc(sweep(z, data.positive, what="attack detection scores"))
    bpcer = 1 - tpr
    values = {"auc": trapezoid_auc(apcer, tpr), "eer": float(apcer[np.nanargmin(np.abs(tpr + apcer - 1.0))])}
    for op in OPERATING_POINTS:
        values[metric_key("bpcer_at_apcer", point=op)] = float(bpcer[np.argmin(abs(apcer - op))])
        gap = abs(bpcer - op)
        values[metric_key("apcer_at_bpcer", point=op)] = float(apcer[np.where(gap == np.min(gap))[0][-1]])
    return values


MADATION = Convention(
    name="madation",
    kinds=("mad",),
    reference="gurayozgur/MADation src/utils/utils.py@f3e63973 (evaluate_mad_performance)",
    summary="nearest operating point on the dropped ROC (may exceed its target); EER = FAR at |FAR-FRR| min",
    metrics=madation_metrics,
    points={"bpcer_at_apcer": OPERATING_POINTS, "apcer_at_bpcer": OPERATING_POINTS},
    per_attack=("auc", "eer", "bpcer_at_apcer", "apcer_at_bpcer"),
    file_order=True,  # the z-score's mean is summed in file order
    options=("float32",),
)

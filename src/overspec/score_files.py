"""Metrics from a score file, like bob's and pyeer's tools: ``overspec score verification|mad|pad``.

A score file is a CSV with a header and at least ``score`` and ``label`` columns. Verification labels:
``1``/``0`` (also ``genuine``/``impostor``); MAD/PAD labels: ``bonafide``/``attack``, with an optional
``attack_type`` column. By default a higher score means genuine / bona fide.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from overspec._csv import csv_rows
from overspec.data.attack_samples import is_bonafide
from overspec.errors import DataError
from overspec.metrics.bootstrap import bootstrap_ci
from overspec.metrics.iso30107 import attack_detection_report
from overspec.metrics.specs import metric_key, parse_metric
from overspec.metrics.verification import eer, roc_auc, tar_at_far

FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
VERIFICATION_LABELS = {"1": True, "0": False, "genuine": True, "impostor": False, "true": True, "false": False}
NEGATIVE_NAMES = {"verification": "impostor", "mad": "attack", "pad": "attack"}


def read_score_file(path: str | Path, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(scores, positive, attack_types or None)``; every problem names the file, line and column."""
    path = Path(path)
    with csv_rows(path, what="score file", required=("score", "label")) as (columns, rows):
        scores, positive, types = [], [], []
        for line, row in rows:
            text = (row["score"] or "").strip()
            try:
                value = float(text)
            except ValueError:
                raise DataError(f"{path}, line {line}: score {text!r} is not a number") from None
            if not math.isfinite(value):
                raise DataError(f"{path}, line {line}: score is {text}; every score must be finite")
            positive.append(_positive(row["label"] or "", kind, where=f"{path}, line {line}"))
            scores.append(value)
            types.append((row.get("attack_type") or "attack").strip() if not positive[-1] else "")
    p = np.array(positive, dtype=bool)
    if len(p) == 0:
        raise DataError(f"{path}: no rows below the header")
    if p.all() or not p.any():
        absent = NEGATIVE_NAMES[kind] if p.all() else ("genuine" if kind == "verification" else "bonafide")
        raise DataError(f"{path}: no {absent} rows; both classes are needed")
    has_types = kind != "verification" and "attack_type" in columns
    return np.array(scores), p, np.array(types, dtype=object) if has_types else None


def _positive(label: str, kind: str, *, where: str) -> bool:
    if kind != "verification":
        return is_bonafide(label, where=where)
    text = label.strip().lower()
    if text not in VERIFICATION_LABELS:
        raise DataError(f"{where}: label {label!r} is not one of {', '.join(sorted(VERIFICATION_LABELS))}")
    return VERIFICATION_LABELS[text]


def score_report(
    path: str | Path,
    kind: str,
    *,
    higher_means_positive: bool = True,
    threshold: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """Every metric of ``kind`` on the file, as fractions, with bootstrap 95 % intervals under ``ci``."""
    scores, positive, types = read_score_file(path, kind)
    sign = 1.0 if higher_means_positive else -1.0
    s = sign * scores
    internal_threshold = None if threshold is None else sign * threshold

    def metrics(index: np.ndarray) -> dict:
        if kind == "verification":
            e = eer(s[index], positive[index])
            found = tar_at_far(s[index], positive[index], list(FAR_TARGETS))
            values = {"auc": roc_auc(s[index], positive[index]), "eer": e.eer, "eer_threshold": sign * e.threshold}
            return values | {metric_key("tar_at_far", point=t): v for t, v in found.items()}
        report = attack_detection_report(
            s[index], positive[index], None if types is None else types[index], threshold=internal_threshold
        )
        values = {k: getattr(report, k) for k in ("auc", "eer", "apcer", "apcer_max", "bpcer", "acer", "hter")}
        values |= {"eer_threshold": sign * report.eer_threshold, "threshold": sign * report.threshold}
        values |= {metric_key("bpcer_at_apcer", point=k): v for k, v in report.bpcer_at_apcer.items()}
        values |= {metric_key("apcer_at_bpcer", point=k): v for k, v in report.apcer_at_bpcer.items()}
        return values | {metric_key("apcer", attack=k): v for k, v in report.apcer_per_attack.items()}

    flat = metrics(np.arange(len(s)))
    result = _nest(flat)
    if kind == "verification":
        result |= {"n_genuine": int(positive.sum()), "n_impostor": int((~positive).sum())}
    else:
        result |= {"n_bonafide": int(positive.sum()), "n_attack": int((~positive).sum())}
    if n_bootstrap:
        ci = bootstrap_ci(metrics, positive, n_resamples=n_bootstrap, seed=seed)
        result["ci"] = _nest({k: list(v) for k, v in ci.items() if "threshold" not in k})
        result["ci_level"] = 0.95
    result["higher_means"] = (
        ("genuine" if kind == "verification" else "bonafide") if higher_means_positive else (NEGATIVE_NAMES[kind])
    )
    return result


def _nest(flat: dict) -> dict:
    """JSON shape of flat metric keys: ``tar_at_far_0.001`` -> ``tar_at_far: {"0.001": v}``, ``apcer@print`` ->
    ``apcer_per_attack: {"print": v}``; other keys stay as they are."""
    nested: dict = {}
    for key, value in flat.items():
        try:
            parsed = parse_metric(key)
        except DataError:  # e.g. eer_threshold: a score, not a metric
            nested[key] = value
            continue
        if parsed.point is not None:
            nested.setdefault(parsed.spec.name, {})[parsed.point] = value
        elif parsed.attack is not None:
            nested.setdefault(f"{parsed.spec.name}_per_attack", {})[parsed.attack] = value
        else:
            nested[key] = value
    return nested

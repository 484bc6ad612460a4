"""Metrics from a score file, like bob's and pyeer's tools: ``overspec score verification|mad|pad``.

A score file is a CSV with a header and at least ``score`` and ``label`` columns. Verification labels:
``1``/``0`` (also ``genuine``/``impostor``); MAD/PAD labels: ``bonafide``/``attack``, with optional
``attack_type`` and ``video`` columns. By default a higher score means genuine / bona fide. Metrics follow a
named convention (``overspec.metrics.conventions``; ``iso`` unless asked).

Files are read with pandas' C parser; when it finds anything wrong, the file is read again row by row so
that the error names the first bad line exactly as it always has.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from overspec._csv import csv_rows
from overspec.data.attack_samples import is_bonafide
from overspec.errors import DataError
from overspec.metrics.bootstrap import MAX_ROWS, bootstrap_intervals
from overspec.metrics.conventions import ScoreSet, convention_for
from overspec.metrics.specs import parse_metric

__all__ = ["read_score_file", "score_report"]

VERIFICATION_LABELS = {"1": True, "0": False, "genuine": True, "impostor": False, "true": True, "false": False}
NEGATIVE_NAMES = {"verification": "impostor", "mad": "attack", "pad": "attack"}
OPTIONAL = ("attack_type", "video")


def read_score_file(path: str | Path, kind: str) -> ScoreSet:
    """The file's rows as a ``ScoreSet`` (file units); every problem names the file, line and column."""
    path = Path(path)
    with csv_rows(path, what="score file", required=("score", "label")) as (columns, _):
        pass  # the header's checks: exists, UTF-8, no column twice, score and label present
    data = _read_fast(path, kind, columns)
    if data is None:
        data = _read_rows(path, kind)
    p = data.positive
    if len(p) == 0:
        raise DataError(f"{path}: no rows below the header")
    if p.all() or not p.any():
        absent = NEGATIVE_NAMES[kind] if p.all() else ("genuine" if kind == "verification" else "bonafide")
        raise DataError(f"{path}: no {absent} rows; both classes are needed")
    return data


def _read_fast(path: Path, kind: str, columns: list[str]) -> ScoreSet | None:
    """pandas' C reader; None when any row needs the row-by-row reader's diagnosis (or its leniency)."""
    try:
        import pandas as pd
    except ImportError:  # the row-by-row reader does the same, slower
        return None
    if _has_longer_rows(path, len(columns)):
        return None  # pandas would drop the extra values silently; the row reader judges them
    wanted = ["score", "label", *(c for c in OPTIONAL if c in columns)]
    try:
        frame = pd.read_csv(
            path,
            encoding="utf-8-sig",
            usecols=wanted,
            dtype={"score": "float64"} | {c: "category" for c in wanted[1:]},
            na_filter=False,
            index_col=False,  # else a trailing comma on every row shifts the columns
            engine="c",
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):  # a bad number, byte or row
        return None
    scores = frame["score"].to_numpy()
    if not np.isfinite(scores).all():
        return None
    labels = frame["label"].cat
    try:
        known = np.array([_positive(str(v), kind, where="") for v in labels.categories], dtype=bool)
    except DataError:
        return None
    positive = known[labels.codes] if len(known) else np.zeros(0, dtype=bool)
    codes, names, videos = None, (), None
    if kind != "verification" and "attack_type" in frame:
        named = frame["attack_type"].cat
        cleaned = [str(v).strip() or "attack" for v in named.categories]  # empty means "attack", as rows do
        names = tuple(sorted({cleaned[c] for c in np.unique(named.codes[~positive])}))
        lookup = np.array([names.index(c) if c in names else -1 for c in cleaned], dtype=np.int64)
        codes = np.where(positive, -1, lookup[named.codes])
    if "video" in frame:
        videos = frame["video"].astype(str).to_numpy(dtype=object)
    return ScoreSet(kind, scores, positive, codes, names, videos)


def _has_longer_rows(path: Path, n_columns: int) -> bool:
    """Whether a line has more commas than the header's columns need (commas inside quotes count too, which
    only sends such files to the row reader). Reads the bytes in 16 MiB chunks."""
    carry = 0  # commas so far on the line that crosses into the next chunk
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            buf = np.frombuffer(chunk, dtype=np.uint8)
            newlines = np.flatnonzero(buf == ord("\n"))
            per_line = np.bincount(
                np.searchsorted(newlines, np.flatnonzero(buf == ord(","))), minlength=len(newlines) + 1
            )
            per_line[0] += carry
            if per_line.max() > n_columns - 1:
                return True
            carry = per_line[-1]
    return False


def _read_rows(path: Path, kind: str) -> ScoreSet:
    """The row-by-row reader: slow, but its errors name the first bad line, column and value."""
    with csv_rows(path, what="score file", required=("score", "label")) as (columns, rows):
        scores, positive, types, videos = [], [], [], []
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
            videos.append(row.get("video") or "")
    has_types = kind != "verification" and "attack_type" in columns
    return ScoreSet.of(kind, scores, positive, types if has_types else None, videos if "video" in columns else None)


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
    convention: str = "iso",
    max_rows: int = MAX_ROWS,
    progress: bool = False,
) -> dict:
    """Every metric of ``kind`` on the file under ``convention``, as fractions, with bootstrap 95 % intervals
    under ``ci`` (above ``max_rows`` rows, from a subsample and rescaled: ``ci_method`` says so)."""
    rules = convention_for(convention, kind)
    raw = read_score_file(path, kind)
    sign = 1.0 if higher_means_positive else -1.0
    internal = None if threshold is None else sign * threshold
    data = replace(raw, scores=sign * raw.scores, sign=sign, threshold=internal)
    if rules.prepare is not None:
        data = rules.prepare(data)
    order = np.arange(len(data)) if rules.file_order else np.argsort(-data.scores, kind="stable")

    def metrics(index: np.ndarray) -> dict:
        return rules.metrics(data.subset(index))

    flat = metrics(order)
    result = _nest(flat)
    if kind == "verification":
        result |= {"n_genuine": int(data.positive.sum()), "n_impostor": int((~data.positive).sum())}
    else:
        result |= {"n_bonafide": int(data.positive.sum()), "n_attack": int((~data.positive).sum())}
    if len(data) != len(raw):
        result["n_rows"] = len(raw)  # rows were pooled (e.g. per video) before scoring
    if n_bootstrap:
        options = {"order": order, "max_rows": max_rows, "estimate": flat, "progress": progress}
        found = bootstrap_intervals(metrics, data.positive, n_resamples=n_bootstrap, seed=seed, **options)
        result["ci"] = _nest({k: list(v) for k, v in found.intervals.items() if "threshold" not in k})
        result["ci_level"] = 0.95
        if found.rows < found.n:
            result["ci_method"] = found.method
    result["higher_means"] = (
        ("genuine" if kind == "verification" else "bonafide") if higher_means_positive else (NEGATIVE_NAMES[kind])
    )
    result["convention"] = rules.name
    return result


def _nest(flat: dict) -> dict:
    """JSON shape of flat metric keys: ``tar_at_far_0.001`` -> ``tar_at_far: {"0.001": v}``, ``apcer@print`` ->
    ``apcer_per_attack: {"print": v}``, ``bpcer_at_apcer_0.1@print`` -> ``bpcer_at_apcer_per_attack:
    {"print": {"0.1": v}}``, ``worst_bpcer_at_apcer_0.1`` -> ``bpcer_at_apcer_worst: {"0.1": v}``; other keys
    stay as they are."""
    nested: dict = {}
    for key, value in flat.items():
        try:
            parsed = parse_metric(key)
        except DataError:  # e.g. eer_threshold: a score, not a metric
            nested[key] = value
            continue
        name = parsed.spec.name
        if parsed.aggregate:
            name = f"{name}_{parsed.aggregate}"
        elif parsed.attack is not None:
            name = f"{name}_per_attack"
        place = nested.setdefault(name, {}) if name != key else nested
        if parsed.attack is not None and parsed.point is not None:
            place = place.setdefault(parsed.attack, {})
        inner = parsed.point if parsed.point is not None else parsed.attack
        place[key if inner is None else inner] = value
    return nested

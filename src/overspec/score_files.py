"""Metrics from a score file, like bob's and pyeer's tools: ``overspec score verification|mad|pad``.

A score file is a CSV with a header and at least ``score`` and ``label`` columns. Verification labels:
``1``/``0`` (also ``genuine``/``impostor``); MAD/PAD labels: ``bonafide``/``attack``. Optional columns, read for
every convention: ``attack_type`` (MAD/PAD), ``video``, ``subject`` and ``pair`` (a pair's or template pair's
id). Tab- or space-separated files, with or without a header (insightface's and IJB's score dumps), are read
with ``sep`` and ``columns`` (the names of the file's columns in order; ``_`` skips one). By default a higher
score means genuine / bona fide. Metrics follow a named convention (``overspec.metrics.conventions``; ``iso``
unless asked), through the same function as ``overspec run``'s protocols.

Files are read with pandas' C parser; when it finds anything wrong, the file is read again row by row so
that the error names the first bad line exactly as it always has. Before either, the bytes are scanned once
(in bounded chunks) for NUL bytes and over-long lines, which no score file has.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from overspec._csv import csv_rows
from overspec.data.attack_samples import is_bonafide
from overspec.errors import DataError
from overspec.metrics.bootstrap import MAX_ROWS
from overspec.metrics.conventions import ScoreSet, convention_for
from overspec.metrics.conventions.scoring import (
    MAX_INTERVAL_TYPES,
    N_RESAMPLES,
    Intervals,
    Scored,
    prepare,
    score_intervals,
    score_set,
)

__all__ = ["read_score_file", "score_report", "write_score_file"]

VERIFICATION_LABELS = {"1": True, "0": False, "genuine": True, "impostor": False, "true": True, "false": False}
NEGATIVE_NAMES = {"verification": "impostor", "mad": "attack", "pad": "attack"}
OPTIONAL = ("attack_type", "video", "subject", "pair")
COLUMN_NAMES = ("score", "label", *OPTIONAL)
SEPARATORS = {",": ",", "comma": ",", "tab": "\t", "\\t": "\t", "\t": "\t", "space": " ", " ": " ", ";": ";"}
MAX_LINE = 1 << 16  # bytes; a score row is a number, a label and a few ids (csv's own field limit is 128 kB)


def read_score_file(
    path: str | Path, kind: str, *, sep: str = ",", columns: list[str] | None = None, max_line: int = MAX_LINE
) -> ScoreSet:
    """The file's rows as a ``ScoreSet`` (file units); every problem names the file, line and column."""
    path = Path(path)
    delimiter = _separator(sep)
    if not path.is_file():
        raise DataError(f"score file {path} does not exist")
    _check_bytes(path, max_line)
    if delimiter != "," or columns is not None:
        data = _read_delimited(path, kind, delimiter, columns)
    else:
        with csv_rows(path, what="score file", required=("score", "label")) as (names, _):
            pass  # the header's checks: exists, UTF-8, no column twice, score and label present
        data = _read_fast(path, kind, names)
        if data is None:
            data = _read_rows(path, kind)
    p = data.positive
    if len(p) == 0:
        raise DataError(f"{path}: no score rows")
    if p.all() or not p.any():
        absent = NEGATIVE_NAMES[kind] if p.all() else ("genuine" if kind == "verification" else "bonafide")
        raise DataError(f"{path}: no {absent} rows; both classes are needed")
    return data


def _separator(sep: str) -> str:
    if sep not in SEPARATORS:
        raise DataError(f"--sep {sep!r}: use comma, tab or space (space: any run of blanks)")
    return SEPARATORS[sep]


def _check_bytes(path: Path, max_line: int) -> None:
    """NUL bytes or a line longer than ``max_line`` bytes: a one-line error (csv would fail deep inside, or read
    a 1 GB line whole). Reads 16 MiB at a time."""
    offset, line, carry = 0, 1, 0  # carry: bytes of the current line before this chunk
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            buf = np.frombuffer(chunk, dtype=np.uint8)
            nul = np.flatnonzero(buf == 0)
            newlines = np.flatnonzero(buf == ord("\n"))
            if len(nul):
                at = int(np.searchsorted(newlines, nul[0])) + line
                raise DataError(
                    f"{path}, line {at}: a NUL byte (offset {offset + nul[0]}); a score file is text: score,label rows"
                )
            ends = np.r_[newlines, len(buf)]
            lengths = np.diff(np.r_[-1, ends]) - 1
            lengths[0] += carry
            too_long = np.flatnonzero(lengths > max_line)
            if len(too_long):
                raise DataError(
                    f"{path}, line {line + int(too_long[0])}: longer than {max_line} bytes; a score file holds "
                    "short score,label rows (is it the right file?)"
                )
            carry = int(lengths[-1])
            line += len(newlines)
            offset += len(buf)


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
    return _from_frame(frame, kind)


def _from_frame(frame, kind: str) -> ScoreSet | None:
    scores = frame["score"].to_numpy()
    if not np.isfinite(scores).all():
        return None
    labels = frame["label"].astype("category").cat
    try:
        known = np.array([_positive(str(v), kind, where="") for v in labels.categories], dtype=bool)
    except DataError:
        return None
    positive = known[labels.codes] if len(known) else np.zeros(0, dtype=bool)
    codes, names = None, ()
    if kind != "verification" and "attack_type" in frame:
        named = frame["attack_type"].astype("category").cat
        cleaned = [str(v).strip() or "attack" for v in named.categories]  # empty means "attack", as rows do
        names = tuple(sorted({cleaned[c] for c in np.unique(named.codes[~positive])}))
        lookup = np.array([names.index(c) if c in names else -1 for c in cleaned], dtype=np.int64)
        codes = np.where(positive, -1, lookup[named.codes])
    ids = {c: frame[c].astype(str).to_numpy(dtype=object) for c in ("video", "subject", "pair") if c in frame}
    return ScoreSet(
        kind, scores, positive, codes, names, ids.get("video"), subjects=ids.get("subject"), pairs=ids.get("pair")
    )


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
    try:
        with csv_rows(path, what="score file", required=("score", "label")) as (columns, rows):
            return _collect(path, kind, columns, rows)
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV score file ({exc})") from None


def _read_delimited(path: Path, kind: str, delimiter: str, columns: list[str] | None) -> ScoreSet:
    """A tab-, space- or otherwise separated file: the header names the columns unless ``columns`` does."""
    names = _column_names(path, columns)
    fast = _read_delimited_fast(path, kind, delimiter, names or None)
    if fast is not None:
        return fast
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            lines = enumerate(f, start=1)
            if columns is None:
                header = next(lines, (1, ""))[1]
                names = _column_names(path, _split(header, delimiter), header=True)
            rows = _delimited_rows(path, lines, names, delimiter)
            return _collect(path, kind, [n for n in names if n != "_"], rows)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _read_delimited_fast(path: Path, kind: str, delimiter: str, names: list[str] | None) -> ScoreSet | None:
    """pandas' C reader for a separated file (an IJB dump has millions of rows); None on anything unusual, so
    that the row reader names the line."""
    try:
        import pandas as pd
    except ImportError:
        return None
    try:
        frame = pd.read_csv(
            path,
            sep=r"\s+" if delimiter == " " else delimiter,
            header=None if names else 0,
            dtype=str,
            na_filter=False,
            index_col=False,
            encoding="utf-8-sig",
            engine="c",
        )
        if names is None:
            frame.columns = _column_names(path, [str(c) for c in frame.columns], header=True)
            frame = frame.loc[:, [c for c in frame.columns if c != "_"]]
        else:
            if frame.shape[1] != len(names):
                return None  # rows of another width: the row reader names the first
            keep = [i for i, n in enumerate(names) if n != "_"]
            frame = frame.iloc[:, keep].set_axis([names[i] for i in keep], axis=1)
        frame["score"] = frame["score"].astype("float64")
    except (ValueError, UnicodeDecodeError, DataError, pd.errors.ParserError, KeyError):
        return None
    return _from_frame(frame, kind)


def _split(line: str, delimiter: str) -> list[str]:
    line = line.rstrip("\r\n")
    return line.split() if delimiter == " " else line.split(delimiter)


def _column_names(path: Path, columns: list[str] | None, *, header: bool = False) -> list[str]:
    if columns is None:
        return []
    names = [c.strip() for c in columns]
    where = f"{path}: the header" if header else "--columns"
    unknown = [c for c in names if c not in (*COLUMN_NAMES, "_")]
    if unknown and not header:
        raise DataError(f"{where} names {unknown[0]!r}; use {', '.join(COLUMN_NAMES)} or _ to skip a column")
    repeated = sorted({c for c in names if c != "_" and names.count(c) > 1})
    if repeated:
        raise DataError(f"{where} names {', '.join(repeated)} more than once")
    missing = [c for c in ("score", "label") if c not in names]
    if missing:
        raise DataError(f"{where} has no {' or '.join(missing)} column; name the columns, e.g. --columns score,label")
    return [c if c in COLUMN_NAMES else "_" for c in names]


def _delimited_rows(path: Path, lines, names: list[str], delimiter: str):
    for line, text in lines:
        if not text.strip():
            continue
        values = _split(text, delimiter)
        if len(values) != len(names):
            raise DataError(f"{path}, line {line}: {len(values)} values, {len(names)} columns ({','.join(names)})")
        yield line, {n: v for n, v in zip(names, values, strict=True) if n != "_"}


def _collect(path: Path, kind: str, columns: list[str], rows) -> ScoreSet:
    scores, positive, types = [], [], []
    ids: dict[str, list[str]] = {c: [] for c in ("video", "subject", "pair") if c in columns}
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
        for column, found in ids.items():
            found.append(row.get(column) or "")
    has_types = kind != "verification" and "attack_type" in columns
    return ScoreSet.of(
        kind,
        scores,
        positive,
        types if has_types else None,
        ids.get("video"),
        subjects=ids.get("subject"),
        pairs=ids.get("pair"),
    )


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
    n_bootstrap: int = N_RESAMPLES,
    seed: int = 0,
    convention: str = "iso",
    max_rows: int = MAX_ROWS,
    max_types: int = MAX_INTERVAL_TYPES,
    sep: str = ",",
    columns: list[str] | None = None,
    progress: bool = False,
) -> dict:
    """Every key of ``kind`` on the file under ``convention`` (``overspec.metrics.conventions.scoring``, the path
    ``overspec run`` takes), as fractions under ``metrics``, ``null`` with the reason under ``unresolved`` where
    the data cannot resolve an operating point, and bootstrap 95 % intervals under ``ci`` (``ci_method`` says
    how; above ``max_rows`` rows from a subsample, rescaled; above ``max_types`` attack types pooled keys only,
    ``ci_skipped`` says so)."""
    if threshold is not None and not math.isfinite(threshold):
        raise DataError(f"--threshold {threshold}: give a finite score threshold (or none for the EER threshold)")
    if n_bootstrap < 0:
        raise DataError(f"--bootstrap {n_bootstrap}: give 0 (no intervals) or a positive number of resamples")
    convention_for(convention, kind)  # an unknown convention fails before the file is read
    raw = read_score_file(path, kind, sep=sep, columns=columns)
    sign = 1.0 if higher_means_positive else -1.0
    internal = None if threshold is None else sign * threshold
    data = prepare(replace(raw, scores=sign * raw.scores, sign=sign, threshold=internal), convention)
    scored = score_set(data, convention, prepared=True)
    if len(data) != len(raw):
        scored = replace(scored, counts=scored.counts | {"n_rows": len(raw)})
    return report_json(
        scored,
        score_intervals(
            data, scored, n_resamples=n_bootstrap, seed=seed, max_rows=max_rows, max_types=max_types, progress=progress
        ),
        higher_means_positive=higher_means_positive,
    )


def report_json(scored: Scored, found: Intervals | None, *, higher_means_positive: bool = True) -> dict:
    """The JSON of ``overspec score``: flat registry keys, as in results.csv."""
    kind_positive = "genuine" if "n_genuine" in scored.counts else "bonafide"
    kind_negative = "impostor" if kind_positive == "genuine" else "attack"
    result: dict = {"convention": scored.convention, "metrics": scored.values}
    if scored.unresolved:
        result["unresolved"] = scored.unresolved
    if found is not None and found.resamples:
        result["ci"] = {k: list(v) for k, v in found.intervals.items()}
        result["ci_level"] = 0.95
        result["ci_method"] = found.method
        if found.skipped:
            result["ci_skipped"] = found.skipped
    result |= scored.decisions | scored.counts
    if scored.attack_types:
        result["attack_types"] = list(scored.attack_types)
    result["higher_means"] = kind_positive if higher_means_positive else kind_negative
    return result


def write_score_file(data: ScoreSet, path: str | Path) -> Path:
    """``data`` as a score file ``read_score_file`` reads back exactly (scores in the file's units, each written
    as the shortest decimal that reads back as the same float64), atomically."""
    from overspec._atomic import atomic_open

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    genuine, other = ("genuine", "impostor") if data.kind == "verification" else ("bonafide", "attack")
    scores = data.sign * data.scores
    columns = {"score": None, "label": np.where(data.positive, genuine, other).astype(object)}
    if data.attack_types is not None:
        columns["attack_type"] = data.attack_types
    for name, ids in (("video", data.videos), ("subject", data.subjects), ("pair", data.pairs)):
        if ids is not None:  # csv quotes what needs quoting; both readers unquote it
            columns[name] = ids
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for start in range(0, len(scores), 100_000):  # bounded memory for millions of IJB pairs
            part = slice(start, start + 100_000)
            text = [repr(float(v)) for v in scores[part]]  # shortest decimal that reads back as the same float
            writer.writerows(zip(text, *(c[part] for c in list(columns.values())[1:]), strict=True))
    return path

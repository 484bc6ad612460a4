"""Reading the CSV files users hand in (results tables, score files, MAD/PAD protocols) with one set of
checks: the file exists and the header has the needed columns; rows stream with their line numbers."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from overspec.errors import DataError


@contextmanager
def csv_rows(
    path: Path, *, what: str, required: tuple[str | tuple[str, ...], ...], expected: str | None = None
) -> Iterator[tuple[list[str], Iterator[tuple[int, dict]]]]:
    """``(columns, (line, row) pairs from line 2)``. A tuple in ``required`` means any one of those names;
    a missing one is reported by its first name. The error ends with ``expected`` when given, else the header."""
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        options = [names if isinstance(names, tuple) else (names,) for names in required]
        missing = [names[0] for names in options if not any(n in columns for n in names)]
        if missing:
            tail = f"expected {expected}" if expected else f"the header has {columns}"
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; {tail}")
        yield columns, enumerate(reader, start=2)

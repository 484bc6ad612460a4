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
    a missing one is reported by its first name. UTF-8 with or without a byte-order mark; a column named twice,
    or bytes that are not UTF-8, are one-line errors. Errors never echo the file's content (it may not be a CSV
    at all), only its column names when the header is readable as one."""
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            duplicated = sorted({c for c in columns if columns.count(c) > 1})
            if duplicated:
                raise DataError(f"{path}: column(s) {', '.join(duplicated)} appear more than once in the header")
            options = [names if isinstance(names, tuple) else (names,) for names in required]
            missing = [names[0] for names in options if not any(n in columns for n in names)]
            if missing:
                wanted = expected or ", ".join(names[0] for names in options)
                raise DataError(
                    f"{path}: not a {what} with the needed columns (missing {', '.join(missing)}); "
                    f"expected a header with {wanted}"
                )
            yield columns, _numbered(reader, path)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None


def _numbered(reader: csv.DictReader, path: Path) -> Iterator[tuple[int, dict]]:
    for line, row in enumerate(reader, start=2):
        if any(str(v).strip() for v in row.get(None) or []):
            raise DataError(f"{path}, line {line}: more values than columns in the header")
        yield line, row

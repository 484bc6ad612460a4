"""Every number is a row. The store is SQLite (``results.sqlite`` in the run directory); ``results.csv`` is
its export. Values are fractions (accuracy 0.8822, not 88.22), never rounded in storage.

Columns: run_id, model, arch, dataset, task (general | fr | mad | pad), protocol, metric, value,
ci_low, ci_high (95 % interval or empty), n (test samples or pairs), higher_is_better, config_hash,
model_fingerprint, dataset_fingerprint, overspec_version, created_at, cell (the evaluation cell's key).
A cell's rows are written in one transaction with its completion mark, so a crash never leaves half a cell.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from overspec import __version__


@dataclass
class ResultRow:
    run_id: str
    model: str
    arch: str
    dataset: str
    task: str
    protocol: str
    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    higher_is_better: bool = True
    config_hash: str = ""
    model_fingerprint: str = ""
    dataset_fingerprint: str = ""
    overspec_version: str = __version__
    created_at: str = ""
    cell: str = ""


COLUMNS = [f.name for f in fields(ResultRow)]
_TYPES = {"value": "REAL", "ci_low": "REAL", "ci_high": "REAL", "n": "INTEGER", "higher_is_better": "INTEGER"}


class ResultStore:
    """SQLite store of result rows and finished cells; safe to reopen, merge and export."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        columns = ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS)
        self.db.execute(f"CREATE TABLE IF NOT EXISTS results ({columns})")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS cells (cell TEXT PRIMARY KEY, model TEXT, dataset TEXT, "
            "protocol TEXT, details TEXT, finished_at TEXT)"
        )
        self.db.commit()

    def finished(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT cell FROM cells")}

    def add_cell(
        self, cell: str, rows: list[ResultRow], *, model: str, dataset: str, protocol: str, details: dict
    ) -> None:
        """Store a finished cell's rows and its completion mark atomically (replacing an earlier copy)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.db:
            self.db.execute("DELETE FROM results WHERE cell = ?", (cell,))
            self.db.executemany(
                f"INSERT INTO results VALUES ({', '.join('?' * len(COLUMNS))})",
                [tuple({**asdict(r), "created_at": r.created_at or now, "cell": cell}.values()) for r in rows],
            )
            self.db.execute(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?)",
                (cell, model, dataset, protocol, json.dumps(details, default=str), now),
            )

    def rows(self) -> list[ResultRow]:
        cursor = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM results ORDER BY model, dataset, protocol, metric")
        return [ResultRow(**{**dict(zip(COLUMNS, r, strict=True)), "higher_is_better": bool(r[11])}) for r in cursor]

    def details(self) -> dict[str, dict]:
        return {c: json.loads(d) for c, d in self.db.execute("SELECT cell, details FROM cells")}

    def merge(self, other: str | Path) -> int:
        """Copy every cell of another store into this one (order-free: a cell's rows replace its copy)."""
        source = ResultStore(other)
        by_cell: dict[str, list[ResultRow]] = {}
        for row in source.rows():
            by_cell.setdefault(row.cell, []).append(row)
        meta = {
            c: (m, d, p, det)
            for c, m, d, p, det in source.db.execute("SELECT cell, model, dataset, protocol, details FROM cells")
        }
        for cell, (model, dataset, protocol, details) in meta.items():
            self.add_cell(
                cell,
                by_cell.get(cell, []),
                model=model,
                dataset=dataset,
                protocol=protocol,
                details=json.loads(details),
            )
        return len(meta)

    def export_csv(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for row in self.rows():
                writer.writerow(["" if v is None else v for v in asdict(row).values()])
        tmp.replace(path)
        return path

    def close(self) -> None:
        self.db.close()

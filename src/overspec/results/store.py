"""Every number is a row. The store is SQLite (``results.sqlite`` in the run directory); ``results.csv`` is
its export. Values are fractions (accuracy 0.8822, not 88.22), never rounded in storage.

Columns: run_id, model, arch, dataset, task (the dataset's: general | fr | mad | pad), protocol, metric, value,
ci_low, ci_high (95 % interval or empty), n (test samples or pairs), higher_is_better, config_hash,
model_fingerprint, dataset_fingerprint, overspec_version, created_at, cell (the evaluation cell's key), and the
identity the planner resolved: model_task (what the model was tuned for), base and base_fingerprint (the model it
was fine-tuned from), headline_metric (the metric the ``headline`` row repeats), reference (its published name),
convention (the rules the value follows: ``iso``, ``insightface``, ``madation``, ``foundpad`` for biometric
protocols, the probe recipe for the linear probe, ``clip`` for zero-shot), device and precision (the compute it
ran on, ``overspec/compute.py``: ``cpu``/``fp32``, ``cuda``/``fp16-autocast``; empty for rows stored before
schema 4). A cell's rows are written in one
transaction with its completion mark, so a crash never leaves half a cell. Each ``overspec run`` records its plan:
exports and reports show the planned cells; rows of cells that are no longer planned (a replaced checkpoint, changed
options) stay in the store and are listed by ``superseded``.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from overspec import __version__
from overspec._atomic import atomic_open
from overspec.errors import DataError

SCHEMA_VERSION = 4


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
    model_task: str = "general"
    base: str | None = None
    base_fingerprint: str | None = None
    headline_metric: str | None = None
    reference: str | None = None
    convention: str | None = None  # the rules the value follows: a metric convention, a probe recipe
    device: str | None = None  # device type of the forward pass (overspec/compute.py)
    precision: str | None = None  # its arithmetic: fp32 or fp16-autocast


COLUMNS = [f.name for f in fields(ResultRow)]
_TYPES = {"value": "REAL", "ci_low": "REAL", "ci_high": "REAL", "n": "INTEGER", "higher_is_better": "INTEGER"}
_ADDED_IN_2 = ("model_task", "base", "base_fingerprint", "headline_metric", "reference")
# what every value computed before conventions were named follows: overspec's own rules
_CONVENTION_BEFORE_3 = {"zeroshot": "clip", "linear_probe": "lbfgs"}


class ResultStore:
    """SQLite store of result rows and finished cells; safe to reopen, merge and export.

    ``create=False`` opens an existing store only (a mistyped path is an error, not a new empty store).
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise DataError(f"{self.path}: no results store there; check the path (a run folder holds results.sqlite)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(str(self.path), timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self._create_or_migrate()
        except sqlite3.DatabaseError as exc:
            raise DataError(
                f"{self.path}: not a readable results store ({exc}); restore it or rerun into a new --out"
            ) from None
        self.db.row_factory = sqlite3.Row

    def _create_or_migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version > SCHEMA_VERSION:
            raise DataError(
                f"{self.path}: written by a newer overspec (store schema {version}, this one reads up to "
                f"{SCHEMA_VERSION}); upgrade overspec"
            )
        with self.db:
            if "results" in tables and version < 2:
                self._migrate_1_to_2()
            if "results" in tables and version < 3:
                self._migrate_2_to_3()
            if "results" in tables and version < 4:
                self._migrate_3_to_4()
            columns = ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS)
            self.db.execute(f"CREATE TABLE IF NOT EXISTS results ({columns})")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS cells (cell TEXT PRIMARY KEY, model TEXT, dataset TEXT, "
                "protocol TEXT, details TEXT, finished_at TEXT)"
            )
            self.db.execute("CREATE TABLE IF NOT EXISTS plan (cell TEXT PRIMARY KEY)")
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate_1_to_2(self) -> None:
        """Stores of overspec 0.1 (schema 1) kept a model's task, base and headline metric in each cell's details
        JSON; move them into the rows' own columns. A base that is not a model of the store is dropped."""
        for column in _ADDED_IN_2:
            self.db.execute(f"ALTER TABLE results ADD COLUMN {column} TEXT")
        models = {r[0] for r in self.db.execute("SELECT DISTINCT model FROM results")}
        for cell, text in self.db.execute("SELECT cell, details FROM cells").fetchall():
            details = json.loads(text or "{}")
            base = details.get("base") if details.get("base") in models else None
            self.db.execute(
                "UPDATE results SET model_task = ?, base = ?, headline_metric = ?, reference = ? WHERE cell = ?",
                (
                    details.get("model_task", "general"),
                    base,
                    details.get("headline_metric"),
                    details.get("reference"),
                    cell,
                ),
            )

    def _migrate_2_to_3(self) -> None:
        """Name the convention of every stored value: before schema 3 there was one per protocol."""
        self.db.execute("ALTER TABLE results ADD COLUMN convention TEXT")
        self.db.execute(
            "UPDATE results SET convention = CASE protocol "
            + " ".join(f"WHEN '{p}' THEN '{c}'" for p, c in _CONVENTION_BEFORE_3.items())
            + " ELSE 'iso' END"
        )

    def _migrate_3_to_4(self) -> None:
        """Record the compute of every value; what earlier stores ran on is unknown (empty)."""
        for column in ("device", "precision"):
            self.db.execute(f"ALTER TABLE results ADD COLUMN {column} TEXT")

    def finished(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT cell FROM cells")}

    def record_plan(self, cells: list[str]) -> None:
        """The cells of the run's current plan (shards record the whole plan, so merged stores agree)."""
        with self.db:
            self.db.execute("DELETE FROM plan")
            self.db.executemany("INSERT OR IGNORE INTO plan VALUES (?)", [(c,) for c in cells])

    def planned(self) -> set[str] | None:
        """The current plan's cells; None for a store that recorded none (then every cell counts)."""
        cells = {row[0] for row in self.db.execute("SELECT cell FROM plan")}
        return cells or None

    def add_cell(
        self, cell: str, rows: list[ResultRow], *, model: str, dataset: str, protocol: str, details: dict
    ) -> None:
        """Store a finished cell's rows and its completion mark atomically (replacing an earlier copy)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.db:
            self.db.execute("DELETE FROM results WHERE cell = ?", (cell,))
            self.db.executemany(
                f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                [tuple({**asdict(r), "created_at": r.created_at or now, "cell": cell}.values()) for r in rows],
            )
            self.db.execute(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?)",
                (cell, model, dataset, protocol, json.dumps(details, default=str), now),
            )

    def rows(self, *, current: bool = False) -> list[ResultRow]:
        """Every row, or with ``current`` only those of the planned cells."""
        cursor = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM results ORDER BY model, dataset, protocol, metric")
        planned = self.planned() if current else None
        return [
            ResultRow(**{**dict(r), "higher_is_better": bool(r["higher_is_better"])})
            for r in cursor
            if planned is None or r["cell"] in planned
        ]

    def superseded(self) -> list[ResultRow]:
        """Rows of cells the current plan no longer holds (kept for the record)."""
        planned = self.planned()
        return [] if planned is None else [r for r in self.rows() if r.cell not in planned]

    def details(self) -> dict[str, dict]:
        return {c: json.loads(d) for c, d in self.db.execute("SELECT cell, details FROM cells")}

    def merge(self, other: str | Path) -> int:
        """Copy every cell of another store into this one (order-free: a cell's rows replace its copy)."""
        source = ResultStore(other, create=False)
        try:
            by_cell: dict[str, list[ResultRow]] = {}
            for row in source.rows():
                by_cell.setdefault(row.cell, []).append(row)
            meta = source.db.execute("SELECT cell, model, dataset, protocol, details FROM cells").fetchall()
            planned = source.planned()
        finally:
            source.close()
        for cell, model, dataset, protocol, details in meta:
            rows, details = by_cell.get(cell, []), json.loads(details)
            self.add_cell(cell, rows, model=model, dataset=dataset, protocol=protocol, details=details)
        if planned:
            with self.db:
                self.db.executemany("INSERT OR IGNORE INTO plan VALUES (?)", [(c,) for c in planned])
        return len(meta)

    def export_csv(self, path: str | Path, *, rows: list[ResultRow] | None = None) -> Path:
        """Write ``rows`` (default: the current plan's) as CSV, atomically."""
        path = Path(path)
        with atomic_open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for row in self.rows(current=True) if rows is None else rows:
                writer.writerow(["" if v is None else v for v in asdict(row).values()])
        return path

    def close(self) -> None:
        self.db.close()

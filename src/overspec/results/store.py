"""Every number is a row. The store is SQLite (``results.sqlite`` in the run directory); ``results.csv`` is
its export. Values are fractions (accuracy 0.8822, not 88.22), never rounded in storage.

Columns: run_id, model, arch, dataset, task (the dataset's: general | fr | mad | pad), protocol, metric, value,
ci_low, ci_high (95 % interval or empty), n (test samples or pairs), higher_is_better, config_hash,
model_fingerprint, dataset_fingerprint, overspec_version, created_at, cell (the evaluation cell's key), and the
identity the planner resolved: model_task (what the model was tuned for), base and base_fingerprint (the model it
was fine-tuned from), headline_metric (the metric the ``headline`` row repeats), reference (its published name),
convention (the rules the value follows: ``iso``, ``insightface``, ``madation``, ``foundpad`` for biometric
protocols, with options after a colon such as ``madation:float32``; the probe recipe for the linear probe,
``clip`` for zero-shot), ci_method (how the interval was obtained: a bootstrap over pairs, samples, videos or
subjects, or Wilson's interval). A metric whose operating point the data cannot resolve has no row; the cell's
details say why (``unresolved``). device and precision: the compute it ran on (``overspec/compute.py``:
``cpu``/``fp32``, ``cuda``/``fp16-autocast``; empty for rows stored before schema 4). A cell's rows are written in one
transaction with its completion mark, so a crash never leaves half a cell. Each ``overspec run`` records its plan:
exports and reports show the planned cells; rows of cells that are no longer planned (a replaced checkpoint, changed
options) stay in the store and are listed by ``superseded``.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from overspec import __version__
from overspec._atomic import atomic_open
from overspec.errors import DataError, StorageError

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
    ci_method: str | None = None  # how ci_low/ci_high were obtained (bootstrap over what, Wilson, ...)
    device: str | None = None  # device type of the forward pass (overspec/compute.py)
    precision: str | None = None  # its arithmetic: fp32 or fp16-autocast


COLUMNS = [f.name for f in fields(ResultRow)]
_TYPES = {"value": "REAL", "ci_low": "REAL", "ci_high": "REAL", "n": "INTEGER", "higher_is_better": "INTEGER"}
_ADDED_IN_2 = ("model_task", "base", "base_fingerprint", "headline_metric", "reference")
# columns added after schema 3, each in the schema that added it: a migration adds those a store lacks (NULL in its
# old rows, which had no such figure)
_ADDED_LATER = {"ci_method": 4, "device": 4, "precision": 4}  # column: the schema that added it
# what every value computed before conventions were named follows: overspec's own rules
_CONVENTION_BEFORE_3 = {"zeroshot": "clip", "linear_probe": "lbfgs"}
_TABLES = {"results", "cells", "plan"}
_IN_SCHEMA_1 = COLUMNS[: COLUMNS.index("cell") + 1]  # what every store has had; migrations add the rest
_NUMBERS = ("value", "ci_low", "ci_high")  # value must be a number; the interval's ends a number or empty


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
            self._check_own(required=_IN_SCHEMA_1)  # before anything is written into another program's file
            with self._writing("opening"):
                self.db.execute("PRAGMA journal_mode=WAL")
                self._create_or_migrate()
            self._check_own(required=COLUMNS)
        except sqlite3.DatabaseError as exc:
            raise DataError(
                f"{self.path}: not a readable results store ({exc}); restore it or rerun into a new --out"
            ) from None
        self.db.row_factory = sqlite3.Row

    @contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        """A write SQLite refuses (disk full, read-only, locked past the timeout) is one line; the transaction
        it was in rolls back, so every cell stored before it stays."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "full" in text:
                fix = "free space on its disk (or give the run an --out on a larger one) and rerun"
            elif "readonly" in text or "read-only" in text:
                fix = "make it writable, or rerun with --out on a writable folder"
            elif "locked" in text or "busy" in text:
                fix = "another process holds it; wait for it to finish, or rerun with another --out"
            else:
                raise
            raise StorageError(
                f"cannot write {self.path} ({doing}: {text}); {fix}: cells already stored are kept"
            ) from None

    def _check_own(self, *, required: list[str] | tuple[str, ...]) -> None:
        """A database another program wrote (other tables, or a results table without ``required`` columns) is
        refused before anything is written into it or read from it as results."""
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        foreign = sorted(t for t in tables - _TABLES if not t.startswith("sqlite_"))
        if foreign:
            raise DataError(
                f"{self.path}: not an overspec results store (it holds table(s) {', '.join(foreign)}); "
                "point at a run folder's results.sqlite, or give the run another --out"
            )
        if "results" in tables:
            have = {r[1] for r in self.db.execute("PRAGMA table_info(results)")}
            missing = [c for c in required if c not in have]
            if missing:
                listed = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
                raise DataError(
                    f"{self.path}: its results table lacks column(s) {listed}, so it was not written by "
                    "overspec; point at a run folder's results.sqlite, or give the run another --out"
                )

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
            if "results" in tables:
                self._add_columns(_ADDED_LATER)
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

    def _add_columns(self, columns: dict[str, int]) -> None:
        present = {r[1] for r in self.db.execute("PRAGMA table_info(results)")}
        for column in columns:
            if column not in present:
                self.db.execute(f"ALTER TABLE results ADD COLUMN {column} {_TYPES.get(column, 'TEXT')}")

    def finished(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT cell FROM cells")}

    def record_plan(self, cells: list[str]) -> None:
        """The cells of the run's current plan (shards record the whole plan, so merged stores agree)."""
        with self._writing("recording the plan"), self.db:
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
        for row in rows:  # SQLite would store a NaN value as NULL, which no reader can use
            for end in ("ci_low", "ci_high"):  # an undefined interval (no samples) is no interval
                if isinstance(getattr(row, end), float) and math.isnan(getattr(row, end)):
                    setattr(row, end, None)
            if not all(_number(getattr(row, c), empty=c != "value") for c in _NUMBERS):
                raise DataError(
                    f"{self.path}: {model} on {dataset} ({protocol}): metric {row.metric} is {row.value} "
                    f"[{row.ci_low}, {row.ci_high}], not a finite number; the cell is not stored (cells already "
                    "stored are kept): check the model's weights and the data for NaN"
                )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._writing(f"storing {model} on {dataset} ({protocol})"), self.db:
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
        cursor = self.db.execute(
            f"SELECT rowid, {', '.join(COLUMNS)} FROM results ORDER BY model, dataset, protocol, metric"
        )
        planned = self.planned() if current else None
        rows = []
        for r in cursor:
            if planned is not None and r["cell"] not in planned:
                continue
            for column in _NUMBERS:
                if not _number(r[column], empty=column != "value"):
                    raise DataError(
                        f"{self.path}: results row {r['rowid']} ({r['model']}, {r['dataset']}, {r['protocol']}, "
                        f"{r['metric']}) has {column} {r[column]!r}, not a number: the store was edited or damaged; "
                        f"delete the row (DELETE FROM results WHERE rowid = {r['rowid']}) and rerun to compute it again"
                    )
            rows.append(ResultRow(**{**{c: r[c] for c in COLUMNS}, "higher_is_better": bool(r["higher_is_better"])}))
        return rows

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
            with self._writing("merging plans"), self.db:
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


def _number(value: object, *, empty: bool) -> bool:
    """A finite int or float (SQLite hands back text or NULL where a value was edited or lost); None if ``empty``."""
    if value is None:
        return empty
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

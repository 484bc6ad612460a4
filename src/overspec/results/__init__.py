"""The results store (SQLite in the run directory) and its exports."""

from overspec.results.store import COLUMNS, ResultRow, ResultStore

__all__ = ["COLUMNS", "ResultRow", "ResultStore"]

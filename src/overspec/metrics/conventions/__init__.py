"""Named metric conventions: overspec's own ``iso`` rules and exact reproductions of the study's codebases.

Each convention is one module; ``docs/conventions.md`` says what each does differently and by how much.
"""

from __future__ import annotations

from overspec.errors import DataError
from overspec.metrics.conventions.base import KINDS, Convention, ScoreSet
from overspec.registry import Registry

CONVENTIONS: Registry[Convention] = Registry("metric convention")
CONVENTIONS.register("iso", "overspec.metrics.conventions.iso:ISO")
CONVENTIONS.register("insightface", "overspec.metrics.conventions.insightface:INSIGHTFACE")
CONVENTIONS.register("madation", "overspec.metrics.conventions.madation:MADATION")
CONVENTIONS.register("foundpad", "overspec.metrics.conventions.foundpad:FOUNDPAD")


def conventions_for(kind: str) -> list[str]:
    """Names of the conventions that score ``kind`` (verification, mad or pad)."""
    return [name for name in CONVENTIONS.names() if kind in CONVENTIONS.get(name).kinds]


def convention_for(name: str, kind: str) -> Convention:
    """The convention ``name``, checked to serve ``kind``; otherwise a one-line error naming those that do."""
    convention = CONVENTIONS.get(name)
    if kind not in convention.kinds:
        raise DataError(
            f"convention {name!r} does not score {kind} files; conventions for {kind}: "
            f"{', '.join(conventions_for(kind))}"
        )
    return convention


def convention_metrics(name: str, kind: str, scores, positive) -> dict[str, float]:
    """Metrics of ``name`` on one score set (higher = genuine / bona fide) that a protocol has computed."""
    return convention_for(name, kind).metrics(ScoreSet.of(kind, scores, positive))


__all__ = ["CONVENTIONS", "KINDS", "Convention", "ScoreSet", "convention_for", "convention_metrics", "conventions_for"]

"""Named metric conventions: overspec's own ``iso`` rules and exact reproductions of the study's codebases.

Each convention is one module; ``docs/conventions.md`` says what each does differently and by how much. A
convention is named with its options after a colon (``madation:float32``); ``overspec.metrics.conventions.scoring``
turns a score set into every key of a convention.
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


def parse_convention(spec: str) -> tuple[Convention, dict[str, bool]]:
    """``"madation:float32"`` -> (the madation convention, ``{"float32": True}``); an option the convention does
    not take is a one-line error naming those it does."""
    name, *options = str(spec).split(":")
    convention = CONVENTIONS.get(name.strip())
    for option in options:
        if option not in convention.options:
            takes = ", ".join(convention.options) or "none"
            raise DataError(f"convention {spec!r}: {name} takes no option {option!r}; its options: {takes}")
    return convention, dict.fromkeys(options, True)


def convention_for(spec: str, kind: str) -> Convention:
    """The convention ``spec`` names, checked to serve ``kind``; otherwise a one-line error naming those that do."""
    convention, _ = parse_convention(spec)
    if kind not in convention.kinds:
        raise DataError(
            f"convention {convention.name!r} does not score {kind} files; conventions for {kind}: "
            f"{', '.join(conventions_for(kind))}"
        )
    return convention


__all__ = [
    "CONVENTIONS",
    "KINDS",
    "Convention",
    "ScoreSet",
    "convention_for",
    "conventions_for",
    "parse_convention",
]

"""Published numbers a report reads a run against: a study bundled by name, a CSV file, or none.

A study's GELOs are keyed by what the plan records for every model (its task and architecture) so that a run's
model is read against the study's model of the same family and architecture, never by a guess from its name.

Files (``src/overspec/reference/``): ``<name>_summary.csv`` (``model, arch, protocol, gelo``: one GELO per published
model) and ``<name>_general.csv`` (``model, arch, protocol, dataset, value_percent``: the per-dataset numbers shown
beside the models whose spec names them with ``reference:``). A CSV given by path is one or the other, told apart
by its columns: ``gelo`` (a summary; a ``task`` column says what each model was tuned for) or ``dataset``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from overspec._csv import csv_rows
from overspec.errors import ConfigError, DataError
from overspec.registry import Registry

DEFAULT = "chettaoui2025"
NONE = "none"


@dataclass(frozen=True)
class Study:
    """A bundled study: how its tables name the specialist of each task (the base models have no GELO)."""

    title: str
    specialists: dict[str, str]  # published model name -> task (fr, mad, pad)


STUDIES: Registry[Study] = Registry("published study")
STUDIES.register(
    "chettaoui2025",
    Study(
        "Chettaoui, Damer, Boutros, IJCB 2025",
        {"FRoundation": "fr", "MADation": "mad", "FoundPAD": "pad"},
    ),
)


@dataclass(frozen=True)
class PublishedGelo:
    model: str  # as the study names it, e.g. MADation
    arch: str  # as the study writes it, e.g. ViT-L/14
    protocol: str
    gelo: float

    @property
    def label(self) -> str:
        return f"{self.model} {self.arch}".strip()


@dataclass(frozen=True)
class Published:
    """What a report compares with: ``gelos`` keyed by (task, architecture key, protocol), and the per-dataset
    table (``general``) or None."""

    name: str
    gelos: dict[tuple[str, str, str], PublishedGelo] = field(default_factory=dict)
    general: Path | None = None

    def counterpart(self, task: str | None, arch: str | None, protocol: str) -> PublishedGelo | None:
        """The study's model tuned for the same task, of the same architecture, under the same protocol."""
        if not task or not arch:
            return None
        return self.gelos.get((task, arch_key(arch), protocol))


def arch_key(arch: str) -> str:
    """One spelling of an architecture: ``ViT-L/14`` (papers), ``ViT-L-14`` (open_clip), ``vit_l_14`` and
    ``ViT-L-14-quickgelu`` (open_clip's name for OpenAI's activation, the same architecture) agree."""
    return re.sub(r"-quickgelu$", "", re.sub(r"[-/_ ]+", "-", arch.strip().lower()))


def load_published(reference: str | Path | None) -> Published | None:
    """``reference``: a bundled study's name, a CSV file, or ``none`` / None (compare with nothing)."""
    if reference is None or str(reference) == NONE:
        return None
    text = str(reference)
    if text in STUDIES:
        return _bundled(text)
    path = Path(text)
    if path.is_file():
        return _from_file(path)
    if path.suffix or "/" in text:
        raise ConfigError(f"--reference {text}: no such file; give a CSV file, a study ({_names()}) or none")
    raise ConfigError(f"--reference: {STUDIES.unknown_message(text)}; or give a CSV file, or none")


def _names() -> str:
    return ", ".join(STUDIES)


def _bundled(name: str) -> Published:
    folder = resources.files("overspec").joinpath("reference")
    summary = Path(str(folder.joinpath(f"{name}_summary.csv")))
    general = Path(str(folder.joinpath(f"{name}_general.csv")))
    return Published(name, _gelos(summary, STUDIES.get(name).specialists), general if general.is_file() else None)


def _from_file(path: Path) -> Published:
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = f.readline().strip().split(",")
    if "gelo" in header:
        known = {name: task for study in STUDIES for name, task in STUDIES.get(study).specialists.items()}
        return Published(str(path), _gelos(path, known))
    if "dataset" in header:
        return Published(str(path), general=path)
    raise DataError(
        f"{path}: not a published table: expected a header with model, arch, protocol, gelo, task (GELOs) or "
        "model, arch, protocol, dataset, value_percent (per-dataset numbers)"
    )


def _gelos(path: Path, specialists: dict[str, str]) -> dict[tuple[str, str, str], PublishedGelo]:
    """The published GELOs of ``path``; a model's task comes from the file's ``task`` column, else from the bundled
    studies' names for their specialists (``specialists``). Base rows (no GELO) have nothing to compare."""
    found = {}
    required = ("model", "arch", "protocol", "gelo")
    with csv_rows(path, what="published GELO table", required=required) as (_, rows):
        for line, row in rows:
            if not (row["gelo"] or "").strip():
                continue
            task = (row.get("task") or "").strip() or specialists.get(row["model"])
            if task not in ("fr", "mad", "pad", "general"):
                raise DataError(
                    f"{path}, line {line}: model {row['model']!r} has no task; add a task column (fr, mad or pad)"
                )
            try:
                gelo = float(row["gelo"])
            except ValueError:
                raise DataError(f"{path}, line {line}: gelo {row['gelo']!r} is not a number") from None
            key = (task, arch_key(row["arch"]), row["protocol"])
            if key in found:
                raise DataError(f"{path}, line {line}: a second {task} {row['arch']} {row['protocol']} GELO")
            found[key] = PublishedGelo(row["model"], row["arch"], row["protocol"], gelo)
    return found

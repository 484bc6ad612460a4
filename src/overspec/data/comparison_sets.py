"""Morph sets that name their contributing subjects, and attack sets with enrolment references: the images a face
comparator is shown and which comparisons the side-effect metrics make (``overspec.metrics.vulnerability``).

**Morph acceptance** (``layout: csv``, the documented format): a CSV ``path,role,subject,method`` (paths relative to
the CSV's folder), one row per image. ``role: morph`` rows name the morph's contributing subjects in ``subject``,
separated by ``;`` (``001;002``) and optionally its ``method``; ``role: probe`` rows are the bona fide probe images
of one ``subject``. Every morph is compared with every probe of each of its contributors.

``layout: frll_morphs`` / ``syn_mad22`` read the folders ``data/attack_layouts.py`` reads (FRLL-Morphs:
``morph_<method>/`` + ``raw/``; SYN-MAD 2022: a folder per method + ``BonaFide/``) and take the subjects from the file
names, as FRLL names them: a bona fide image ``<subject>_<pose>`` (``001_03.jpg``: subject 001, neutral; ``_08``
smiling), a morph ``<a>[_<pose>]<sep><b>[_<pose>]`` (``001_03-002_03.png``, ``001_002.png``); the regular expression
is the benchmark's option ``morph_pattern``. A subject's probes are its bona fide images except those a morph's name
shows it was made from (the FRLL protocol: neutral images morphed, smiling images as probes).

**Attack acceptance** (``layout: csv``): a CSV ``path,role,subject,attack_type``; ``role: enrolment`` rows are the
enrolment references of ``subject``, ``role: attack`` rows attack presentations targeting ``subject`` (of type
``attack_type``). Each attack is compared with every enrolment image of its target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overspec._csv import csv_rows
from overspec.data.attack_layouts import SYN_MAD_METHODS, images_under
from overspec.data.images import ImageFiles
from overspec.errors import DataError

MORPH_PATTERN = r"^(\d+)(?:_\d+)?[-_](?:vs[-_])?(\d+)"
SUBJECT_PATTERN = r"^(\d+)"


@dataclass
class ComparisonPlan:
    """Images to embed once each, and the comparisons to make: image ``left[i]`` against image ``right[i]``, with
    the ids each comparison carries (``overspec.metrics.side_effects.COLUMNS``)."""

    images: ImageFiles
    left: np.ndarray
    right: np.ndarray
    ids: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.left)


def _plan(root: Path, paths: list[Path], pairs: list[tuple[int, int, dict[str, str]]]) -> ComparisonPlan:
    keys = list(pairs[0][2]) if pairs else []
    return ComparisonPlan(
        ImageFiles(paths, root=root),
        np.array([a for a, _, _ in pairs], dtype=np.int64),
        np.array([b for _, b, _ in pairs], dtype=np.int64),
        {k: [ids[k] for _, _, ids in pairs] for k in keys},
    )


def _image(folder: Path, text: str, where: str) -> Path:
    path = folder / text.strip()
    if not path.is_file():
        raise DataError(f"{where}: image {path} does not exist (paths are relative to the CSV's folder)")
    return path


def read_morph_csv(path: str | Path) -> ComparisonPlan:
    """The CSV format of the module docstring."""
    path = Path(path)
    morphs, probes = [], {}
    with csv_rows(path, what="morph set", required=("path", "role", "subject")) as (_, rows):
        for line, row in rows:
            where = f"{path}, line {line}"
            role, subject = row["role"].strip().lower(), (row["subject"] or "").strip()
            if not subject:
                raise DataError(f"{where}: empty subject; a morph names its contributors as `a;b`, a probe its subject")
            if role == "morph":
                contributors = [s.strip() for s in subject.split(";") if s.strip()]
                if len(contributors) < 2:
                    raise DataError(f"{where}: a morph needs two or more contributors in subject (`001;002`)")
                image = _image(path.parent, row["path"], where)
                morphs.append((image, contributors, (row.get("method") or "").strip(), where))
            elif role == "probe":
                probes.setdefault(subject, []).append(_image(path.parent, row["path"], where))
            else:
                raise DataError(f"{where}: role {row['role']!r}; use morph or probe")
    return _morph_plan(path.parent, morphs, probes, path)


def _morph_plan(root: Path, morphs, probes: dict[str, list[Path]], source: Path, exclude=None) -> ComparisonPlan:
    if not morphs:
        raise DataError(f"{source}: no morphs")
    paths = [m[0] for m in morphs] + [p for subject in sorted(probes) for p in probes[subject]]
    index = {p: i for i, p in enumerate(paths)}
    pairs = []
    for image, contributors, method, where in morphs:
        for subject in contributors:
            chosen = [p for p in probes.get(subject, []) if not (exclude and exclude(image, p))]
            if not chosen:
                raise DataError(f"{where}: subject {subject} of morph {image.name} has no probe image")
            for probe in chosen:
                ids = {"morph": str(image.relative_to(root)), "subject": subject, "probe": str(probe.relative_to(root))}
                pairs.append((index[image], index[probe], ids | {"method": method}))
    return _plan(root, paths, pairs)


def read_morph_folders(root: str | Path, layout: str, *, morph_pattern: str = MORPH_PATTERN) -> ComparisonPlan:
    """FRLL-Morphs or SYN-MAD 2022 folders, subjects from the file names (module docstring)."""
    root = Path(root)
    if layout == "frll_morphs":
        bonafide = next((root / d for d in ("raw", "bonafide", "BonaFide") if (root / d).is_dir()), None)
        folders = {f.name.removeprefix("morph_"): f for f in sorted(root.glob("morph_*")) if f.is_dir()}
    else:
        bonafide = root / "BonaFide" if (root / "BonaFide").is_dir() else None
        folders = {m: root / m for m in SYN_MAD_METHODS if (root / m).is_dir()}
    if bonafide is None:
        raise DataError(f"{root}: no bona fide folder (raw/, bonafide/ or BonaFide/) to take probe images from")
    if not folders:
        raise DataError(f"{root}: no morph folders ({'morph_<method>/' if layout == 'frll_morphs' else 'per method'})")
    probes: dict[str, list[Path]] = {}
    for image in images_under(bonafide):
        found = re.match(SUBJECT_PATTERN, image.stem)
        if found is None:
            raise DataError(f"{image}: cannot tell the subject from the name (expected {SUBJECT_PATTERN})")
        probes.setdefault(found[1], []).append(image)
    pattern = re.compile(morph_pattern)
    morphs = []
    for method, folder in folders.items():
        for image in images_under(folder):
            found = pattern.match(image.stem)
            if found is None or len(found.groups()) < 2:
                raise DataError(
                    f"{image}: cannot tell the two contributors from the name with morph_pattern {morph_pattern!r}; "
                    "set the benchmark's option morph_pattern, or list the morphs in a CSV (layout: csv)"
                )
            morphs.append((image, list(found.groups()), method, str(image)))

    def made_from(morph: Path, probe: Path) -> bool:  # the morph's name contains the probe's: it was morphed
        return probe.stem in morph.stem and probe.stem != re.match(SUBJECT_PATTERN, probe.stem)[1]

    return _morph_plan(root, morphs, probes, root, exclude=made_from)


MORPH_LAYOUTS = ("csv", "frll_morphs", "syn_mad22")


def load_morph_set(path: str | Path, *, layout: str = "csv", morph_pattern: str = MORPH_PATTERN) -> ComparisonPlan:
    if layout not in MORPH_LAYOUTS:
        raise DataError(f"morph set layout {layout!r}: use {', '.join(MORPH_LAYOUTS)}")
    if layout == "csv":
        return read_morph_csv(path)
    return read_morph_folders(path, layout, morph_pattern=morph_pattern)


def load_attack_targets(path: str | Path) -> ComparisonPlan:
    """The attack-acceptance CSV of the module docstring."""
    path = Path(path)
    attacks, enrolment = [], {}
    with csv_rows(path, what="attack set", required=("path", "role", "subject", "attack_type")) as (_, rows):
        for line, row in rows:
            where = f"{path}, line {line}"
            role, subject = row["role"].strip().lower(), (row["subject"] or "").strip()
            if not subject:
                raise DataError(f"{where}: empty subject (the subject an attack targets, or whose enrolment it is)")
            image = _image(path.parent, row["path"], where)
            if role == "enrolment":
                enrolment.setdefault(subject, []).append(image)
            elif role == "attack":
                attacks.append((image, subject, (row["attack_type"] or "").strip(), where))
            else:
                raise DataError(f"{where}: role {row['role']!r}; use enrolment or attack")
    if not attacks:
        raise DataError(f"{path}: no attack rows")
    paths = [a[0] for a in attacks] + [p for s in sorted(enrolment) for p in enrolment[s]]
    index = {p: i for i, p in enumerate(paths)}
    pairs = []
    for image, subject, kind, where in attacks:
        if subject not in enrolment:
            raise DataError(f"{where}: subject {subject} has no enrolment row (role enrolment)")
        for reference in enrolment[subject]:
            ids = {"subject": subject, "attack_type": kind, "sample": str(image.relative_to(path.parent))}
            pairs.append((index[image], index[reference], ids))
    return _plan(path.parent, paths, pairs)

"""The score sets of the side-effect benchmarks and the one function that scores each, with its intervals.

A ``Comparisons`` holds one benchmark's similarity scores (higher = more alike), one row per comparison, each with
a ``role`` and the ids the metrics group by:

- ``morph_acceptance``: ``genuine`` and ``impostor`` rows of the named verification set (the impostors fix the
  threshold at the FAR; the genuine rows give FNMR for RMMR) and ``morph`` rows, a morph against one probe image
  of one contributing subject (``morph``, ``subject``, ``probe``, ``method``).
- ``attack_acceptance``: the verification set's rows and ``attack`` rows, an attack presentation against the
  enrolment of the subject it targets (``subject``, ``attack_type``, ``sample``).
- ``identification``: per search, a ``mated`` row (the mated identity's score, for an enrolled probe) and a
  ``nonmated`` row for each of its ``TOP`` best non-mated identities (``probe``, ``subject``, ``gallery``).

``score_comparisons`` gives every metric key (``overspec.metrics.specs``); ``comparison_intervals`` bootstraps the
same function: a cluster bootstrap over morphs (a morph is one attack on two subjects), over targeted subjects
(attacks), over probe subjects (searches), and over genuine pairs; the threshold stays the one the verification
set fixed (it is the system's operating point, not an estimate from the attack sample). ``write_comparisons`` /
``read_comparisons`` export a set as CSV (``score,role,<ids>``) and read it back exactly, so a run's numbers can be
re-scored from its ``scores/`` folder: ``score_comparisons(read_comparisons(path), far=...)``.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from overspec.errors import DataError
from overspec.metrics.bootstrap import bootstrap_intervals
from overspec.metrics.identification import TOP, Searches, cmc, search, tpir_at_fpir
from overspec.metrics.specs import metric_key, needed_samples
from overspec.metrics.vulnerability import (
    false_match_rate,
    false_non_match_rate,
    groups,
    iapmr,
    mmpmr_of_groups,
    prodavg_of_groups,
    rmmr,
    threshold_at_far,
)

DEFAULT_FAR = 1e-3
CMC_RANKS = (1, 5)
FPIR_TARGETS = (0.01, 0.1)
ROLES = {
    "morph_acceptance": ("genuine", "impostor", "morph"),
    "attack_acceptance": ("genuine", "impostor", "attack"),
    "identification": ("mated", "nonmated", "pair"),
}
COLUMNS = {
    "morph_acceptance": ("morph", "subject", "probe", "method"),
    "attack_acceptance": ("subject", "attack_type", "sample"),
    "identification": ("probe", "subject", "gallery"),
}


@dataclass(frozen=True)
class Comparisons:
    kind: str
    scores: np.ndarray
    roles: np.ndarray  # str per row, one of ROLES[kind]
    ids: dict[str, np.ndarray]  # COLUMNS[kind] -> str per row ("" where a row has none)

    @classmethod
    def of(cls, kind: str, scores, roles, **ids) -> Comparisons:
        if kind not in ROLES:
            raise DataError(f"comparison kind {kind!r}: use {', '.join(ROLES)}")
        s = np.asarray(scores, dtype=np.float64).ravel()
        r = np.asarray([str(v) for v in roles], dtype=object)
        unknown = sorted(set(r) - set(ROLES[kind]))
        if unknown:
            raise DataError(f"{kind} comparisons: role {unknown[0]!r}; roles are {', '.join(ROLES[kind])}")
        columns = {c: np.asarray([str(v) for v in ids.get(c, [""] * len(s))], dtype=object) for c in COLUMNS[kind]}
        if any(len(v) != len(s) for v in [r, *columns.values()]):
            raise DataError(f"{kind} comparisons: every column needs one value per score ({len(s)})")
        if not np.isfinite(s).all():
            raise DataError(f"{kind} comparisons: score at row {int(np.flatnonzero(~np.isfinite(s))[0])} is not finite")
        return cls(kind, s, r, columns)

    def __len__(self) -> int:
        return len(self.scores)

    def rows(self, role: str) -> np.ndarray:
        return np.flatnonzero(self.roles == role)

    def subset(self, index: np.ndarray) -> Comparisons:
        return replace(
            self, scores=self.scores[index], roles=self.roles[index], ids={k: v[index] for k, v in self.ids.items()}
        )


@dataclass(frozen=True)
class SideEffectScores:
    """Every key of one set (``None`` where ``unresolved`` says why), its threshold(s) and unit counts."""

    values: dict[str, float | None]
    unresolved: dict[str, str]
    decisions: dict[str, float]
    counts: dict[str, int]


def operating_threshold(data: Comparisons, far: float) -> float:
    """The threshold at ``far`` on the set's impostor rows (``threshold_at_far``); a target its impostors cannot
    resolve is a one-line error naming the option to change."""
    impostor = data.scores[data.rows("impostor")]
    needed = needed_samples(far)
    if len(impostor) < needed:
        raise DataError(
            f"the verification set has {len(impostor)} impostor pairs; a threshold at FAR {far:g} needs >= {needed}: "
            f"raise the benchmark's option `far` (e.g. {max(1 / max(len(impostor), 1), far):.2g}) or name a larger "
            "verification set"
        )
    return threshold_at_far(impostor, far)


def _verification(data: Comparisons, tau: float) -> dict[str, float]:
    values = {"far": false_match_rate(data.scores[data.rows("impostor")], tau)}
    genuine = data.rows("genuine")
    if len(genuine):
        values["fnmr"] = false_non_match_rate(data.scores[genuine], tau)
    return values


def _morph_values(data: Comparisons, tau: float) -> dict[str, float]:
    values = _verification(data, tau)
    rows = data.rows("morph")
    if len(rows) == 0:
        raise DataError("morph acceptance: no morph comparison rows")
    s = data.scores[rows]
    group, morph_of = groups(data.ids["morph"][rows], data.ids["subject"][rows])  # coded once for every key
    values["mmpmr"] = mmpmr_of_groups(s, group, morph_of, tau)
    values["prodavg_mmpmr"] = prodavg_of_groups(s, group, morph_of, tau)
    if "fnmr" in values:
        values["rmmr"] = rmmr(values["mmpmr"], values["fnmr"])
    methods = data.ids["method"][rows]
    for method in sorted(set(methods) - {""}) if len(set(methods)) > 1 else []:
        keep = methods == method
        kept, sub = np.unique(group[keep], return_inverse=True)  # the method's (morph, subject) groups
        of = np.unique(morph_of[kept], return_inverse=True)[1].ravel()
        values[f"mmpmr@{method}"] = mmpmr_of_groups(s[keep], sub.ravel(), of, tau)
        values[f"prodavg_mmpmr@{method}"] = prodavg_of_groups(s[keep], sub.ravel(), of, tau)
    return values


def _attack_values(data: Comparisons, tau: float) -> dict[str, float]:
    values = _verification(data, tau)
    rows = data.rows("attack")
    if len(rows) == 0:
        raise DataError("attack acceptance: no attack comparison rows")
    values["iapmr"] = iapmr(data.scores[rows], tau)
    types = data.ids["attack_type"][rows]
    per = {t: iapmr(data.scores[rows][types == t], tau) for t in sorted(set(types) - {""})}
    values |= {f"iapmr@{t}": v for t, v in per.items()}
    if per:  # ISO/IEC 30107-3 reports IAPMR per PAI species; the worst is the system's exposure
        values |= {"mean_iapmr": float(np.mean(list(per.values()))), "worst_iapmr": max(per.values())}
    return values


def searches_of(data: Comparisons) -> tuple[np.ndarray, dict[str, Searches]]:
    """The probes (sorted) and, per gallery, their ``Searches`` (rows aligned with the probes) rebuilt from the rows;
    every probe searches every gallery. (``pair`` rows, insightface's pair scores, belong to no search.)"""
    data = data.subset(np.flatnonzero(data.roles != "pair"))
    probes, probe_of = np.unique(data.ids["probe"].astype(str), return_inverse=True)
    found = {}
    for gallery in sorted(set(data.ids["gallery"])):
        mine = np.flatnonzero(data.ids["gallery"] == gallery)
        row_probe, scores, roles = probe_of[mine], data.scores[mine], data.roles[mine]
        if len(np.unique(row_probe)) != len(probes):
            missing = probes[np.setdiff1d(np.arange(len(probes)), row_probe)][0]
            raise DataError(f"identification: probe {missing!r} has no search of gallery {gallery!r}")
        mated = np.full(len(probes), np.nan)
        is_mated = roles == "mated"
        mated[row_probe[is_mated]] = scores[is_mated]
        nonmated = np.flatnonzero(roles == "nonmated")
        order = nonmated[np.lexsort((-scores[nonmated], row_probe[nonmated]))]  # by probe, best first
        position = np.arange(len(order)) - np.searchsorted(row_probe[order], row_probe[order])
        keep = position < TOP
        others = np.full((len(probes), TOP), -np.inf)
        others[row_probe[order][keep], position[keep]] = scores[order][keep]
        found[gallery] = Searches(mated, others)
    return probes, found


def search_values(galleries: dict[str, Searches], unresolved: dict[str, str]) -> tuple[dict, dict]:
    """CMC at ``CMC_RANKS`` and TPIR at ``FPIR_TARGETS`` per gallery; one gallery's keys are unsuffixed, several
    galleries' (IJB-C's G1, G2) are suffixed ``@GALLERY`` and their mean is the unsuffixed key (IJB-C's results are
    reported as the mean over its two galleries)."""
    per: dict[str, dict[str, float | None]] = {}
    reasons: dict[str, dict[str, str]] = {}
    decisions = {}
    for gallery, searches in galleries.items():
        values: dict[str, float | None] = {metric_key("cmc", point=k): cmc(searches, k) for k in CMC_RANKS}
        reasons[gallery] = {}
        n_nonmated = int(np.count_nonzero(~searches.is_mated))
        for target in FPIR_TARGETS:
            key = metric_key("tpir_at_fpir", point=target)
            if n_nonmated < needed_samples(target):
                values[key] = None
                reasons[gallery][key] = f"needs >= {needed_samples(target)} non-mated searches, has {n_nonmated}"
                continue
            values[key], decisions[f"threshold_{target:g}@{gallery}"] = tpir_at_fpir(searches, target)
        per[gallery] = values
    if len(per) == 1:
        ((gallery, values),) = per.items()
        unresolved |= reasons[gallery]
        return values, decisions
    out: dict[str, float | None] = {}
    for gallery, values in per.items():
        out |= {f"{k}@{gallery}": v for k, v in values.items()}
        unresolved |= {f"{k}@{gallery}": r for k, r in reasons[gallery].items()}
    for key in next(iter(per.values())):
        column = [values[key] for values in per.values()]
        out[key] = None if None in column else float(np.mean(column))
        if out[key] is None:
            unresolved[key] = "needs every gallery resolved"
    return out, decisions


def score_comparisons(
    data: Comparisons, *, far: float = DEFAULT_FAR, tau: float | None = None, convention: str = "iso"
) -> SideEffectScores:
    """Every key of ``data``; the threshold is fixed at ``far`` on its impostor rows unless ``tau`` is given.
    Identification follows ``convention`` (``iso``, or ``insightface``: ``insightface_tpir``)."""
    unresolved: dict[str, str] = {}
    if data.kind == "identification":
        probes, galleries = searches_of(data)
        values, decisions = search_values(galleries, unresolved)
        if convention == "insightface":
            values, decisions = insightface_values(data, galleries, values)
            unresolved = {k: v for k, v in unresolved.items() if not k.startswith("tpir_at_fpir")}
        elif convention != "iso":
            raise DataError(f"identification: convention {convention!r}; use iso or insightface")
        counts = {"n_test": len(probes)}
        return SideEffectScores(values, unresolved, decisions, counts)
    tau = operating_threshold(data, far) if tau is None else tau
    values = _morph_values(data, tau) if data.kind == "morph_acceptance" else _attack_values(data, tau)
    unit = "morph" if data.kind == "morph_acceptance" else "sample"
    attacks = data.rows(ROLES[data.kind][2])
    counts = {
        "n_test": int(len(set(data.ids[unit][attacks]))),
        "n_genuine": int(len(data.rows("genuine"))),
        "n_impostor": int(len(data.rows("impostor"))),
    }
    return SideEffectScores(values, unresolved, {"threshold": tau, "far_target": far}, counts)


def insightface_tpir(mated: np.ndarray, top_pairs: np.ndarray, far: float) -> tuple[float, float]:
    """``(TPIR, threshold)`` as insightface's ``recognition/_evaluation_/ijb/ijb_1n.py`` computes its "TPIR at
    FAR": over ``Q`` searches that are all mated, the threshold is the ``ceil(Q * far)``-th largest non-mated
    *pair* score (any probe against any other identity, not the top score of a search), and TPIR is the share of
    mated scores above it, whatever their rank. ``top_pairs``: the largest non-mated pair scores (at least
    ``ceil(Q * far)`` of them)."""
    k = math.ceil(len(mated) * far)
    ordered = np.sort(top_pairs)[::-1]
    if len(ordered) < k:
        raise DataError(
            f"insightface TPIR at FAR {far:g}: needs the {k} largest non-mated pair scores, has {len(ordered)}"
        )
    return float(np.sum(mated > ordered[k - 1]) / len(mated)), float(ordered[k - 1])


def insightface_values(data: Comparisons, galleries: dict[str, Searches], values: dict) -> tuple[dict, dict]:
    """insightface's 1:N rule for the ``tpir_at_fpir`` keys (one gallery, every probe mated: its ``gen_mask``)."""
    if len(galleries) != 1:
        raise DataError("identification: convention insightface searches one gallery (gallery: union for IJB)")
    ((gallery, searches),) = galleries.items()
    if not searches.is_mated.all():
        raise DataError("identification: convention insightface needs every probe enrolled (a closed set)")
    pairs = data.scores[data.rows("pair")]
    out = {k: v for k, v in values.items() if not k.startswith("tpir_at_fpir")}
    decisions = {}
    for target in FPIR_TARGETS:
        key = metric_key("tpir_at_fpir", point=target)
        out[key], decisions[f"threshold_{target:g}@{gallery}"] = insightface_tpir(searches.mated, pairs, target)
    return out, decisions


def identification_comparisons(
    probes: np.ndarray,
    probe_subjects,
    galleries: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    pair_top: int = 0,
    block: int = 4096,
) -> Comparisons:
    """The comparisons of ``probes`` (L2-normalised features, one row per probe; ids are their row numbers unless
    ``probe_subjects`` is paired with ids by the caller) searching each gallery (name -> (features, subjects)), in
    blocks of ``block`` probes: per search its mated and ``TOP`` best non-mated identity scores, and with
    ``pair_top`` the ``pair_top`` largest non-mated pair scores of each gallery (``insightface_tpir``)."""
    probe_ids, subjects = probe_subjects
    scores, roles, columns = [], [], {"probe": [], "subject": [], "gallery": []}

    def add(role, value, probe, subject, gallery):
        scores.append(value)
        roles.append(role)
        columns["probe"].append(str(probe))
        columns["subject"].append(str(subject))
        columns["gallery"].append(gallery)

    for name, (features, enrolled) in galleries.items():
        parts, top = [], np.empty(0)
        for b in range(0, len(probes), block):
            similarity = probes[b : b + block] @ features.T
            parts.append(search(similarity, subjects[b : b + block], enrolled))
            if pair_top:
                mated = np.asarray(subjects[b : b + block]).astype(str)[:, None] == np.asarray(enrolled).astype(str)
                candidates = np.r_[top, similarity[~mated]]
                top = candidates[np.argsort(-candidates, kind="stable")[:pair_top]]
        found = Searches(np.concatenate([p.mated for p in parts]), np.concatenate([p.others for p in parts]))
        for i, (probe, subject) in enumerate(zip(probe_ids, subjects, strict=True)):
            if found.is_mated[i]:
                add("mated", found.mated[i], probe, subject, name)
            for v in found.others[i][np.isfinite(found.others[i])]:
                add("nonmated", v, probe, subject, name)
        for v in top:
            add("pair", v, "", "", name)
    return Comparisons.of("identification", scores, roles, **columns)


@dataclass(frozen=True)
class SideEffectIntervals:
    intervals: dict[str, tuple[float, float]]
    method: str
    resamples: int
    seconds: float


def comparison_intervals(
    data: Comparisons, scored: SideEffectScores, *, n_resamples: int = 200, seed: int = 0
) -> SideEffectIntervals:
    """95 % percentile intervals of every resolved key, each resample scored by ``score_comparisons`` at the set's
    threshold (see the module docstring for the resampling units)."""
    start = time.perf_counter()
    if n_resamples == 0:
        return SideEffectIntervals({}, "none (0 resamples)", 0, 0.0)
    wanted = {k for k, v in scored.values.items() if v is not None}
    if data.kind == "identification":
        statistic, labels, clusters, unit = _search_resampler(data, wanted)
    else:
        statistic, labels, clusters, unit = _attack_resampler(data, scored.decisions["threshold"], wanted)
    found = bootstrap_intervals(
        statistic,
        labels,
        n_resamples=n_resamples,
        seed=seed,
        clusters=clusters,
        estimate={k: scored.values[k] for k in wanted},
    )
    method = f"stratified percentile cluster bootstrap over {unit} ({n_resamples} resamples, seed {seed})"
    return SideEffectIntervals(found.intervals, method, n_resamples, time.perf_counter() - start)


def _attack_resampler(data: Comparisons, tau: float, wanted: set[str]):
    """Resample genuine pairs and whole attack units; the impostor rows (the threshold's) stay as they are."""
    attack_role = ROLES[data.kind][2]
    unit_column = "morph" if data.kind == "morph_acceptance" else "subject"
    fixed = data.rows("impostor")
    moving = np.flatnonzero(data.roles != "impostor")
    labels = data.roles[moving] == attack_role
    units = np.where(labels, np.char.add("a:", data.ids[unit_column][moving].astype(str)), moving.astype(str))
    clusters = np.unique(units, return_inverse=True)[1].ravel()

    def statistic(index: np.ndarray) -> dict[str, float]:
        values = score_comparisons(data.subset(np.concatenate([fixed, moving[index]])), tau=tau).values
        return {k: v for k, v in values.items() if k in wanted and v is not None}

    noun = "morphs" if data.kind == "morph_acceptance" else "targeted subjects"
    return statistic, labels, clusters, f"{noun} and genuine pairs"


def _search_resampler(data: Comparisons, wanted: set[str]):
    """Resample probe subjects whole; a probe brings its search of every gallery. Stratified by whether a probe is
    mated in the first gallery (IJB-C's mixed probes are mated in exactly one of G1, G2)."""
    probes, galleries = searches_of(data)
    subject_of = dict(zip(data.ids["probe"], data.ids["subject"], strict=True))
    labels = next(iter(galleries.values())).is_mated
    clusters = np.unique([subject_of[p] for p in probes], return_inverse=True)[1].ravel()

    def statistic(index: np.ndarray) -> dict[str, float]:
        try:
            values, _ = search_values({g: s.subset(index) for g, s in galleries.items()}, {})
        except DataError:  # a resample without a mated search
            return {}
        return {k: v for k, v in values.items() if k in wanted and v is not None}

    return statistic, labels, clusters, "probe subjects"


def write_comparisons(data: Comparisons, path: str | Path) -> Path:
    """``data`` as CSV: ``score,role,<ids of its kind>``, each score the shortest decimal that reads back as the same
    float64; ``kind`` is the first line's comment (``# kind: morph_acceptance``)."""
    from overspec._atomic import atomic_open

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = COLUMNS[data.kind]
    with atomic_open(path, "w", newline="") as f:
        f.write(f"# kind: {data.kind}\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["score", "role", *columns])
        writer.writerows(
            zip([repr(float(v)) for v in data.scores], data.roles, *(data.ids[c] for c in columns), strict=True)
        )
    return path


def read_comparisons(path: str | Path) -> Comparisons:
    """A file ``write_comparisons`` wrote; a problem names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"comparison file {path} does not exist")
    with open(path, newline="", encoding="utf-8") as f:
        first = f.readline()
        if not first.startswith("# kind: "):
            raise DataError(f"{path}, line 1: expected `# kind: KIND` ({', '.join(ROLES)}), got {first.strip()!r}")
        kind = first[len("# kind: ") :].strip()
        if kind not in ROLES:
            raise DataError(f"{path}, line 1: kind {kind!r}; use {', '.join(ROLES)}")
        reader = csv.reader(f)
        header = next(reader, None)
        expected = ["score", "role", *COLUMNS[kind]]
        if header != expected:
            raise DataError(f"{path}, line 2: header {header}; a {kind} file has {','.join(expected)}")
        rows = list(reader)
    for number, row in enumerate(rows, start=3):
        if len(row) != len(expected):
            raise DataError(f"{path}, line {number}: {len(row)} fields, expected {len(expected)}")
    table = list(zip(*rows, strict=True)) if rows else [[] for _ in expected]
    try:
        scores = np.array(table[0], dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}: a score is not a number ({exc})") from None
    return Comparisons.of(kind, scores, table[1], **{c: table[i + 2] for i, c in enumerate(COLUMNS[kind])})

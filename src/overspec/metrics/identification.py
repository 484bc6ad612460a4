"""1:N identification (ISO/IEC 19795-1:2021; NIST FRVT 1:N's and IJB-C's open-set protocol).

A *search* compares one probe with every enrolled identity of a gallery; an identity's score is its best entry's
(a gallery may hold several templates of one identity). A probe is *mated* when its identity is enrolled, else
*non-mated*. ``Searches`` keeps what the metrics need of each search: the mated score and the ``top`` highest
non-mated scores, so IJB-C's 20,000 x 3,500 searches cost kilobytes.

- **Rank** of a mated search: ``1 + #{non-mated identities with score >= the mated score}``. A tie counts against
  the mated identity (the pessimistic rule: a candidate list cannot place it above an equal impostor).
- **CMC at rank k** (closed set): the share of mated searches whose rank is at most ``k`` (rank-1 is the
  identification rate).
- **TPIR at FPIR** (open set; DIR at rank 1): the threshold ``tau`` is chosen on the non-mated searches' top scores
  as ``overspec.metrics.vulnerability.threshold_at_far`` chooses it on impostor scores, so that
  ``FPIR(tau) = #{non-mated searches with top score > tau} / N <= target``; TPIR is the share of mated searches whose
  mated identity is at rank 1 with ``score > tau`` (a candidate is returned when its score exceeds the threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from overspec.errors import DataError
from overspec.metrics.vulnerability import threshold_at_far

TOP = 5  # candidates kept per search: enough for CMC up to rank 5


@dataclass(frozen=True)
class Searches:
    """Per probe: ``mated`` score (NaN for a non-mated probe) and ``others``, its ``top`` highest non-mated identity
    scores in descending order (``-inf`` where the gallery has fewer identities)."""

    mated: np.ndarray
    others: np.ndarray

    @property
    def is_mated(self) -> np.ndarray:
        return ~np.isnan(self.mated)

    def subset(self, index: np.ndarray) -> Searches:
        return Searches(self.mated[index], self.others[index])


def search(similarity, probe_ids, gallery_ids, *, top: int = TOP) -> Searches:
    """``Searches`` from a (probes x gallery entries) similarity matrix and the identity of each probe and entry."""
    sim = np.asarray(similarity, dtype=np.float64)
    probes = np.asarray([str(v) for v in probe_ids], dtype=object)
    entries = np.asarray([str(v) for v in gallery_ids], dtype=object)
    if sim.shape != (len(probes), len(entries)):
        raise DataError(f"similarity matrix {sim.shape} for {len(probes)} probes and {len(entries)} gallery entries")
    if not np.isfinite(sim).all():
        raise DataError("similarity matrix: every score must be finite")
    identities, column = np.unique(entries.astype(str), return_inverse=True)
    column = column.ravel()
    if len(identities) == len(entries):  # one entry per identity (IJB-C's galleries): a reordering
        per_identity = np.empty((len(probes), len(identities)))
        per_identity[:, column] = sim
    else:
        per_identity = np.full((len(probes), len(identities)), -np.inf)
        np.maximum.at(per_identity.T, column, sim.T)  # an identity scores its best entry
    where = {name: i for i, name in enumerate(identities)}
    index = np.array([where.get(str(p), -1) for p in probes])
    rows = np.flatnonzero(index >= 0)
    mated = np.full(len(probes), np.nan)
    mated[rows] = per_identity[rows, index[rows]]
    per_identity[rows, index[rows]] = -np.inf  # what remains are the non-mated identities
    k = min(top, per_identity.shape[1])
    best = -np.sort(-per_identity, axis=1)[:, :k]
    others = np.full((len(probes), top), -np.inf)
    others[:, :k] = best
    return Searches(mated, others)


def mated_ranks(searches: Searches) -> np.ndarray:
    """Rank of each mated search (pessimistic ties); ``top + 1`` stands for any rank beyond the kept candidates."""
    m = searches.is_mated
    return 1 + np.sum(searches.others[m] >= searches.mated[m][:, None], axis=1)


def cmc(searches: Searches, rank: int) -> float:
    """Share of mated searches with the mated identity at rank ``rank`` or better."""
    if not 1 <= rank <= searches.others.shape[1]:
        raise DataError(f"CMC rank {rank}: searches keep {searches.others.shape[1]} candidates; use 1 to that")
    ranks = mated_ranks(searches)
    if len(ranks) == 0:
        raise DataError("CMC: no mated search (no probe's identity is in the gallery)")
    return float(np.mean(ranks <= rank))


def tpir_at_fpir(searches: Searches, fpir: float) -> tuple[float, float]:
    """``(TPIR, threshold)`` at the lowest threshold whose FPIR over the non-mated searches is at most ``fpir``."""
    m = searches.is_mated
    if m.all() or not m.any():
        raise DataError("TPIR at FPIR needs mated and non-mated searches (an open-set gallery)")
    tau = threshold_at_far(searches.others[~m, 0], fpir)
    hit = (mated_ranks(searches) == 1) & (searches.mated[m] > tau)
    return float(np.mean(hit)), tau


def fpir(searches: Searches, threshold: float) -> float:
    """Share of non-mated searches returning a candidate: top score ``> threshold``."""
    return float(np.mean(searches.others[~searches.is_mated, 0] > threshold))

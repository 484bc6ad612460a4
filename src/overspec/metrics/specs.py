"""What every metric key means: its direction, unit and display name, in one registry.

One key format everywhere (protocol results, score files, result rows, reports)::

    [mean_|worst_]NAME[_POINT][@ATTACK_TYPE]

``NAME`` is a registered metric (``eer``, ``tar_at_far``, ``bpcer_at_apcer`` ...), ``POINT`` the operating point
of a parameterised metric (``tar_at_far_0.001``: TAR at FAR = 0.001), ``ATTACK_TYPE`` restricts a MAD/PAD metric
to one attack type against all bona fide samples (``eer@print``), and ``mean_``/``worst_`` aggregate it over the
attack types (worst = the highest error, or the lowest AUC). Every metric keeps its registered direction
whatever the decoration.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from overspec.errors import DataError
from overspec.registry import Registry


@dataclass(frozen=True)
class MetricSpec:
    name: str
    display: str
    higher_is_better: bool
    unit: Literal["fraction", "count", "value"] = "fraction"  # fractions are stored as such, shown as %
    parameter: str | None = None  # what POINT means for a parameterised metric
    # an operating point is resolvable only with at least 1 / POINT samples of this class (see ``needs``)
    resolved_by: Literal["positive", "negative"] | None = None


METRICS: Registry[MetricSpec] = Registry("metric")


def _add(
    name: str,
    display: str,
    higher: bool,
    *,
    unit: str = "fraction",
    parameter: str | None = None,
    resolved_by: str | None = None,
) -> None:
    METRICS.register(name, MetricSpec(name, display, higher, unit, parameter, resolved_by))  # type: ignore[arg-type]


# classification
_add("acc1", "top-1 accuracy", True)
_add("acc5", "top-5 accuracy", True)
_add("mean_per_class_recall", "mean per-class recall", True)
# verification
_add("accuracy", "k-fold verification accuracy", True)
_add("accuracy_std", "standard deviation of the fold accuracies", False)
_add("auc", "ROC AUC", True)
_add("eer", "equal error rate", False)
_add("tar_at_far", "TAR at FAR", True, parameter="FAR", resolved_by="negative")
# ISO/IEC 30107-3 attack detection
_add("apcer", "APCER (all attacks pooled)", False)
_add("apcer_max", "APCER of the worst attack type", False)
_add("bpcer", "BPCER", False)
_add("acer", "ACER", False)
_add("hter", "HTER", False)
_add("bpcer_at_apcer", "BPCER at APCER", False, parameter="APCER", resolved_by="negative")
_add("apcer_at_bpcer", "APCER at BPCER", False, parameter="BPCER", resolved_by="positive")
# what a face comparator accepts, at a threshold fixed at a FAR on a verification set (metrics/vulnerability.py)
_add("far", "FAR reached at the threshold", False)
_add("fnmr", "FNMR at the threshold", False)
_add("mmpmr", "MMPMR (morphs matching every contributor)", False)
_add("prodavg_mmpmr", "ProdAvg-MMPMR", False)
_add("rmmr", "RMMR (MMPMR relative to the true match rate)", False)
_add("iapmr", "IAPMR (attacks matching their target)", False)
# 1:N identification (metrics/identification.py)
_add("cmc", "identification rate at rank", True, parameter="rank")
_add("tpir_at_fpir", "TPIR at FPIR (rank 1)", True, parameter="FPIR", resolved_by="negative")

_KEY = re.compile(
    r"^(?P<aggregate>mean_|worst_)?(?P<body>[a-z0-9_]+?)(?:_(?P<point>\d[\d.e+-]*))?(?:@(?P<attack>.+))?$"
)


@dataclass(frozen=True)
class MetricKey:
    spec: MetricSpec
    point: str | None = None
    attack: str | None = None
    aggregate: str | None = None  # "mean" or "worst" over attack types

    @property
    def higher_is_better(self) -> bool:
        return self.spec.higher_is_better

    @property
    def display(self) -> str:
        text = self.spec.display + (f" = {self.point}" if self.point else "")
        if self.aggregate:
            text = f"{self.aggregate} over attack types of {text}"
        return text + (f" ({self.attack})" if self.attack else "")


def metric_key(
    name: str, *, point: str | float | None = None, attack: str | None = None, aggregate: str | None = None
) -> str:
    """The key of metric ``name`` at operating ``point`` for ``attack`` (e.g. ``tar_at_far_0.001``), or its
    ``aggregate`` (``mean`` / ``worst``) over attack types (``worst_bpcer_at_apcer_0.1``)."""
    spec = METRICS.get(name)
    if (point is None) != (spec.parameter is None):
        raise ValueError(f"metric {name!r} takes {'a ' + spec.parameter if spec.parameter else 'no'} point")
    if aggregate not in (None, "mean", "worst") or (aggregate and attack is not None):
        raise ValueError(f"aggregate {aggregate!r} with attack {attack!r}: mean or worst over types, no attack")
    text = name if point is None else f"{name}_{point:g}" if isinstance(point, float) else f"{name}_{point}"
    text = text if aggregate is None else f"{aggregate}_{text}"
    return text if attack is None else f"{text}@{attack}"


def needed_samples(point: str | float) -> int:
    """Samples of the limiting class an operating point needs: ``ceil(1 / point)`` (FAR 1e-3 needs 1,000
    impostors; with fewer, the only rate at or below the target is 0, so the point is not measured)."""
    import math

    return math.ceil(1.0 / float(point) - 1e-9)


@functools.lru_cache(maxsize=4096)  # bootstrap resamples parse the same few keys thousands of times
def parse_metric(key: str) -> MetricKey:
    """Read a key of the form above; an unknown metric is a DataError naming the registered ones."""
    match = _KEY.match(key)
    if match:
        body, point = match["body"], match["point"]
        if point is not None and body not in METRICS:
            body, point = f"{body}_{point}", None  # a name that ends in digits, not a point
        aggregate = match["aggregate"]
        if aggregate and body not in METRICS and f"{aggregate}{body}" in METRICS:
            body, aggregate = f"{aggregate}{body}", None  # e.g. mean_per_class_recall
        if body in METRICS:
            spec = METRICS.get(body)
            if (point is None) == (spec.parameter is None):
                return MetricKey(spec, point, match["attack"], aggregate.rstrip("_") if aggregate else None)
    raise DataError(f"metric {key!r} is not a registered metric; registered: {', '.join(METRICS.names())}")

"""What each protocol is, apart from how it runs: the datasets it takes, its headline metric and the option that
names its convention (the rules its numbers follow). The planner resolves these once per cell; the protocol
functions report the same headline."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from overspec.registry import Registry


@dataclass(frozen=True)
class ProtocolInfo:
    name: str
    tasks: tuple[str, ...]  # the dataset tasks it evaluates: general, fr, mad, pad
    headline: Callable[[str, str], str]  # (dataset, task) -> the headline metric key
    general: bool = False  # a general-suite protocol (GELO is computed over these)
    splits: tuple[str, ...] = ("test",)  # the splits of a general dataset it reads (what `overspec fetch` gets)
    convention_option: str | None = "convention"  # the option naming its convention (None: it has one only)
    default_convention: str = "iso"
    # ``"module:function"`` ``(encoder, data, **options)``: every check that needs no image (text tower, options,
    # data layout), which `overspec eval` runs for all its protocols before the first forward pass
    check: str | None = None
    # what a face model now accepts (morphs, attacks) or how it searches: reported beside the task's gains
    # (report/side_effects.py), never counted as one (analysis.gelo.biometric_gains)
    side_effect: bool = False

    def check_ready(self, encoder, data, options: dict) -> None:
        if self.check is not None:
            module, function = self.check.split(":")
            getattr(importlib.import_module(module), function)(encoder, data, **options)

    def convention(self, options: dict) -> str:
        return (
            options.get(self.convention_option, self.default_convention)
            if self.convention_option
            else self.default_convention
        )


def _catalog_headline(dataset: str, task: str) -> str:
    """The catalog entry's headline metric; top-1 accuracy for a folder outside the catalog."""
    from overspec.data.catalog import catalog

    return catalog().get(dataset).headline_metric if dataset in catalog() else "acc1"


ATTACK_HEADLINES = {"mad": "mean_eer", "pad": "hter"}  # MADation reports EER per attack type, FoundPAD HTER
SIDE_EFFECT_HEADLINES = {"morph_acceptance": "mmpmr", "attack_acceptance": "iapmr", "identification": "cmc_1"}

PROTOCOL_INFO: Registry[ProtocolInfo] = Registry("protocol")
for _info in (
    # zero-shot has one rule: the CLIP paper's prompt-ensemble classifier (as CLIP_benchmark computes it)
    ProtocolInfo(
        "zeroshot",
        ("general",),
        _catalog_headline,
        general=True,
        convention_option=None,
        default_convention="clip",
        check="overspec.protocols.zeroshot:check_zeroshot",
    ),
    ProtocolInfo(
        "linear_probe",
        ("general",),
        _catalog_headline,
        general=True,
        splits=("train", "test"),
        convention_option="recipe",
        default_convention="lbfgs",
        check="overspec.protocols.linear_probe:check_linear_probe",
    ),
    ProtocolInfo(
        "face_verification",
        ("fr",),
        lambda dataset, task: "accuracy",
        check="overspec.protocols.face_verification:check_face_verification",
    ),
    ProtocolInfo("ijb", ("fr",), lambda dataset, task: "tar_at_far_0.0001", check="overspec.protocols.ijb:check_ijb"),
    ProtocolInfo(
        "attack_detection",
        ("mad", "pad"),
        lambda dataset, task: ATTACK_HEADLINES[task],
        check="overspec.protocols.attack_detection:check_attack_detection",
    ),
    *(
        ProtocolInfo(
            name,
            ("fr",),
            lambda dataset, task, name=name: SIDE_EFFECT_HEADLINES[name],
            check=f"overspec.protocols.side_effects:check_{name}",
            side_effect=True,
        )
        for name in ("morph_acceptance", "attack_acceptance", "identification")
    ),
):
    PROTOCOL_INFO.register(_info.name, _info)


def general_protocols() -> list[str]:
    return [name for name in PROTOCOL_INFO if PROTOCOL_INFO.get(name).general]


def side_effect_protocols() -> set[str]:
    """Protocols that measure what a face model accepts or how it searches: never a task's performance."""
    return {name for name in PROTOCOL_INFO if PROTOCOL_INFO.get(name).side_effect}

"""Evaluation protocols, registered by name. Each is a function ``(encoder, dataset, **options) ->
ProtocolResult``; the runner and ``overspec eval`` look them up here."""

from __future__ import annotations

from overspec.registry import Registry

PROTOCOLS: Registry = Registry("protocol")
PROTOCOLS.register("zeroshot", "overspec.protocols.zeroshot:run_zeroshot")
PROTOCOLS.register("linear_probe", "overspec.protocols.linear_probe:run_linear_probe")
PROTOCOLS.register("face_verification", "overspec.protocols.face_verification:run_face_verification")
PROTOCOLS.register("ijb", "overspec.protocols.ijb:run_ijb")
PROTOCOLS.register("attack_detection", "overspec.protocols.attack_detection:run_attack_detection")
for _name in ("morph_acceptance", "attack_acceptance", "identification"):  # side effects (protocols/side_effects.py)
    PROTOCOLS.register(_name, f"overspec.protocols.side_effects:run_{_name}")

RUN_OPTIONS = ("batch_size", "num_workers", "progress")  # set by the runner, not by a config


def option_names(protocol: str) -> list[str]:
    """The options a protocol takes (its keyword-only parameters, less those the runner sets)."""
    import inspect

    parameters = inspect.signature(PROTOCOLS.get(protocol)).parameters
    return [p.name for p in parameters.values() if p.kind == p.KEYWORD_ONLY and p.name not in RUN_OPTIONS]


def check_options(protocol: str, options: dict, *, where: str) -> None:
    """Refuse an option the protocol does not take, before any work starts (not a TypeError hours in)."""
    from overspec.errors import ConfigError

    known = option_names(protocol)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: {', '.join(map(repr, unknown))} is not an option of protocol {protocol}; "
            f"its options: {', '.join(known)}"
        )

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

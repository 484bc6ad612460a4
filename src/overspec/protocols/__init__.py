"""Evaluation protocols, registered by name (zero-shot, linear probe, verification, attack detection)."""

from __future__ import annotations

from overspec.registry import Registry

PROTOCOLS: Registry = Registry("protocol")

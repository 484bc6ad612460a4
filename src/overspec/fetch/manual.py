"""Data and weights overspec cannot download: where each is published, the licence or access step, and the exact
layout and path overspec reads (``manual.yaml`` for data; a zoo entry's ``source`` for weights)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from overspec._paths import expand
from overspec._validation import validated
from overspec.registry import Registry


class ManualSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    source: str
    access: str
    layout: str
    path: str


@lru_cache(maxsize=1)
def manual_sources() -> Registry[ManualSource]:
    registry: Registry[ManualSource] = Registry("benchmark")
    text = resources.files("overspec.fetch").joinpath("manual.yaml").read_text()
    for name, entry in yaml.safe_load(text).items():
        registry.register(name, validated(ManualSource, entry, origin=f"fetch/manual.yaml [{name}]"))
    return registry


def manual_for(*keys: str | None) -> ManualSource | None:
    """The first of ``keys`` (a benchmark name, its layout, its protocol) that manual.yaml describes."""
    return next((manual_sources().get(k) for k in keys if k and k in manual_sources()), None)


@dataclass
class ManualItem:
    """Something to get by hand: what, from where, on which terms, and where to put it."""

    name: str
    path: str
    source: str
    access: str = ""
    layout: str = ""

    def present(self) -> bool:
        return Path(self.path).exists()

    def instructions(self) -> str:
        steps = [f"get it from {self.source.rstrip('.')}"]
        if self.access:
            steps.append(self.access.rstrip("."))
        steps.append(f"put it at {self.path}" + (f" ({self.layout})" if self.layout else ""))
        return f"{self.name}: " + "; ".join(steps)


def manual_item(name: str, source: ManualSource, path: str | None = None) -> ManualItem:
    return ManualItem(name, path or expand(source.path), source.source, source.access, source.layout)

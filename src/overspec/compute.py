"""Compute: what, besides the inputs, can change a number, in one place.

A forward pass on a CUDA device runs under fp16 autocast and gives other features than fp32 on a CPU, so the device
type and the arithmetic are part of every cell's key (``runner/plan.py``), of ``overspec eval``'s memo
(``results/memo.py``) and of the feature cache (``features/extract.py``), and every results row records them
(``device``, ``precision``). What cannot change a number is left out: the device index, threads (the probe's
arithmetic runs in one thread; ``protocols/logistic.py``), batch size, loader workers and the executor.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

AUTOCAST = "fp16-autocast"


@dataclass(frozen=True)
class Compute:
    device: str  # device type: cpu, cuda, mps (no index: every GPU of a type computes alike)
    precision: str  # fp32, or fp16-autocast (CUDA's default)

    @property
    def key(self) -> str:
        return f"{self.device}-{self.precision}"


def compute_for(device: object | None = None, *, amp: bool = True) -> Compute:
    """The compute of a forward pass on ``device`` (a string or ``torch.device``; default: ``default_device()``),
    with fp16 autocast on CUDA when ``amp``."""
    kind = getattr(device, "type", None) or str(device or default_device()).split(":")[0]
    return Compute(kind, AUTOCAST if amp and kind == "cuda" else "fp32")


def default_device() -> str:
    """cuda when torch sees a GPU, else cpu; without an NVIDIA device node, cpu without importing torch (seconds)."""
    if sys.platform.startswith("linux") and not any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/dxg")):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

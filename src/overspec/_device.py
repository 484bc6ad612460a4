"""The one check of a torch device string, shared by the CLI's ``--device`` and a config's ``device:``.

The spelling is checked where the string enters (a config is validated on a login node that may have no GPU);
whether this machine has the device is checked where a model is put on it (``load_model``), before its weights
are read, so ``cuda:7`` on a CPU-only machine is one line, not a CUDA traceback after the load.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from overspec.errors import ConfigError

DEVICE = re.compile(r"(cpu|cuda|mps|xpu)(?::(\d+))?")
FORMS = "cpu, cuda, cuda:N, mps or xpu"


def device_spelling_problem(text: str) -> str | None:
    """Why ``text`` is not a torch device string, or None."""
    if DEVICE.fullmatch(text) is None:
        return f"not a torch device; use {FORMS}"
    return None


def check_device_spelling(text: str | None, *, where: str) -> str | None:
    """``text`` unchanged, or a ConfigError naming ``where`` (a flag or a config key)."""
    if text is not None and (problem := device_spelling_problem(text)) is not None:
        raise ConfigError(f"{where} {text!r}: {problem}")
    return text


def check_device_present(text: str, *, where: str = "device") -> None:
    """``text`` is spelled right and this machine has it; else one ConfigError line saying what it has."""
    check_device_spelling(text, where=where)
    kind, index = DEVICE.fullmatch(text).groups()
    if kind == "cpu":
        return
    if (
        kind == "cuda"
        and sys.platform.startswith("linux")
        and not any(Path(p).exists() for p in ("/dev/nvidiactl", "/dev/dxg"))
    ):
        count = 0  # no NVIDIA device node: no need to import torch to know
    else:
        import torch

        backend = getattr(torch, kind, None)
        if kind == "mps":
            count = int(torch.backends.mps.is_available())
        else:
            count = backend.device_count() if backend is not None and backend.is_available() else 0
    if int(index or 0) >= count:
        has = f"{count} {kind} device(s) (indices 0..{count - 1})" if count else f"no {kind} device"
        raise ConfigError(f"{where} {text!r}: not on this machine, which has {has}; use cpu or a device it has")

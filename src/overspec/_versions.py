"""The versions that decide overspec's numbers (Python, torch and its CUDA build, open_clip, timm, transformers),
read without importing torch or the model libraries, so that ``overspec --version`` answers at once."""

from __future__ import annotations

import importlib.util
import platform
import sys
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

# name shown -> distribution name on PyPI
LIBRARIES = {"open_clip": "open_clip_torch", "timm": "timm", "transformers": "transformers"}


def _distribution(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def torch_build() -> tuple[str, str | None] | None:
    """torch's version (with its local tag, e.g. 2.14.1+cu130) and the CUDA it was built for (None: CPU-only); None
    when torch is not installed. The one reader of torch's version: the imported module's own when torch is imported
    (what computes), else its ``torch/version.py`` found through the installed distribution, without importing torch
    (``overspec --version`` and a remembered ``eval`` answer at once; that file is what ``torch.__version__`` reads)."""
    module = sys.modules.get("torch")
    if module is not None and getattr(module, "version", None) is not None:
        return module.__version__, module.version.cuda
    try:
        dist = distribution("torch")
    except PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file("torch/version.py")))
    if not path.is_file():  # an unusual install: the distribution's version, CUDA unknown
        return dist.version, None
    location = importlib.util.spec_from_file_location("_overspec_torch_version", path)
    module = importlib.util.module_from_spec(location)
    location.loader.exec_module(module)  # a generated file of constants; it imports only typing
    return module.__version__, module.cuda


def versions() -> dict[str, str | None]:
    """overspec, python, torch, cuda (the build's), open_clip, timm, transformers; None where not installed."""
    from overspec import __version__

    build = torch_build()
    found = {
        "overspec": __version__,
        "python": platform.python_version(),
        "torch": build[0] if build else None,
        "cuda": build[1] if build else None,
    }
    return found | {name: _distribution(dist) for name, dist in LIBRARIES.items()}


def library_lines() -> list[str]:
    """What ``overspec --version`` prints after overspec's own version: Python, then one library a line."""
    found = versions()
    cuda = found.pop("cuda")
    del found["overspec"]
    lines = [f"Python {found.pop('python')}"]
    for name, value in found.items():
        text = value or "not installed"
        if name == "torch" and value:
            text += f" (CUDA {cuda})" if cuda else " (CPU-only build)"
        lines.append(f"{name} {text}")
    return lines

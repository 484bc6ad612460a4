"""The versions that decide overspec's numbers (Python, torch and its CUDA build, open_clip, timm, transformers),
read without importing torch or the model libraries, so that ``overspec --version`` answers at once."""

from __future__ import annotations

import importlib.util
import platform
from importlib.metadata import PackageNotFoundError, version

# name shown -> distribution name on PyPI
LIBRARIES = {"open_clip": "open_clip_torch", "timm": "timm", "transformers": "transformers"}


def _distribution(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def torch_build() -> tuple[str, str | None] | None:
    """torch's own version (with its local tag, e.g. 2.14.1+cu130) and the CUDA it was built for (None: CPU-only),
    from ``torch/version.py`` alone; None when torch is not installed."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    location = importlib.util.spec_from_file_location(
        "_overspec_torch_version", f"{spec.submodule_search_locations[0]}/version.py"
    )
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

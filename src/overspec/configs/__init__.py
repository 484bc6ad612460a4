"""Experiment configs that ship inside the package, so that an installed overspec runs them from any folder:
``overspec run paper`` is ``overspec run <this folder>/paper.yaml`` (a checkout's ``configs/paper.yaml`` links
here)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_configs() -> dict[str, Path]:
    """Name -> file of every shipped experiment config."""
    folder = Path(str(resources.files("overspec.configs")))
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def config_path(path: str | Path) -> Path:
    """``path`` itself, or the shipped config of that name when ``path`` is a bare name that is no file here."""
    path = Path(path)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        return bundled_configs().get(path.name, path)
    return path

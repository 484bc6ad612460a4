"""Where overspec keeps things on disk, and path expansion for config and spec files."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import platformdirs

_ENV_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def expand(value: str) -> str:
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``~`` and ``pkg://package/file`` (a file shipped
    inside an installed Python package); an unset variable without default, or a missing package, stays."""
    if value.startswith("pkg://"):
        return _package_file(value)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        return match.group(0)

    return os.path.expanduser(_ENV_VAR.sub(substitute, value))


def cache_dir() -> Path:
    """Root of the feature cache: ``$OVERSPEC_CACHE``, else the user cache directory."""
    return Path(os.environ.get("OVERSPEC_CACHE") or platformdirs.user_cache_dir("overspec"))


def cache_writable() -> bool:
    """Whether overspec may write its cache: not when ``OVERSPEC_CACHE_WRITE=0`` (what ``--no-cache`` sets), nor
    when the cache folder (or the nearest existing folder above it) is read-only; then it is only read."""
    if os.environ.get("OVERSPEC_CACHE_WRITE", "1") == "0":
        return False
    folder = cache_dir()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


def weights_dir() -> Path:
    """Where zoo entries look for weights by default: ``$OVERSPEC_WEIGHTS``, else ``<cache>/weights``."""
    return Path(os.environ.get("OVERSPEC_WEIGHTS") or cache_dir() / "weights")


def _package_file(value: str) -> str:
    package, _, relative = value.removeprefix("pkg://").partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return value
    return str(Path(list(spec.submodule_search_locations)[0]) / relative)


def unset_variables(value: str) -> list[str]:
    """Names of the environment variables ``value`` uses that are not set (and have no default)."""
    return [
        m.group(1) or m.group(3)
        for m in _ENV_VAR.finditer(value)
        if (m.group(1) or m.group(3)) not in os.environ and m.group(2) is None
    ]

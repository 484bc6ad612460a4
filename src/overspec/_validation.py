"""YAML reading and pydantic validation with errors that name the file, the key, the rule and the value."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from overspec.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path, *, what: str = "file") -> object:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    return parse_yaml(path.read_text(), origin=str(path))


def parse_yaml(text: str, *, origin: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {str(exc).splitlines()[0]}") from None


def validated(model: type[M], data: object, *, origin: str) -> M:
    """``model`` validated from ``data``; the first problem becomes ``origin: key 'a.b': rule (got value)``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        came = first.get("input")
        shown = f" (got {came!r})" if not isinstance(came, dict | list) else ""
        raise ConfigError(f"{origin}: key '{key}': {message}{shown}") from None

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
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the file as UTF-8"
        ) from None
    return parse_yaml(text, origin=str(path))


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: object, line: int, first: int) -> None:
        super().__init__(f"key {key!r} on line {line} repeats the one on line {first}")
        self.key, self.line, self.first = key, line, first


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader when PyYAML was built with it (ten times faster: the catalog's 26 files are read on
    every command), else the pure-Python one; both construct plain Python types only. A key given twice in one
    mapping is an error: YAML's loaders keep the last silently, dropping the first block (merge keys ``<<`` may
    still be overridden, as YAML intends)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(key, line, seen[key])
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


SAFE_LOADER = _StrictLoader
MAX_NODES = 100_000  # a config or spec is a few hundred nodes; aliases must not expand it beyond this


def parse_yaml(text: str, *, origin: str) -> object:
    """Safe-load YAML. Aliases are shared, not copied, when loading, but everything that walks the document
    (validation, path checks) walks the expansion; a document that expands past ``MAX_NODES`` (an alias bomb)
    is refused here, after a walk linear in the document's own size."""
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except DuplicateKeyError as exc:
        raise ConfigError(
            f"{origin}: line {exc.line}: key {exc.key!r} appears twice in one mapping (first on line {exc.first}); "
            "YAML would keep only the last: merge the two into one"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if expanded_size(data) > MAX_NODES:
        raise ConfigError(
            f"{origin}: the document expands to more than {MAX_NODES:,} values through YAML aliases (&/*); "
            "write the values out or use fewer nested aliases"
        )
    return data


def expanded_size(node: object, memo: dict[int, int] | None = None) -> int:
    """How many values walking ``node`` visits, each shared container counted once per reference; computed
    with one visit per distinct container (capped, so even a cyclic alias terminates)."""
    memo = {} if memo is None else memo
    if not isinstance(node, dict | list):
        return 1
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_NODES + 1  # a container reached again while being counted: a cycle
    children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
    total = 1
    for child in children:
        total += expanded_size(child, memo)
        if total > MAX_NODES:
            break
    memo[key] = total
    return total


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

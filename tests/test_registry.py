from __future__ import annotations

import subprocess
import sys

import pytest

from overspec.errors import OverspecError, UnknownNameError
from overspec.registry import Registry


def test_register_get_and_decorator():
    reg: Registry[object] = Registry("widget")
    reg.register("a", 1)

    @reg.register("b")
    def make_b():
        return 2

    assert reg.get("a") == 1 and reg.get("b") is make_b
    assert reg.names() == ["a", "b"] and "a" in reg and len(reg) == 2


def test_duplicates_are_errors():
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(OverspecError, match="registered twice"):
        reg.register("a", 2)


def test_unknown_names_suggest_close_matches():
    reg: Registry[int] = Registry("model")
    for name in ["froundation-vit-b16", "froundation-vit-l14", "madation-vit-b16"]:
        reg.register(name, 0)
    with pytest.raises(UnknownNameError) as info:
        reg.get("frondation-vit-b16")
    message = str(info.value)
    assert message.startswith("unknown model 'frondation-vit-b16'; did you mean 'froundation-vit-b16'")
    assert "available: froundation-vit-b16, froundation-vit-l14, madation-vit-b16" in message


def test_lazy_entries_import_on_first_use():
    reg: Registry = Registry("thing")
    reg.register("dumps", "json:dumps")
    import json

    assert reg.get("dumps") is json.dumps
    with pytest.raises(OverspecError, match="module:attr"):
        reg.register("bad", "no_colon_here")


def test_importing_overspec_and_its_registries_loads_no_torch():
    code = (
        "import sys, overspec, overspec.models, overspec.cli, overspec.protocols, overspec.data;"
        "overspec.models.zoo();"
        "print(any(m in sys.modules for m in ('torch', 'open_clip', 'peft', 'timm', 'transformers')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

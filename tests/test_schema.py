"""`overspec schema config|model`: JSON Schemas that accept what overspec accepts and reject what it rejects."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from helpers.cli import overspec
from overspec.input_schemas import SCHEMAS, field_comments, json_schema

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def schemas() -> dict[str, jsonschema.Draft202012Validator]:
    validators = {}
    for kind in SCHEMAS:
        schema = json_schema(kind)
        jsonschema.Draft202012Validator.check_schema(schema)
        validators[kind] = jsonschema.Draft202012Validator(schema)
    return validators


def _errors(validator: jsonschema.Draft202012Validator, document: object) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_paper_config_validates(schemas):
    assert _errors(schemas["config"], yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())) == []


def test_zoo_entries_validate(schemas):
    zoo = yaml.safe_load((REPO / "src" / "overspec" / "models" / "zoo.yaml").read_text())
    for name, spec in zoo.items():
        assert _errors(schemas["model"], spec) == [], name


def test_quickstart_models_validate(schemas, tmp_path):
    """The quickstart's model entries (config schema) and the spec files it writes (model schema)."""
    from overspec.quickstart.run import model_specs, shipped_adapters

    entries = model_specs(tmp_path, {task: shipped_adapters() / task for task in ("fr", "mad", "pad")})
    assert _errors(schemas["config"], {"name": "quickstart", "models": entries}) == []
    written = sorted((tmp_path / "models").glob("*.yaml"))
    assert len(written) == 8  # base, its ConSE, and each specialist with its ConSE
    for path in written:
        assert _errors(schemas["model"], yaml.safe_load(path.read_text())) == [], path.name


@pytest.mark.parametrize(
    ("kind", "document", "where"),
    [
        ("config", {"name": "x", "modles": []}, ""),  # a misspelt key
        ("config", {"name": "x", "general": {"datasets": "cifar10"}}, "general.datasets"),  # a string, not a list
        ("config", {"name": "x", "general": {"datasets": ["mnist"], "headline": "top1"}}, "general.headline"),
        ("config", {"name": "x", "executor": {"name": "slurm"}}, "executor.name"),
        ("config", {"name": "x", "biometric": [{"name": "lfw", "protocol": "face_verification"}]}, "biometric.0"),
        ("model", {"family": "open-clip"}, "family"),  # not a registered family
        ("model", {"family": "timm", "key_map": "by_position"}, "key_map"),
        ("model", {"family": "froundation", "lora": {"r": 0, "alpha": 32}}, "lora.r"),
    ],
)
def test_schema_rejects_what_overspec_rejects(schemas, kind, document, where):
    from pydantic import ValidationError

    from overspec.input_schemas import schema_model

    best = jsonschema.exceptions.best_match(schemas[kind].iter_errors(document))  # what an editor underlines
    assert best is not None and ".".join(map(str, best.absolute_path)) == where, best
    with pytest.raises(ValidationError):
        schema_model(kind).model_validate(document)


def test_keys_are_described_from_their_source_comments():
    from overspec.config import GeneralSuite

    comments = field_comments(GeneralSuite)
    assert comments["options"] == "per protocol, e.g. linear_probe: {k_shot: 16}"  # the comment ending its line
    assert comments["only"].startswith("per dataset, a subset of ``protocols``")  # the comment lines above it
    assert comments["only"].endswith("a dataset not named gets every protocol")
    from overspec.models.preprocess import Preprocess

    assert "size" not in field_comments(Preprocess)  # no comment, no made-up description
    general = json_schema("config")["$defs"]["GeneralSuite"]["properties"]
    assert general["only"]["description"] == comments["only"]


def test_the_command_prints_the_schema():
    assert json.loads(overspec("schema", "config").stdout) == json.loads(json.dumps(json_schema("config")))


def test_unknown_kind_is_one_line():
    result = overspec("schema", "experiment")
    assert result.returncode == 2 and "config" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_every_key_is_described(kind):
    """The reference docs and editors show each key's description: a new key needs its comment (or description)."""
    schema = json_schema(kind)
    bare = [
        f"{name}.{key}"
        for name, definition in [("", schema), *schema.get("$defs", {}).items()]
        for key, prop in definition.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert bare == []

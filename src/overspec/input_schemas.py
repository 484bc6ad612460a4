"""JSON Schemas of the YAML files users write (experiment config, model spec), from their pydantic models.

Editors validate a YAML file against them as it is typed (``overspec schema config > overspec-config.json``), and
the reference docs are generated from the same models, so neither can drift from what ``overspec`` accepts.
A field's description is its pydantic ``description`` where it has one, else its source comment (the comment at
the end of its line, or the comment lines right above it): the models document their keys in comments today.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import textwrap
import tokenize
from functools import cache
from typing import TYPE_CHECKING

from overspec.errors import UnknownNameError
from overspec.registry import unknown_name_message

if TYPE_CHECKING:  # pydantic is imported with the models, so that the CLI can list SCHEMAS without it
    from pydantic import BaseModel

# kind -> the pydantic model a file of that kind is validated with ("module:attr", imported on use)
SCHEMAS = {
    "config": "overspec.config:Experiment",
    "model": "overspec.models.spec:ModelSpec",
}
DIALECT = "https://json-schema.org/draft/2020-12/schema"  # what pydantic 2 generates


def schema_model(kind: str) -> type[BaseModel]:
    if kind not in SCHEMAS:
        raise UnknownNameError(unknown_name_message("schema", kind, SCHEMAS))
    module, attr = SCHEMAS[kind].split(":")
    return getattr(importlib.import_module(module), attr)


def json_schema(kind: str) -> dict:
    """The JSON Schema (draft 2020-12) of a ``kind`` file, every key described where its model says what it is."""
    schema = schema_of(schema_model(kind))
    if kind == "model":  # the registry holds the families; the model keeps `family: str` so plug-ins can add more
        from overspec.models import FAMILIES

        schema["properties"]["family"]["enum"] = FAMILIES.names()
    return {"$schema": DIALECT, **schema}


def schema_of(model: type[BaseModel]) -> dict:
    """``model``'s JSON Schema with every field (nested models' too) described by its description or comment."""
    schema = model.model_json_schema()
    _describe(schema, model)
    for name, definition in schema.get("$defs", {}).items():
        nested = _nested_models(model).get(name)
        if nested is not None:
            _describe(definition, nested)
    for definition in [schema, *schema.get("$defs", {}).values()]:  # a key holding a model: that model's summary
        for prop in definition.get("properties", {}).values():
            refs = [p["$ref"] for p in [prop, *prop.get("anyOf", [])] if "$ref" in p]
            if "description" not in prop and refs:
                summary = schema["$defs"][refs[0].rsplit("/", 1)[-1]].get("description", "")
                if summary:
                    prop["description"] = " ".join(summary.split(":")[0].split())
    return schema


def _describe(schema: dict, model: type[BaseModel]) -> None:
    comments = field_comments(model)
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop and name in comments:
            prop["description"] = comments[name]


def _nested_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from ``model``'s fields, by class name (pydantic's ``$defs`` keys)."""
    from pydantic import BaseModel

    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: object) -> None:
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            if annotation.__name__ not in found:
                found[annotation.__name__] = annotation
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for argument in getattr(annotation, "__args__", ()):
            visit(argument)

    visit(model)
    return found


@cache
def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """Each field's source comment: the one ending its definition, after the comment lines right above it."""
    try:
        source = textwrap.dedent(inspect.getsource(model))
    except (OSError, TypeError):  # no source (e.g. a frozen app): descriptions only from the models themselves
        return {}
    lines = source.splitlines()
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    found = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        if name not in model.model_fields:
            continue
        above = []
        row = node.lineno - 1
        while row >= 1 and lines[row - 1].strip().startswith("#"):
            above.insert(0, comments[row])
            row -= 1
        after = [comments[r] for r in range(node.lineno, node.end_lineno + 1) if r in comments]
        text = " ".join(part for part in above + after if part)
        if text:
            found[name] = text
    return found

"""mkdocs hook: the reference pages' tables are generated from overspec itself at build time, so they cannot drift.

A page asks for generated text with a marker on a line of its own, ``<!-- overspec:NAME ARGS -->``:

- ``schema config|model``: every key of the experiment config / model spec (type, default, description, allowed
  values), from the pydantic models through ``overspec.input_schemas`` (what ``overspec schema`` prints);
- ``families``, ``zoo``, ``catalog``, ``protocols``, ``metrics``, ``results-columns``, ``cli``: the registries,
  the zoo, the dataset catalog, the metric registry, the columns of ``results.csv`` and every command's help;
- ``json-schema NAME [DEF]``: the fields of a shipped JSON Schema (summary, eval) or of one of its ``$defs``;
- ``readme SECTION``, ``file PATH``: a README section or a file of the repository, as it is.

An unknown marker, a registered metric the metrics page does not define, or a YAML example marked
``# overspec: config`` / ``# overspec: model`` that overspec rejects fails the build.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

MARKER = re.compile(r"^<!-- overspec:(?P<name>[\w-]+)(?: (?P<args>.*?))? -->$", re.MULTILINE)
EXAMPLE = re.compile(r"```yaml\n# overspec: (?P<kind>config|model)\n(?P<body>.*?)```", re.DOTALL)


def on_config(config):
    # the docs describe this checkout, whatever is installed (mkdocs restores sys.path after loading a hook)
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))
    return config


def on_page_markdown(markdown: str, page, config, files) -> str:
    _check_examples(markdown, page.file.src_path)
    text = MARKER.sub(lambda m: GENERATORS[_known(m["name"], page)](m["args"] or ""), markdown)
    if page.file.src_path == "reference/metrics.md":
        _check_metrics_defined(text)
    return text


def _known(name: str, page) -> str:
    if name not in GENERATORS:
        raise ValueError(f"{page.file.src_path}: unknown marker overspec:{name}; known: {', '.join(GENERATORS)}")
    return name


# --- the experiment config and the model spec ---------------------------------------------------------------------


def _choices() -> dict[tuple[str, str], list[str]]:
    """Values a key accepts that its type alone does not say (checked by validators against a registry)."""
    from overspec.data.attack_layouts import LAYOUTS
    from overspec.data.catalog import catalog
    from overspec.protocols.probe_recipes import PROBE_RECIPES
    from overspec.protocols.specs import PROTOCOL_INFO, general_protocols

    biometric = [name for name in PROTOCOL_INFO if name not in general_protocols()]
    return {
        ("config", "general.protocols"): general_protocols(),
        ("config", "general.probe_recipe"): PROBE_RECIPES.names(),
        ("config", "general.datasets"): [f"{len(catalog())} catalog names (see Datasets), or a name under roots"],
        ("config", "biometric[].protocol"): biometric,
        ("config", "biometric[].layout"): ["csv", *LAYOUTS.names()],
    }


def _type(prop: dict, anchors: dict[str, str]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{anchors[name]})"
    if "anyOf" in prop:
        parts = [_type(p, anchors) for p in prop["anyOf"] if p.get("type") != "null"]
        nullable = any(p.get("type") == "null" for p in prop["anyOf"])
        return " or ".join(parts) + (" or null" if nullable else "")
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array" and "prefixItems" in prop:  # a tuple
        text = f"list of {len(prop['prefixItems'])} {_type(prop['prefixItems'][0], anchors)}s"
        prop = {k: v for k, v in prop.items() if k not in ("minItems", "maxItems")}
    elif kind == "array":
        text = f"list of {_type(prop.get('items', {}), anchors)}"
    elif kind == "object":
        values = prop.get("additionalProperties")
        text = f"mapping to {_type(values, anchors)}" if isinstance(values, dict) and values else "mapping"
    else:
        text = {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean"}.get(kind, kind)
    bounds = [
        f"{symbol} {prop[key]}"
        for key, symbol in (("exclusiveMinimum", ">"), ("minimum", "≥"), ("maximum", "≤"), ("minItems", "items ≥"))
        if key in prop
    ]
    if "pattern" in prop:
        bounds.append(f"matching `{prop['pattern']}`")
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _cell(text: str) -> str:
    """Source text as one table cell: ``<name>`` and ``{k: v}`` outside code spans stay text, not HTML or attributes."""
    parts = " ".join(str(text).replace("``", "`").split()).split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;").replace("{", "&#123;").replace("}", "&#125;")
    return "`".join(parts).replace("|", "\\|")


def schema(kind: str) -> str:
    """Keys of a schema kind (``config``, ``model``) or of any pydantic model (``module:Class``)."""
    import importlib

    from overspec.input_schemas import json_schema, schema_of

    kind = kind.strip()
    if ":" in kind:
        module, attr = kind.split(":")
        root = schema_of(getattr(importlib.import_module(module), attr))
    else:
        root = json_schema(kind)
    definitions = root.get("$defs", {})
    title = root.get("title", kind)
    anchors = {name: name.lower() for name in [title, *definitions]}
    prefixes = {title: ""}
    order = [title]

    def walk(name: str, definition: dict) -> None:  # key paths of nested models, in the order they appear
        for key, prop in definition.get("properties", {}).items():
            for ref in re.findall(r'"\$ref": "#/\$defs/(\w+)"', json.dumps(prop)):
                if ref not in prefixes:
                    many = prop.get("type") == "array" or any(p.get("type") == "array" for p in prop.get("anyOf", []))
                    prefixes[ref] = f"{prefixes[name]}{key}{'[]' if many else ''}."
                    order.append(ref)
                    walk(ref, definitions[ref])

    walk(title, root)
    choices = _choices() if kind == "config" else {}
    out = []
    for name in order:
        definition = root if name == title else definitions[name]
        heading = "the top level" if name == title else f"`{prefixes[name].rstrip('.')}`"
        out += [f"### {name} {{#{anchors[name]}}}", "", f"Keys of {heading}."]
        if definition.get("description"):
            out += ["", _cell(definition["description"])]
        out += ["", "| key | type | default | description |", "|---|---|---|---|"]
        required = set(definition.get("required", []))
        for key, prop in definition.get("properties", {}).items():
            path = prefixes[name] + key
            default = "required" if key in required else f"`{json.dumps(prop.get('default'))}`"
            if "default" not in prop and key not in required:
                default = "computed"  # a default_factory pydantic does not state (e.g. an empty mapping)
            described = _cell(prop.get("description", ""))
            if (kind, path) in choices:
                described += (
                    ("; " if described else "")
                    + "one of: "
                    + ", ".join(f"`{c}`" if " " not in c else c for c in choices[(kind, path)])
                )
            out.append(f"| `{path}` | {_type(prop, anchors)} | {default} | {described} |")
        out.append("")
    return "\n".join(out)


def _check_examples(markdown: str, page: str) -> None:
    """Every marked YAML example is accepted by overspec's own models."""
    import yaml

    from overspec.input_schemas import schema_model

    for match in EXAMPLE.finditer(markdown):
        schema_model(match["kind"]).model_validate(yaml.safe_load(match["body"]))


# --- registries ---------------------------------------------------------------------------------------------------


def families(_: str) -> str:
    from overspec.models import FAMILIES

    rows = ["| family | loader | tuned for | a sweep scales |", "|---|---|---|---|"]
    for name in FAMILIES:
        family = FAMILIES.get(name)
        update = f"`{family.update}`" if family.update else "—"
        rows.append(f"| `{name}` | `{family.loader}` | {family.task} | {update} |")
    return "\n".join(rows)


def zoo(_: str) -> str:
    from overspec.models import zoo as the_zoo

    rows = ["| name | family | arch | base | published as | source |", "|---|---|---|---|---|---|"]
    for name in the_zoo():
        spec = the_zoo().get(name)
        base = spec.base if isinstance(spec.base, str) else ("inline spec" if spec.base else "")
        cells = [f"`{name}`", f"`{spec.family}`", spec.arch or "", base, spec.reference or "", _cell(spec.source or "")]
        rows.append(f"| {' | '.join(cells)} |")
    return "\n".join(rows)


def catalog(_: str) -> str:
    from overspec.data.catalog import catalog as the_catalog

    rows = ["| name | title | classes | headline metric | splits | in the study |", "|---|---|---|---|---|---|"]
    for name in the_catalog():
        entry = the_catalog().get(name)
        splits = ", ".join(entry.splits)
        study = "yes" if entry.in_study else ""
        classes = entry.num_classes
        rows.append(f"| `{name}` | {entry.title} | {classes} | `{entry.headline_metric}` | {splits} | {study} |")
    return "\n".join(rows)


def protocols(_: str) -> str:
    from overspec.protocols.specs import PROTOCOL_INFO

    rows = ["| protocol | tasks | general suite | splits read | convention option (default) |", "|---|---|---|---|---|"]
    for name in PROTOCOL_INFO:
        info = PROTOCOL_INFO.get(name)
        option = f"`{info.convention_option}` (`{info.default_convention}`)" if info.convention_option else "—"
        rows.append(
            f"| `{name}` | {', '.join(info.tasks)} | {'yes' if info.general else ''} | {', '.join(info.splits)} "
            f"| {option} |"
        )
    return "\n".join(rows)


def metrics(_: str) -> str:
    from overspec.metrics.specs import METRICS

    rows = ["| key | name | better | unit | operating point |", "|---|---|---|---|---|"]
    for name in METRICS:
        spec = METRICS.get(name)
        better = "higher" if spec.higher_is_better else "lower"
        point = f"`{name}_X`: {spec.parameter} = X" if spec.parameter else ""
        rows.append(f"| [`{name}`](#{name}) | {spec.display} | {better} | {spec.unit} | {point} |")
    return "\n".join(rows)


def _check_metrics_defined(text: str) -> None:
    from overspec.metrics.specs import METRICS

    defined = set(re.findall(r"^### `(\w+)`", text, re.MULTILINE))
    missing = [name for name in METRICS if name not in defined]
    if missing:
        raise ValueError(f"reference/metrics.md: registered metric(s) {', '.join(missing)} have no ### section")


def results_columns(_: str) -> str:
    from dataclasses import fields

    from overspec.results.store import SCHEMA_VERSION, ResultRow

    rows = [
        f"Store schema version: **{SCHEMA_VERSION}** (`PRAGMA user_version` of `results.sqlite`).",
        "",
        "| column | type | default |",
        "|---|---|---|",
    ]
    for field in fields(ResultRow):
        default = "required" if field.default is field.default_factory else f"`{field.default!r}`"
        rows.append(f"| `{field.name}` | {str(field.type).replace(' | ', ' or ')} | {default} |")
    return "\n".join(rows)


def json_schema(args: str) -> str:
    """``NAME [DEF]``: the fields of a shipped JSON Schema (``overspec/schemas/NAME.schema.json``) or of one of its
    ``$defs``: key, type, whether required, description."""
    from importlib import resources

    name, _, definition = args.strip().partition(" ")
    schema = json.loads(resources.files("overspec").joinpath("schemas", f"{name}.schema.json").read_text())
    node = schema["$defs"][definition] if definition else schema

    def kind(prop: dict) -> str:
        if "$ref" in prop:
            return f"`{prop['$ref'].rsplit('/', 1)[-1]}` object"
        if "const" in prop:
            return f"`{json.dumps(prop['const'])}`"
        if "enum" in prop:
            return " \\| ".join(f"`{v}`" for v in prop["enum"])
        types = prop.get("type", "any")
        text = " or ".join(types) if isinstance(types, list) else types
        if text == "array" and "$ref" in prop.get("items", {}):
            text = f"array of {kind(prop['items'])}"
        return text

    rows = ["| key | type | required | description |", "|---|---|---|---|"]
    required = set(node.get("required", []))
    for key, prop in node["properties"].items():
        description = _cell(prop.get("description", ""))
        rows.append(f"| `{key}` | {kind(prop)} | {'yes' if key in required else ''} | {description} |")
    return "\n".join(rows)


def cli(_: str) -> str:
    import typer
    from typer.testing import CliRunner

    from overspec.cli import app

    group = typer.main.get_command(app)
    out = []
    for name in group.commands:
        result = CliRunner().invoke(app, [name, "--help"], prog_name="overspec", terminal_width=100)
        if result.exit_code:
            raise ValueError(f"overspec {name} --help failed: {result.output}")
        out += [f"## overspec {name}", "", "```text", result.output.rstrip(), "```", ""]
    return "\n".join(out)


# --- files of the repository ---------------------------------------------------------------------------------------


def readme(section: str) -> str:
    """A ``## SECTION`` of the README, its links made relative to the site."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(section.strip())}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise ValueError(f"README.md has no section '## {section.strip()}'")
    return match[1].strip().replace("](docs/", "](")


def file(path: str) -> str:
    path = path.strip()
    language = {".yaml": "yaml", ".yml": "yaml", ".md": "", ".cff": "yaml", ".toml": "toml"}.get(Path(path).suffix, "")
    text = (ROOT / path).read_text()
    if path.endswith(".md"):
        return text.split("\n", 1)[1] if text.startswith("# ") else text  # the page has its own title
    return f'```{language} title="{path}"\n{text.rstrip()}\n```'


GENERATORS = {
    "schema": schema,
    "families": families,
    "zoo": zoo,
    "catalog": catalog,
    "protocols": protocols,
    "metrics": metrics,
    "results-columns": results_columns,
    "json-schema": json_schema,
    "cli": cli,
    "readme": readme,
    "file": file,
}

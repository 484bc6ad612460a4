"""The reference site's generated parts, without building it (CI runs `mkdocs build --strict`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)


@pytest.fixture(scope="module")
def hook():
    spec = importlib.util.spec_from_file_location("overspec_docs", DOCS / "_hooks" / "overspec_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_page_is_in_the_nav():
    def listed(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [page for value in node.values() for page in listed(value)]
        return [page for item in node for page in listed(item)]

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    assert sorted(listed(config["nav"])) == sorted(str(p.relative_to(DOCS)) for p in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_markers_generate_and_examples_validate(hook, page):
    """Every marker of a page names a generator that runs, and its marked YAML examples are accepted."""
    text = page.read_text()
    hook._check_examples(text, page.name)
    for match in hook.MARKER.finditer(text):
        assert match["name"] in hook.GENERATORS, match[0]
        assert hook.GENERATORS[match["name"]](match["args"] or "").strip(), match[0]


def test_a_metric_without_its_section_fails_the_build(hook):
    text = (DOCS / "reference" / "metrics.md").read_text()
    hook._check_metrics_defined(text)
    with pytest.raises(ValueError, match="hter"):
        hook._check_metrics_defined(text.replace("### `hter`", "### HTER"))


def test_a_rejected_example_fails_the_build(hook):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        hook._check_examples("```yaml\n# overspec: model\nfamily: timm\nkey_map: by_position\n```\n", "x.md")


def test_config_tables_show_every_key(hook):
    from overspec.input_schemas import json_schema

    table = hook.schema("config")
    schema = json_schema("config")
    assert all(f"| `{key}` |" in table for key in schema["properties"])
    assert "| `general.only` |" in table and "| `biometric[].layout` |" in table and "| `executor.name` |" in table
    assert "&lt;root&gt;/&lt;name&gt;" in table  # source text, not an HTML tag

"""What an installed overspec needs: package data, the shipped paper config, one version source, --version."""

from __future__ import annotations

import os
import platform
import subprocess
import tomllib
from pathlib import Path

import pytest

from helpers.cli import overspec

REPO = Path(__file__).resolve().parents[1]


def test_package_data_covers_every_file_the_package_reads():
    """Every non-Python file tracked under src/overspec matches a package-data pattern, so the wheel ships it."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["overspec"]
    package = REPO / "src" / "overspec"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    tracked = subprocess.run(
        ["git", "ls-files", "src/overspec"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    data = [REPO / name for name in tracked if not name.endswith(".py")]
    assert data and [str(p.relative_to(package)) for p in data if p not in shipped] == []


def test_paper_config_ships_in_the_package(tmp_path, monkeypatch):
    """`paper` names the shipped config from any folder; a checkout's configs/paper.yaml is that same file."""
    from overspec.config import load_config
    from overspec.configs import bundled_configs, config_path

    shipped = bundled_configs()["paper"]
    assert shipped.parent == REPO / "src" / "overspec" / "configs"
    assert (REPO / "configs" / "paper.yaml").resolve() == shipped.resolve()
    monkeypatch.chdir(tmp_path)
    assert config_path("paper") == shipped
    assert load_config("paper", check_paths=False).name == "paper"
    (tmp_path / "paper").write_text("name: mine\n")  # a file of that name here wins
    assert config_path("paper") == Path("paper")
    assert config_path("papers") == Path("papers")  # not a shipped name: left for the usual "does not exist"


def test_validate_paper_by_name_from_another_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OVERSPEC_DATA"}
    result = overspec("validate", "paper", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "configs/paper.yaml: uses environment variable(s) OVERSPEC_DATA" in result.stderr


def test_version_lists_the_libraries_that_decide_the_numbers():
    """torch's line is the imported torch's (local tag and CUDA build included); the model libraries' are their
    installed distributions' (importing them would take seconds)."""
    from importlib.metadata import version

    import torch

    from overspec import __version__

    lines = overspec("--version").stdout.splitlines()
    assert lines[0] == f"overspec {__version__}"
    cuda = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    assert lines[1:] == [
        f"Python {platform.python_version()}",
        f"torch {torch.__version__} ({cuda})",
        f"open_clip {version('open_clip_torch')}",
        f"timm {version('timm')}",
        f"transformers {version('transformers')}",
    ]


def test_one_version_source():
    """overspec.__version__ is the installed metadata's, which pyproject.toml's version sets."""
    from importlib.metadata import version

    from overspec import __version__

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == version("overspec") == declared


@pytest.mark.parametrize("name", ["LICENSE", "CITATION.cff", "CHANGELOG.md", "Dockerfile", "MANIFEST.in"])
def test_release_files_exist(name):
    assert (REPO / name).stat().st_size > 200


def test_citation_cites_the_tool_and_the_study():
    import yaml

    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert citation["license"] == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    (study,) = citation["references"]
    assert [a["family-names"] for a in study["authors"]] == ["Chettaoui", "Damer", "Boutros"]
    assert study["year"] == 2025 and "IJCB" in study["collection-title"]
    assert (REPO / "LICENSE").read_text().split()[:3] == ["Apache", "License", "Version"]

"""The `overspec` command, run as a user runs it: a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def overspec_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from overspec.cli import run; run()", *args]


def overspec(*args: str, env: dict | None = None, timeout: int = 300, **options) -> subprocess.CompletedProcess:
    return subprocess.run(overspec_command(*args), capture_output=True, text=True, timeout=timeout, env=env, **options)


def run_command(config: Path, out: Path) -> list[str]:
    return overspec_command("run", str(config), "--out", str(out))


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path

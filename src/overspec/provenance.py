"""Where a result came from: one record of the process that produced it, in every output overspec writes.

A record (``record``) holds overspec's version and, run from a git checkout, its commit; the versions that decide
the numbers (Python, torch and its CUDA build, open_clip, timm, transformers: ``_versions.py``, whose torch reader
is the imported module's own when torch is imported); the device and precision of the forward passes; the host;
the start and end time (UTC, ISO 8601); the command line; and the config's digest (``Experiment.config_hash``, the
``config_hash`` column of every row it produced).

``overspec run`` writes the experiment as it ran to ``config.resolved.yaml`` and, when it finishes, appends one record
per invocation to ``provenance.json`` in the run folder; ``summary.json`` and the report carry them. ``overspec
eval``'s document carries its own record. Schemas: ``schemas/summary.schema.json`` and ``schemas/eval.schema.json``
(``$defs/provenance``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

RESOLVED_CONFIG = "config.resolved.yaml"
RECORDS = "provenance.json"
SCHEMA = "overspec.provenance"
SCHEMA_VERSION = 1


def now() -> str:
    """The current time, UTC, ISO 8601 to the second (e.g. 2026-12-02T11:20:00+00:00)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout overspec runs from (``src/overspec`` inside a git repository whose root
    holds pyproject.toml); ``(None, None)`` for an installed wheel or without git. Asked of that root only: a
    site-packages inside some other repository is no checkout of overspec."""
    root = Path(__file__).resolve().parents[2]
    if not ((root / ".git").exists() and (root / "pyproject.toml").is_file()):
        return None, None

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    changes = git("status", "--porcelain", "--untracked-files=no")
    return commit, None if changes is None else bool(changes)


def record(*, device: str, precision: str, config_hash: str | None, started: str, **extra) -> dict:
    """The provenance of this process's work from ``started`` until now (``extra``: e.g. the run's cell counts)."""
    from overspec._versions import versions

    found = versions()
    commit, dirty = git_state()
    return {
        "overspec": found.pop("overspec"),
        "git_commit": commit,
        "git_dirty": dirty,
        **found,  # python, torch, cuda, open_clip, timm, transformers
        "device": device,
        "precision": precision,
        "host": socket.gethostname(),
        "started_at": started,
        "finished_at": now(),
        "command": list(sys.argv),
        "config_hash": config_hash,
        **extra,
    }


def compute_of(cells) -> tuple[str, str]:
    """The device and precision the plan put in ``cells``' keys (one each in any run; several joined by commas)."""
    devices = sorted({c.compute.device for c in cells})
    precisions = sorted({c.compute.precision for c in cells})
    return ", ".join(devices), ", ".join(precisions)


def write_resolved_config(experiment, out: Path, *, executor=None, track: str | None = None) -> Path:
    """``out/config.resolved.yaml``: the experiment as it runs, every default filled in and every path absolute, so
    ``overspec run`` of that file plans the same cells (same keys, same config_hash). An ``output`` left at its
    default (``runs/<name>`` under the working directory) stays unset, as written."""
    import yaml

    from overspec._atomic import atomic_write

    data = experiment.model_dump(mode="json")
    if executor is not None:  # the executor and tracker the command line chose
        data["executor"] = executor.model_dump(mode="json")
    data["track"] = track or experiment.track
    if experiment.output == type(experiment).model_fields["output"].default:
        del data["output"]
    header = (
        f"# the experiment as `overspec run` ran it: every default filled in, every path absolute; config_hash "
        f"{experiment.config_hash}\n# `overspec run {RESOLVED_CONFIG} --out DIR` plans the same cells\n"
    )
    path = out / RESOLVED_CONFIG
    atomic_write(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def read_records(out: Path) -> list[dict]:
    """Every ``overspec run`` into ``out``, oldest first (empty for a store written otherwise or before records)."""
    import json

    path = Path(out) / RECORDS
    if not path.is_file():
        return []
    from overspec.errors import DataError

    try:
        return json.loads(path.read_text())["runs"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a provenance file ({exc}); restore it or delete it") from None


def append_record(out: Path, entry: dict) -> Path:
    """Add one invocation's record to ``out/provenance.json`` (written whole, atomically)."""
    from overspec._atomic import atomic_write
    from overspec._json import strict_dumps

    runs = [*read_records(out), entry]
    path = Path(out) / RECORDS
    atomic_write(path, strict_dumps({"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "runs": runs}, indent=1))
    return path


def markdown_lines(records: list[dict]) -> list[str]:
    """The report's provenance section: the latest run in full, and how many came before it."""
    if not records:
        return [
            "## Provenance",
            "",
            "No run record in this folder (results stored by hand, or before overspec kept them).",
        ]
    r = records[-1]
    commit = ""
    if r["git_commit"]:
        commit = f" (git {r['git_commit'][:12]}{', uncommitted changes' if r['git_dirty'] else ''})"
    libraries = ", ".join(f"{name} {r[name] or 'not installed'}" for name in ("open_clip", "timm", "transformers"))
    cuda = f"CUDA {r['cuda']}" if r["cuda"] else "CPU-only build"
    lines = [
        "## Provenance",
        "",
        f"- overspec {r['overspec']}{commit}; Python {r['python']}; torch {r['torch']} ({cuda}); {libraries}",
        f"- {r['device']}, {r['precision']}, on {r['host']}; {r['started_at']} to {r['finished_at']}",
        f"- command: `{' '.join(r['command'])}`; config_hash `{r['config_hash']}` ({RESOLVED_CONFIG})",
    ]
    if len(records) > 1:
        lines.append(f"- {len(records) - 1} earlier invocation(s) into this folder: {RECORDS}")
    return lines

"""A model's content identity, read off its spec without building it.

The experiment planner keys every cell by this fingerprint, so replacing a checkpoint in place, or editing what
a spec file says, re-runs exactly that model's cells. Weight files are digested once (sha256, remembered by
path, size and modification time in the cache), so planning a rerun does not re-read gigabytes.
"""

from __future__ import annotations

from pathlib import Path

from overspec._hashing import digest, path_sha256
from overspec.models.spec import ModelSpec

FILE_KEYS = ("weights", "checkpoint", "head")
NESTED_KEYS = ("base", "target", "image")  # other models a spec builds on
NOT_CONTENT = {"name", "notes", "source", "reference", "download"}  # labels, prose, provenance: not content


def spec_fingerprint(model: str | Path | dict | ModelSpec) -> str:
    """sha256 of what the spec loads: its settings, the content of each file it names or reads from the hub, and the
    fingerprints of the models it builds on. A file that is named but absent is a ModelError naming it."""
    from overspec.models import require_files, resolve_spec
    from overspec.models.hub import hub_paths

    spec = resolve_spec(model)
    require_files(spec)  # the same one-line error load_model gives, before any digest
    data = spec.model_dump(exclude=NOT_CONTENT, exclude_none=True)
    hub_files = [path_sha256(path) for path in hub_paths(spec) if path is not None]
    if hub_files:  # what the hub's cache holds for it: a new revision of the repository is another model
        data["hub_files"] = hub_files
    for key in FILE_KEYS:
        path = getattr(spec, key)
        if path is not None and Path(path).exists():  # else a hub name or tag, part of the settings as is
            data[key] = path_sha256(path)
    for key in NESTED_KEYS:
        value = getattr(spec, key)
        if value is not None:
            data[key] = spec_fingerprint(value)
    if spec.models:  # a merge: each merged model by its content, and the rules that merged them
        from overspec.models.merge import RULES

        data["models"] = [{**m.model_dump(), "model": spec_fingerprint(m.model)} for m in spec.models]
        data["merge_rules"] = RULES
    return digest(data)

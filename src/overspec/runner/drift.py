"""The experiment's drift analysis: every model with a base, on every dataset of ``analysis.drift``.

Each (model, base, dataset) gives one document ``drift/<key>.json`` in the run folder; its key is the content the
plan resolved (both models' fingerprints, the images' content, the settings), so a rerun skips what is done and a
changed model or dataset is compared again. The report's drift section reads these documents
(``report/drift.py``). Layer features are cached like final features: each base's are extracted once per dataset.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from overspec._hashing import digest
from overspec.analysis_config import DriftDataset, DriftSettings
from overspec.config import Experiment

FOLDER = "drift"


def run_drift_section(experiment: Experiment, out: Path, *, shard=None, log: Callable[[str], None] = print,
                      phases=None) -> list[Path]:  # fmt: skip
    """Compare each model with its base if the experiment asks for drift (a sharded run leaves it to the unsharded
    run that follows it); returns the documents written or found."""
    settings = experiment.analysis.drift if experiment.analysis is not None else None
    if settings is None or shard is not None:
        return []
    if phases is None:
        return run_drift(experiment, settings, out, log=log)
    with phases("drift"):
        return run_drift(experiment, settings, out, log=log)


def _data(experiment: Experiment, entry: DriftDataset) -> tuple[str, str | None]:
    """(data, root) for ``drift_images``: a folder, a general-suite dataset in its folder, or a catalog name."""
    if entry.path:
        return entry.path, None
    general = experiment.general
    if general is not None and entry.name in general.datasets:
        return entry.name, general.root_of(entry.name)
    return entry.name, None


def run_drift(experiment: Experiment, settings: DriftSettings, out: Path, *, log=print) -> list[Path]:
    from overspec._atomic import atomic_write
    from overspec._json import strict_dumps
    from overspec.analysis.drift import DriftResult, compare_layers, drift_images
    from overspec.compute import compute_for
    from overspec.features.layer_extract import extract_layers
    from overspec.models import load_model
    from overspec.runner.plan import resolve_models

    identities = resolve_models(experiment)
    pairs = [(m, identities[m.base]) for m in identities.values() if m.base]
    folder = out / FOLDER
    written = []
    if not pairs:
        log("drift: no model of the experiment has a base; nothing to compare")
        return written
    device = experiment.device or compute_for(None).device
    options = {"batch_size": experiment.batch_size, "num_workers": experiment.workers, "progress": True}
    image_sets = []
    for entry in settings.entries():
        data, root = _data(experiment, entry)
        image_sets.append((entry, *drift_images(data, split=entry.split, root=root, n=settings.n)))
    loaded: dict[str, object] = {}
    for model, base in pairs:  # models outermost: each is loaded once, with its base
        for name in [name for name in loaded if name not in (model.name, base.name)]:
            del loaded[name]

        def encoder(identity):
            if identity.name not in loaded:
                loaded[identity.name] = load_model(identity.entry.source, device=device)
            return loaded[identity.name]

        for entry, name, images in image_sets:
            key = digest(
                {
                    "model": model.fingerprint,
                    "base": base.fingerprint,
                    "images": images.fingerprint,
                    "settings": settings.model_dump(exclude={"datasets"}),
                    "compute": compute_for(device).key,
                }
            )[:20]
            path = folder / f"{key}.json"
            if path.exists():
                written.append(path)
                continue
            log(f"drift: {model.name} from {base.name} on {entry.name} ({len(images)} images)")
            features = [extract_layers(encoder(m), images, **options) for m in (base, model)]
            result = DriftResult(
                model=model.name,
                base=base.name,
                dataset=entry.name,
                n=len(images),
                k=settings.k,
                permutations=settings.permutations,
                layers=compare_layers(
                    *features, layers=settings.layers, k=settings.k, permutations=settings.permutations
                ),
                identity={"model": model.fingerprint, "base": base.fingerprint, "images": images.fingerprint},
            )
            document = {**result.document(), "images": entry.images, "split": entry.split, "source": name}
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(path, strict_dumps(document, indent=1))
            written.append(path)
    return written


def read_drift(out: Path) -> list[dict]:
    """The drift documents of a run folder (``[]`` when it has none)."""
    return [json.loads(p.read_text()) for p in sorted((Path(out) / FOLDER).glob("*.json"))]

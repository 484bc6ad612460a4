"""``overspec fetch``: the study's data and weights from where they are published, checked on arrival.

Fetchable: catalog datasets with a published webdataset copy, zoo models with a public ``download``. Everything
else (the study's checkpoints, the biometric sets) gets its source, access step, layout and path printed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from overspec._paths import weights_dir
from overspec.errors import FetchError
from overspec.fetch.datasets import DatasetTarget
from overspec.fetch.manual import ManualItem
from overspec.fetch.plan import Transfer, check_space
from overspec.fetch.remote import offline_reason
from overspec.fetch.targets import Item, experiment_items, resolve
from overspec.fetch.weights import HubModelTarget, WeightsTarget

__all__ = ["FetchOutcome", "fetch", "missing_items", "describe"]


@dataclass
class FetchOutcome:
    transfers: list[Transfer] = field(default_factory=list)  # what was (or, in a dry run, would be) fetched
    done: list[str] = field(default_factory=list)  # one line per fetched target
    manual: list[ManualItem] = field(default_factory=list)  # what to get by hand, still missing


def fetch(
    names: list[str] | None = None,
    *,
    config: str | Path | None = None,
    splits: tuple[str, ...] = ("test", "train"),
    root: str | Path | None = None,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
) -> FetchOutcome:
    """Fetch ``names`` (each checked again even if present) or what ``config`` needs and lacks."""
    if config is not None:
        items = [i for i in missing_items(config) if not i.present()]
    else:
        items = [i for name in names or [] for i in resolve(name, root=Path(root) if root else None, splits=splits)]
    targets = [i for i in items if not isinstance(i, ManualItem)]
    manual = [i for i in items if isinstance(i, ManualItem)]
    outcome = FetchOutcome(manual=manual)
    reason = offline_reason() if targets else None
    if reason is not None:  # what huggingface_hub's cache holds is used; only what it lacks is an error
        absent = [t for t in targets if not t.present()]
        restored = {t.name: line for t in ([] if dry_run else absent) if (line := t.from_cache()) is not None}
        still = [t for t in absent if t.name not in restored]
        if still:
            raise FetchError(offline_message(reason, still))
        for target in targets:
            line = restored.get(target.name)
            line = line or f"{target.name}: present at {_where(target)} (not checked against the hub: {reason})"
            outcome.done.append(line)
            if target.name in restored:
                log(line)
        return outcome
    plans = [(target, target.plan()) for target in targets]
    outcome.transfers = [transfer for _, transfer in plans]
    if dry_run:
        return outcome
    check_space(outcome.transfers)
    for target, transfer in plans:
        outcome.done.append(target.fetch(transfer, log))
        log(outcome.done[-1])
    return outcome


def missing_items(config: str | Path) -> list[Item]:
    """Every file ``config`` reads, missing or not (``present()`` tells), without stopping at the first."""
    from overspec.config import check_variables, load_config

    experiment = load_config(config, check_paths=False)
    check_variables(Path(config))
    return experiment_items(experiment)


def describe(item: Item, config: str | Path | None = None) -> str:
    """One line: what is missing, where it goes, and the command that fetches it (or how to get it)."""
    if isinstance(item, ManualItem):
        return "missing " + item.instructions()
    if isinstance(item, DatasetTarget):
        command = (
            f"overspec fetch {item.name} --root {item.folder.parent}"
            if item.folder.name == item.name
            else f"overspec fetch --config {config}"
        )
        return f"missing dataset {item.name} at {item.folder}; fetch it: {command}"
    if isinstance(item, HubModelTarget):
        return f"missing {item.name} in huggingface_hub's cache ({item.path}); fetch it: overspec fetch {item.name}"
    return f"missing weights of {item.name} at {item.path}; fetch them: overspec fetch {item.name}"


def offline_message(reason: str, targets: list[DatasetTarget | WeightsTarget | HubModelTarget]) -> str:
    names = " ".join(t.name for t in targets)
    copies = [f"DIR/{t.name} to {t.folder}" for t in targets if isinstance(t, DatasetTarget)]
    for t in targets:
        if isinstance(t, WeightsTarget):
            copies.append(f"DIR/weights/{_under_weights(t.path)} to {t.path}")
    message = (
        f"the hub cannot be reached ({reason}) and {len(targets)} item(s) are neither here nor in huggingface_hub's "
        "cache: "
        + ", ".join(f"{t.name} ({_where(t)})" for t in targets)
        + f". On a machine that is online and shares that cache, run `overspec fetch {names}`"
    )
    if copies:
        message += (
            f"; or, elsewhere, run `OVERSPEC_WEIGHTS=DIR/weights overspec fetch {names} --root DIR`, then copy "
            + "; ".join(copies)
        )
    return message


def _where(target: DatasetTarget | WeightsTarget | HubModelTarget) -> Path:
    return target.folder if isinstance(target, DatasetTarget) else target.path


def _under_weights(path: Path) -> Path:
    try:
        return path.relative_to(weights_dir())
    except ValueError:
        return Path(path.name)

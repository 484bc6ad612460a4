"""Safe reading of weight files, and key-mismatch reports that say what is wrong.

Nothing here unpickles arbitrary objects: ``.safetensors`` files are read with safetensors and every
other file with ``torch.load(weights_only=True)``. OpenAI's released CLIP ``.pt`` files are TorchScript
archives; those are read with ``torch.jit.load``, which runs TorchScript (no arbitrary Python) — the
format OpenAI ships, so refusing it would leave users no way to load the original weights.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from overspec.errors import CheckpointError

if TYPE_CHECKING:
    import torch

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module", "backbone")
_WRAPPER_PREFIXES = ("module.", "backbone.", "model.", "_orig_mod.")


def load_state_dict(path: str | Path, *, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Read a flat ``{name: tensor}`` state dict from ``path`` without executing code from it."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"{what} {path} is not a readable safetensors file: {exc}") from None
    if _is_torchscript(path):
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # torch raises RuntimeError from deep in its archive reader
            raise CheckpointError(
                f"{what} {path} looks like a TorchScript archive but cannot be read as one "
                f"({str(exc).split('. ')[0][:160]}); download it again or give a state dict (.pt/.safetensors)"
            ) from None
        return {k: v for k, v in module.state_dict().items()}
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        message = str(exc).split("\n")[0]
        if "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            raise CheckpointError(
                f"refusing {what} {path}: loading it needs arbitrary unpickling, which can execute code "
                f"({_unsafe_global(str(exc))}). Re-save it where you trust it as a plain state dict, e.g. "
                "torch.save(torch.load(f, weights_only=False).state_dict(), 'clean.pth'), or as .safetensors"
            ) from None
        raise CheckpointError(f"{what} {path} is not a readable PyTorch file: {message}") from None
    return _flatten(obj, path, what)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())


def _unsafe_global(message: str) -> str:
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    return f"it contains the Python object {found.group(1)}" if found else "it contains Python objects"


def _flatten(obj: object, path: Path, what: str) -> dict[str, torch.Tensor]:
    import torch

    if isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for key in _CONTAINER_KEYS:  # training scripts nest the weights beside epoch counters etc.
            if isinstance(obj.get(key), dict):
                return _flatten(obj[key], path, what)
    raise CheckpointError(
        f"{what} {path} holds a {type(obj).__name__}, not a state dict of tensors; "
        "save model.state_dict() instead of the model object"
    )


def strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove prefixes that DDP, torch.compile or a training wrapper put on every key."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def _pattern(key: str) -> str:
    return re.sub(r"\.\d+\.", ".N.", key)


def summarise_keys(keys: list[str], limit: int = 6) -> str:
    """Keys grouped by their shape with block indices replaced by N: ``a.N.b (x12), c``."""
    counts = Counter(_pattern(k) for k in keys)
    parts = [f"{p} (x{n})" if n > 1 else p for p, n in counts.most_common(limit)]
    more = len(counts) - limit
    return ", ".join(parts) + (f", and {more} more kinds" if more > 0 else "")


def check_fit(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor], *, source: str, hint: str = "") -> None:
    """Raise a ``CheckpointError`` naming missing, unexpected and mis-shaped keys, and a likely cause."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    misshaped = sorted(k for k in set(expected) & set(got) if tuple(expected[k].shape) != tuple(got[k].shape))
    if not (missing or unexpected or misshaped):
        return
    lines = [f"{source} does not fit the model"]
    if missing:
        lines.append(f"{len(missing)} missing keys: {summarise_keys(missing)}")
    if unexpected:
        lines.append(f"{len(unexpected)} unexpected keys: {summarise_keys(unexpected)}")
    if misshaped:
        k = misshaped[0]
        lines.append(
            f"{len(misshaped)} keys with other shapes, e.g. {k}: model {tuple(expected[k].shape)}, "
            f"file {tuple(got[k].shape)}"
        )
    lines.append(f"likely cause: {_likely_cause(missing, unexpected, misshaped, hint)}")
    raise CheckpointError("; ".join(lines))


def _likely_cause(missing: list[str], unexpected: list[str], misshaped: list[str], hint: str) -> str:
    if missing and unexpected:
        for m in missing[:1]:
            for u in unexpected:
                if u.endswith(m) and u != m:
                    return f"every key carries an extra prefix {u[: -len(m)]!r}"
                if m.endswith(u) and u != m:
                    return f"the keys lack the prefix {m[: -len(u)]!r}"
    if any(".w_lora_" in k for k in unexpected):
        return "the file holds unmerged LoRA tensors: load it with family froundation, madation or foundpad"
    if misshaped:
        return "the file is for another architecture size (check `arch`)"
    if missing and not unexpected:
        return "the file holds only part of the model (e.g. an adapter or one tower)"
    return hint or "the file was saved from a different architecture or family"

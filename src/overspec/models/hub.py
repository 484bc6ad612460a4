"""Fetching published weights from hubs when online, and precise instructions when offline."""

from __future__ import annotations

from pathlib import Path

from overspec.errors import ModelError, OfflineError


def hub_offline() -> bool:
    """True when the Hugging Face hub (``HF_ENDPOINT``'s) must not or cannot be reached: one short probe
    (``fetch.remote.offline_reason``), because a hub miss otherwise spends ~50 s in retries before failing."""
    from overspec.fetch.remote import offline_reason

    return offline_reason() is not None


def open_clip_weights(arch: str, tag: str, *, model_name: str, place_at: str | None = None) -> Path:
    """Local path of open_clip's published weights ``arch``/``tag``, downloading them when online."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = [t for a, t in open_clip.list_pretrained() if a == arch]
        raise ModelError(f"{model_name}: open_clip has no pretrained tag {tag!r} for {arch!r}; tags: {tags}")
    hub_id = (cfg.get("hf_hub") or "").rstrip("/")
    where = f"https://huggingface.co/{hub_id}" if hub_id else cfg.get("url", "its publisher")
    if place_at:
        fix = (
            f"put the weights file at {place_at} (OpenAI's {arch}.pt, or open_clip_model.safetensors from "
            f"{where}), or set OVERSPEC_WEIGHTS to the folder that holds it"
        )
    else:
        fix = (
            f"download open_clip_model.safetensors from {where} and give its path as `weights:` in a model spec "
            f"(family open_clip, arch {arch})"
        )
    if hub_offline():
        cached = _hf_cached(hub_id)
        if cached is not None:
            return cached
        raise OfflineError(f"{model_name}: weights {arch}/{tag} are not on this machine and the hub is offline; {fix}")
    import socket

    from overspec.fetch.remote import hub_timeout, install_timeouts

    install_timeouts()  # hub downloads: a timeout on every read, retries bounded
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(hub_timeout())  # open_clip's URL downloads (urllib) take no timeout of their own
    try:
        return Path(open_clip.download_pretrained(cfg))
    except Exception as exc:
        raise OfflineError(f"{model_name}: downloading {arch}/{tag} failed ({exc}); {fix}") from None
    finally:
        socket.setdefaulttimeout(previous)


def _hf_cached(hub_id: str) -> Path | None:
    """The weights file of ``hub_id`` if an earlier online run left it in the Hugging Face cache."""
    if not hub_id:
        return None
    from huggingface_hub import try_to_load_from_cache

    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None

"""Model files on the Hugging Face hub, always through huggingface_hub's cache: downloaded into it when the hub can
be reached, read from it when not, and a one-line error naming the command to run online when it lacks a file.

What a spec needs from the hub is a list of ``HubFile`` (each family says which, ``Family.hub_files``); loaders,
the content fingerprint, ``require_files`` and ``overspec fetch`` all read that one list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from overspec.errors import ModelError, OfflineError

if TYPE_CHECKING:
    from overspec.models.spec import ModelSpec

OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class HubFile:
    """A file of a hub model repository: ``names`` are alternatives (the first the repository has is taken)."""

    repo: str
    names: tuple[str, ...]
    optional: bool = False


def hub_offline() -> bool:
    """True when the hub (``HF_ENDPOINT``'s) must not or cannot be reached: one short probe
    (``fetch.remote.offline_reason``), because a hub miss otherwise spends ~50 s in retries before failing."""
    from overspec.fetch.remote import offline_reason

    return offline_reason() is not None


def hub_needs(spec: ModelSpec) -> list[HubFile]:
    """The hub files ``spec`` loads (none for a model whose files are all local)."""
    from overspec.models import FAMILIES

    try:
        return FAMILIES.get(spec.family).hub_needs(spec)
    except ModuleNotFoundError as exc:  # a family's library is an optional extra (e.g. a wheel with timm only)
        extra = EXTRA_OF_PACKAGE.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        raise ModelError(
            f"{spec.label}: family {spec.family} needs the package {exc.name}, which is not installed; "
            f"pip install 'overspec[{extra}]'"
        ) from None


EXTRA_OF_PACKAGE = {"open_clip": "clip", "transformers": "clip", "timm": "timm", "onnx": "onnx", "onnxruntime": "onnx"}


def hub_paths(spec: ModelSpec) -> list[Path | None]:
    """Local paths of ``hub_needs(spec)``, in order (None: an optional file the repository lacks)."""
    return hub_files(hub_needs(spec), spec=spec)


def hub_files(needs: list[HubFile], *, spec: ModelSpec, cached_only: bool = False) -> list[Path | None]:
    """Local paths of ``needs`` from the cache (downloaded into it when online, unless ``cached_only``); ``spec``
    names the model in errors."""
    if not needs:
        return []
    from overspec.fetch.remote import install_timeouts, offline_reason

    reason = "only the cache is read" if cached_only else offline_reason()
    if reason is None:
        install_timeouts()  # a hub that accepts and never answers ends in one line, not a wait forever
    found = [_cached_or_downloaded(need, reason, spec) for need in needs]
    missing = [need for need, path in zip(needs, found, strict=True) if path is None and not need.optional]
    if missing:
        raise missing_error(spec, missing)
    return found


def _cached_or_downloaded(need: HubFile, reason: str | None, spec: ModelSpec) -> Path | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError

    from overspec.fetch.remote import endpoint

    for name in need.names:
        try:
            return Path(hf_hub_download(need.repo, name, local_files_only=reason is not None, endpoint=endpoint()))
        except EntryNotFoundError:  # the repository (online) or the cache (offline) lacks this one
            continue
        except (RepositoryNotFoundError, GatedRepoError):
            raise ModelError(
                f"{spec.label}: there is no hub repository {endpoint()}/{need.repo} (or it is gated: log in with "
                "`hf auth login`); check the name"
            ) from None
        except Exception as exc:  # the network or the hub failed part way: one line, not its traceback
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise OfflineError(
                f"{spec.label}: reading {need.repo}/{name} from the hub failed ({type(exc).__name__}: {first}); "
                "run the same command again"
            ) from None
    return None


def missing_error(spec: ModelSpec, missing: list[HubFile]) -> ModelError:
    """The repository lacks these files (online), or the cache does (offline: then the command to run online)."""
    from overspec.fetch.remote import endpoint, offline_reason

    reason = offline_reason()
    files = ", ".join(f"{need.repo}/{' or '.join(need.names)}" for need in missing)
    if reason is None:
        return ModelError(f"{spec.label}: the hub repository has none of {files} ({endpoint()}); check the name")
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    local = f"; or put the weights file at {spec.weights}" if spec.weights else ""  # where a zoo entry also looks
    return OfflineError(
        f"{spec.label}: huggingface_hub's cache ({cache}) lacks {files} and the hub cannot be reached ({reason}); "
        f"on a machine that is online, sharing that cache, run `{fetch_command(spec)}`{local}"
    )


def fetch_command(spec: ModelSpec) -> str:
    """The command that puts ``spec``'s hub files in the cache: by its reference when it has one, else hf's own."""
    from overspec.models.reference import is_reference

    if spec.name and is_reference(spec.name):  # a zoo name or a reference as written (never a spec file's stem)
        return f"overspec fetch {spec.name}"
    by_repo: dict[str, list[str]] = {}
    for need in hub_needs(spec):
        if not need.optional:
            by_repo.setdefault(need.repo, []).append(need.names[0])
    return " && ".join(f"hf download {repo} {' '.join(names)}" for repo, names in by_repo.items())


def open_clip_needs(spec: ModelSpec) -> list[HubFile]:
    """``hub: ORG/REPO`` (open_clip_config.json and weights), or a pretrained tag open_clip publishes on the hub."""
    if spec.hub:
        return [HubFile(spec.hub, ("open_clip_config.json",)), HubFile(spec.hub, OPEN_CLIP_WEIGHTS)]
    if not (spec.arch and isinstance(spec.pretrained, str)) or (spec.weights and Path(spec.weights).exists()):
        return []
    located = open_clip_tag_file(spec.arch, spec.pretrained, model_name=spec.label)
    return ([located] if located else []) + tokenizer_needs(spec.arch)


def tokenizer_needs(arch: str) -> list[HubFile]:
    """The files of a Hugging Face tokenizer an open_clip architecture names (SigLIP's), so that a fetch leaves
    them in the cache too; optional, as each tokenizer has only some of them."""
    import open_clip

    name = ((open_clip.get_model_config(arch) or {}).get("text_cfg") or {}).get("hf_tokenizer_name")
    files = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "spiece.model", "config.json")
    return [HubFile(name, (file,), optional=True) for file in files] if name else []


def open_clip_tag_file(arch: str, tag: str, *, model_name: str) -> HubFile | None:
    """Where open_clip publishes ``arch``/``tag`` on the hub (None: only at a URL)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = [t for a, t in open_clip.list_pretrained() if a == arch]
        raise ModelError(f"{model_name}: open_clip has no pretrained tag {tag!r} for {arch!r}; tags: {tags}")
    if not cfg.get("hf_hub"):
        return None
    repo, filename = os.path.split(cfg["hf_hub"])
    names = (filename,) if filename else OPEN_CLIP_WEIGHTS  # 'org/repo/' means open_clip's default file names
    return HubFile(repo, names)


def timm_needs(spec: ModelSpec) -> list[HubFile]:
    """``hub: ORG/REPO`` (timm's config.json and weights), or the hub copy of ``arch``'s pretrained tag."""
    if spec.weights or not (spec.pretrained or spec.hub):
        return []
    if spec.hub:
        return [HubFile(spec.hub, ("config.json",)), HubFile(spec.hub, TRANSFORMERS_WEIGHTS)]
    import timm

    if not spec.arch or spec.arch.split(".")[0] not in timm.list_models():
        return []  # the loader names the unknown architecture
    cfg = timm.models.get_pretrained_cfg(spec.arch)
    if cfg is None or not cfg.hf_hub_id:
        raise ModelError(
            f"{spec.label}: timm publishes no hub copy of {spec.arch}'s weights"
            + (f" (only {cfg.url})" if cfg is not None and cfg.url else "")
            + "; download them and give the file as `weights:` in a spec (family timm)"
        )
    return [HubFile(cfg.hf_hub_id, TRANSFORMERS_WEIGHTS)]


HF_CLIP_FILES = (
    ("config.json",),
    TRANSFORMERS_WEIGHTS,
    ("preprocessor_config.json",),
    ("tokenizer.json",),
    ("vocab.json",),
    ("merges.txt",),
    ("tokenizer_config.json",),
    ("special_tokens_map.json",),
)


def hf_clip_needs(spec: ModelSpec) -> list[HubFile]:
    """A transformers CLIP repository (``hub:``, or ``weights: ORG/REPO``): config, weights, preprocessing and
    tokenizer files (the last ones optional: without them open_clip's copy of the same BPE tokenises)."""
    if not spec.hub:
        return []
    return [HubFile(spec.hub, names, optional=index >= 2) for index, names in enumerate(HF_CLIP_FILES)]


def no_needs(spec: ModelSpec) -> list[HubFile]:
    return []


def open_clip_weights(spec: ModelSpec, *, place_at: str | None = None) -> Path:
    """Local path of open_clip's published weights ``spec.arch``/``spec.pretrained`` (hub copies through the
    cache; ``place_at``: where a spec also looks for the file, named in the error when neither has it)."""
    import open_clip

    located = open_clip_tag_file(spec.arch, spec.pretrained, model_name=spec.label)
    if located is not None:
        (path,) = hub_files([located], spec=spec)
        return path
    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.pretrained)
    fix = f"put the weights file at {place_at}" if place_at else "give the weights file as `weights:` in a spec"
    where = f"{spec.arch}/{spec.pretrained}"
    if hub_offline():
        raise OfflineError(
            f"{spec.label}: weights {where} are published only at {cfg.get('url')} and the hub is offline; {fix}"
        )
    import socket

    from overspec.fetch.remote import hub_timeout, install_timeouts

    install_timeouts()  # hub downloads: a timeout on every read, retries bounded
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(hub_timeout())  # open_clip's URL downloads (urllib) take no timeout of their own
    try:
        return Path(open_clip.download_pretrained(cfg))
    except Exception as exc:
        raise OfflineError(f"{spec.label}: downloading {where} failed ({exc}); {fix}") from None
    finally:
        socket.setdefaulttimeout(previous)

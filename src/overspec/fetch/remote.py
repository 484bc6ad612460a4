"""The Hugging Face hub, as fetch uses it: where it is, whether it can be reached, what a repository holds and
downloading part of one. Every failure of the hub or the network is one line (a ``FetchError``)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from overspec.errors import FetchError

DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class RemoteFile:
    """A file of a hub repository: its path there, its size and, for LFS files, its sha256."""

    path: str
    size: int
    sha256: str | None = None


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_reason() -> str | None:
    """Why the hub cannot be used now, or None. One short connect probe: a miss inside huggingface_hub spends
    tens of seconds on retries before failing."""
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(variable, "0").lower() in {"1", "true", "yes", "on"}:
            return f"{variable}={os.environ[variable]}"
    url = urlsplit(endpoint())
    return _unreachable(url.hostname, url.port or (443 if url.scheme == "https" else 80))


@lru_cache(maxsize=8)
def _unreachable(host: str, port: int) -> str | None:
    """Probed once per process: a model load asks several times (spec, fingerprint, weights)."""
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return f"{host}:{port} cannot be reached ({exc.strerror or exc})"
    return None


def _api():
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint(), library_name="overspec")


def list_files(repo: str, repo_type: str, patterns: list[str] | None = None) -> list[RemoteFile]:
    """The files of ``repo`` (matching ``patterns``), with sizes from the hub's file metadata."""
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    with hub_errors(f"listing {_url(repo, repo_type)}"):
        listing = _api().list_repo_tree(repo, repo_type=repo_type, recursive=True)
        entries = [e for e in listing if isinstance(e, RepoFile)]
    wanted = set(filter_repo_objects([e.path for e in entries], allow_patterns=patterns))
    return [
        RemoteFile(e.path, e.size, e.lfs.sha256 if e.lfs is not None else None)
        for e in sorted(entries, key=lambda e: e.path)
        if e.path in wanted
    ]


def download_snapshot(repo: str, repo_type: str, patterns: list[str]) -> Path:
    """``patterns`` of ``repo`` into huggingface_hub's cache (files already complete there are kept: a rerun
    resumes); the snapshot folder."""
    from huggingface_hub import snapshot_download

    with hub_errors(f"downloading {_url(repo, repo_type)}"):
        return Path(
            snapshot_download(repo, repo_type=repo_type, allow_patterns=patterns, endpoint=endpoint(), max_workers=4)
        )


def cached_snapshot(repo: str, repo_type: str, patterns: list[str]) -> Path | None:
    """The snapshot folder of ``repo`` an earlier online run left in huggingface_hub's cache, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo, repo_type=repo_type, allow_patterns=patterns, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None
    return Path(folder)


def download_file(repo: str, repo_type: str, filename: str, *, force: bool = False) -> Path:
    """One file of ``repo`` into huggingface_hub's cache; ``force`` fetches it again even if present."""
    from huggingface_hub import hf_hub_download

    with hub_errors(f"downloading {filename} of {_url(repo, repo_type)}"):
        return Path(hf_hub_download(repo, filename, repo_type=repo_type, endpoint=endpoint(), force_download=force))


def hub_cache() -> Path:
    """Where huggingface_hub keeps what it downloads (``HF_HUB_CACHE``, else ``$HF_HOME/hub``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def place(cached: Path, target: Path) -> None:
    """Put a file of the cache at ``target``: a hard link to its blob (no second copy on disk), else a copy."""
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        os.link(os.path.realpath(cached), partial)
    except OSError:  # another file system, or links refused: a copy
        shutil.copyfile(cached, partial)
    os.replace(partial, target)


def _url(repo: str, repo_type: str) -> str:
    return f"{endpoint()}/{'datasets/' if repo_type == 'dataset' else ''}{repo}"


class hub_errors:  # noqa: N801 - used as a context manager
    """Turns whatever huggingface_hub or the network raises into one FetchError line."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, FetchError):
            return False
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if isinstance(exc, RepositoryNotFoundError | GatedRepoError):
            fix = "check the name, or log in with `hf auth login` if the repository is gated"
        else:
            fix = "run the same command again: files already complete are kept and the rest resumes"
        raise FetchError(f"{self.doing} failed ({type(exc).__name__}: {first_line}); {fix}") from None

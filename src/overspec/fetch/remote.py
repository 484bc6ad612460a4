"""The Hugging Face hub, as fetch uses it: where it is, whether it can be reached, what a repository holds and
downloading part of one. Every failure of the hub or the network is one line (a ``FetchError``)."""

from __future__ import annotations

import logging
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


DEFAULT_TIMEOUT = 30.0  # seconds a hub request may wait for a connection or for its next bytes
MAX_RETRIES = 1  # a request that timed out is tried once more (after huggingface_hub's 1 s wait), then given up


def hub_timeout() -> float:
    """``OVERSPEC_HUB_TIMEOUT`` (seconds, > 0), else huggingface_hub's ``HF_HUB_DOWNLOAD_TIMEOUT``, else 30."""
    text = os.environ.get("OVERSPEC_HUB_TIMEOUT") or os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise FetchError(f"OVERSPEC_HUB_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT={text!r}: give a number of seconds > 0")
    return value


class HubUnresponsive(FetchError):
    """The hub accepted connections but did not answer within the timeout, every try."""


class _Deadlines:
    """httpx event hooks for huggingface_hub's shared client: every request gets ``hub_timeout()`` for its
    connection, each read and each write (huggingface_hub sends its listings with no timeout at all), and a
    request tried more than ``MAX_RETRIES`` times after a timeout stops its retries (theirs: 5, 23 s of waits)."""

    def __init__(self, timeout: float) -> None:
        import threading

        self.timeout, self.tries, self.lock = timeout, {}, threading.Lock()

    def request(self, request) -> None:
        request.extensions["timeout"] = {k: self.timeout for k in ("connect", "read", "write", "pool")}
        key = (request.method, str(request.url))
        with self.lock:
            tries = self.tries[key] = self.tries.get(key, 0) + 1
        if tries > MAX_RETRIES + 1:
            with self.lock:
                self.tries.pop(key, None)
            port = f":{request.url.port}" if request.url.port else ""
            raise HubUnresponsive(
                f"{request.url.scheme}://{request.url.host}{port} did not answer "
                f"{request.method} {request.url.path} within {self.timeout:g} s, {MAX_RETRIES + 1} times; check "
                "the network or HF_ENDPOINT, or allow more seconds with OVERSPEC_HUB_TIMEOUT"
            )

    def response(self, response) -> None:
        with self.lock:
            self.tries.pop((response.request.method, str(response.request.url)), None)


def install_timeouts() -> None:
    """Give huggingface_hub's shared HTTP client the deadlines above (once per process and timeout)."""
    import huggingface_hub
    from huggingface_hub.utils._http import default_client_factory

    timeout = hub_timeout()
    if _installed.get("timeout") == timeout:
        return
    deadlines = _Deadlines(timeout)

    def factory():
        client = default_client_factory()
        hooks = client.event_hooks
        client.event_hooks = {
            "request": [*hooks["request"], deadlines.request],
            "response": [*hooks["response"], deadlines.response],
        }
        return client

    huggingface_hub.set_client_factory(factory)
    # its "Retrying in 1s" notes would come before our one line, which says what was tried
    logging.getLogger("huggingface_hub.utils._http").setLevel(logging.ERROR)
    _installed["timeout"] = timeout


_installed: dict[str, float] = {}


def _api():
    from huggingface_hub import HfApi

    install_timeouts()
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

    install_timeouts()
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

    install_timeouts()
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
        if isinstance(exc, HubUnresponsive):
            raise FetchError(f"{self.doing} failed: {exc}") from None
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, FetchError):
            return False
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if isinstance(exc, RepositoryNotFoundError | GatedRepoError):
            fix = "check the name, or log in with `hf auth login` if the repository is gated"
        else:
            fix = "run the same command again: files already complete are kept and the rest resumes"
        raise FetchError(f"{self.doing} failed ({type(exc).__name__}: {first_line}); {fix}") from None

"""Fetching a zoo model's public weights (its ``download``: a hub repository and file) through huggingface_hub's
cache to the ``weights`` path the zoo reads, checked against the zoo's sha256 when recorded, else against the hub's
own; and models read from the hub (``HubModelTarget``), for which the cache is the destination."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from overspec._hashing import file_sha256
from overspec.errors import FetchError, OverspecError
from overspec.fetch import remote
from overspec.fetch.plan import Transfer
from overspec.models.spec import ModelSpec


@dataclass
class WeightsTarget:
    spec: ModelSpec

    @property
    def name(self) -> str:
        return self.spec.label

    @property
    def path(self) -> Path:
        return Path(self.spec.weights)

    def present(self) -> bool:
        return self.path.is_file()

    def plan(self) -> Transfer:
        download = self.spec.download
        files = remote.list_files(download.repo, "model", [download.file])
        if not files:
            raise FetchError(
                f"{self.name}: {remote.endpoint()}/{download.repo} has no file {download.file}; correct `download` "
                "in its spec (zoo.yaml or the spec file)"
            )
        return Transfer(self.name, download.repo, "model", remote.hub_cache(), files, rename=self.path)

    def fetch(self, transfer: Transfer, log) -> str:
        """Download into huggingface_hub's cache, check the sha256, place it at the spec's ``weights`` path."""
        download, (published,) = self.spec.download, transfer.files
        expected = download.sha256 or published.sha256
        if self.present() and (expected is None or file_sha256(self.path) == expected):
            checked = f"sha256 {expected[:12]}... checked" if expected else "no checksum recorded to check"
            return f"{self.name}: {self.path} is there ({checked})"
        return self._placed(remote.download_file(download.repo, "model", download.file), expected)

    def from_cache(self) -> str | None:
        """Offline: the file an online run left in huggingface_hub's cache, checked and placed (None: not there)."""
        from huggingface_hub import try_to_load_from_cache

        download = self.spec.download
        cached = try_to_load_from_cache(download.repo, download.file)
        if not isinstance(cached, str):
            return None
        return self._placed(Path(cached), download.sha256) + " (from huggingface_hub's cache)"

    def _placed(self, fetched: Path, expected: str | None) -> str:
        download = self.spec.download
        actual = file_sha256(fetched)
        if expected and actual != expected:
            where = "the spec's download.sha256" if download.sha256 else "the hub's LFS record"
            raise FetchError(
                f"{self.name}: {download.file} from {download.repo} has sha256 {actual}, not {expected} ({where}); "
                "the file or the recorded checksum is wrong: fetch again, or correct download.sha256"
            )
        remote.place(fetched, self.path)
        pin = "" if download.sha256 else f" (record it as download.sha256: {actual} to pin it)"
        return f"{self.name}: {self.path}, sha256 {actual}{pin}"


@dataclass
class HubModelTarget:
    """A model read from the hub through huggingface_hub's cache (a reference such as ``hf-hub:ORG/REPO``,
    ``open_clip:ARCH/TAG``, a timm tag, a transformers CLIP id): fetching it fills the cache, nothing else."""

    spec: ModelSpec

    @property
    def name(self) -> str:
        return self.spec.label

    @property
    def path(self) -> Path:
        return remote.hub_cache()

    def present(self) -> bool:
        from overspec.models.hub import hub_files, hub_needs

        try:
            hub_files(hub_needs(self.spec), spec=self.spec, cached_only=True)
        except OverspecError:
            return False
        return True

    def from_cache(self) -> str | None:
        return None  # present() already reads the cache

    def plan(self) -> Transfer:
        from overspec.models.hub import hub_needs

        needs = hub_needs(self.spec)
        repo = needs[0].repo
        names = [name for need in needs if need.repo == repo for name in need.names]
        return Transfer(self.name, repo, "model", remote.hub_cache(), remote.list_files(repo, "model", names))

    def fetch(self, transfer: Transfer, log) -> str:
        from overspec.models.hub import hub_paths

        found = [path for path in hub_paths(self.spec) if path is not None]
        return f"{self.name}: {len(found)} file(s) of {transfer.repo} in huggingface_hub's cache ({self.path})"

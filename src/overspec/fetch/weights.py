"""Fetching a zoo model's public weights (its ``download``: a hub repository and file) to the ``weights`` path
the zoo reads, checked against the zoo's sha256 when recorded, else against the hub's own."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from overspec._hashing import file_sha256
from overspec.errors import FetchError
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
        staging = self.path.parent / ".fetch" / download.repo.replace("/", "--")
        return Transfer(self.name, download.repo, "model", staging, files, rename=self.path)

    def fetch(self, transfer: Transfer, log) -> str:
        download, (published,) = self.spec.download, transfer.files
        expected = download.sha256 or published.sha256
        if self.present() and (expected is None or file_sha256(self.path) == expected):
            checked = f"sha256 {expected[:12]}... checked" if expected else "no checksum recorded to check"
            return f"{self.name}: {self.path} is there ({checked})"
        fetched = remote.download_file(download.repo, "model", download.file, transfer.folder)
        actual = file_sha256(fetched)
        if expected and actual != expected:
            fetched.unlink()
            where = "the spec's download.sha256" if download.sha256 else "the hub's LFS record"
            raise FetchError(
                f"{self.name}: {download.file} from {download.repo} has sha256 {actual}, not {expected} ({where}); "
                "the file or the recorded checksum is wrong: fetch again, or correct download.sha256"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(fetched, self.path)
        shutil.rmtree(self.path.parent / ".fetch", ignore_errors=True)
        pin = "" if download.sha256 else f" (record it as download.sha256: {actual} to pin it)"
        return f"{self.name}: {self.path}, sha256 {actual}{pin}"

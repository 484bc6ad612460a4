"""Fetching a catalog dataset's published webdataset copy (CLIP_benchmark's ``clip-benchmark/wds_<name>``) through
huggingface_hub's cache (offline: from what the cache already holds) into the folder the loader reads, and checking
what arrived: every shard whole and readable, the shard count of ``nshards.txt``, the catalog's sizes where known,
and the class names (through ``load_dataset``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from overspec._atomic import atomic_write
from overspec._hashing import file_sha256
from overspec.data.catalog import CatalogEntry, catalog
from overspec.errors import DataError, FetchError
from overspec.fetch import remote
from overspec.fetch.plan import Transfer
from overspec.fetch.remote import RemoteFile

METADATA = ["classnames.txt", "zeroshot_classification_templates.txt", "dataset_type.txt"]
DONE = Path(".cache") / "overspec" / "fetched.json"  # written once a fetch is verified
STARTED = Path(".cache") / "overspec" / "laid-out"  # written before the files are laid out


@dataclass
class DatasetTarget:
    """A catalog dataset bound for ``folder`` (``splits``: our split names, mapped to the copy's)."""

    name: str
    folder: Path
    splits: tuple[str, ...] = ("test", "train")

    @property
    def entry(self) -> CatalogEntry:
        return catalog().get(self.name)

    @property
    def repo(self) -> str:
        repo = self.entry.sources.webdataset
        if not repo:
            raise FetchError(
                f"{self.name}: catalog/{self.name}.yaml has no sources.webdataset, so there is no published copy "
                f"to fetch; put the files in {self.folder} yourself (`overspec datasets` lists what is fetchable)"
            )
        return repo

    def present(self) -> bool:
        """Here and complete: a folder fetch left half done counts as missing."""
        started = (self.folder / STARTED).exists() or (self.folder / ".cache" / "huggingface").is_dir()
        return self.folder.is_dir() and any(self.folder.iterdir()) and (not started or (self.folder / DONE).exists())

    def their_splits(self) -> dict[str, str]:
        return {ours: self.entry.splits.get(ours, ours) for ours in self.splits}

    def patterns(self) -> list[str]:
        return [f"{theirs}/*" for theirs in self.their_splits().values()] + METADATA

    def plan(self) -> Transfer:
        files = remote.list_files(self.repo, "dataset", self.patterns())
        published = {f.path.split("/")[0] for f in files if f.path.endswith(".tar")}
        if not published:
            raise FetchError(
                f"{self.name}: {remote.endpoint()}/datasets/{self.repo} has no shards for split(s) "
                f"{', '.join(self.their_splits().values())}; pass --split with the splits it has"
            )
        return Transfer(self.name, self.repo, "dataset", self.folder, files)

    def fetch(self, transfer: Transfer, log) -> str:
        """Download into huggingface_hub's cache, lay the files out in ``folder``, check them."""
        snapshot = remote.download_snapshot(self.repo, "dataset", self.patterns())
        self.lay_out(snapshot, [f.path for f in transfer.files])
        bad = damaged(transfer)
        for path in bad:  # huggingface_hub trusts a file it wrote once: a damaged one is fetched again
            log(f"{self.name}: {path} is damaged ({bad[path]}); fetching it again")
            remote.place(remote.download_file(self.repo, "dataset", path, force=True), self.folder / path)
        still = damaged(transfer) if bad else {}  # what was sound stays sound
        if still:
            path, why = next(iter(still.items()))
            raise FetchError(
                f"{self.name}: {self.folder / path} is still damaged after fetching it again ({why}); the published "
                f"copy may be broken: report it at {remote.endpoint()}/datasets/{self.repo}/discussions"
            )
        return self.verified(transfer)

    def from_cache(self) -> str | None:
        """Offline: lay out and check the copy an online run left in huggingface_hub's cache (None: it has none,
        or not every split asked for)."""
        snapshot = remote.cached_snapshot(self.repo, "dataset", self.patterns())
        if snapshot is None:
            return None
        if any(not list((snapshot / theirs).glob("*.tar")) for theirs in self.their_splits().values()):
            return None
        paths = sorted(
            str(p.relative_to(snapshot)) for pattern in self.patterns() for p in snapshot.glob(pattern) if p.is_file()
        )
        transfer = Transfer(
            self.name, self.repo, "dataset", self.folder, [RemoteFile(p, (snapshot / p).stat().st_size) for p in paths]
        )
        self.lay_out(snapshot, paths)
        bad = damaged(transfer)
        if bad:
            path, why = next(iter(bad.items()))
            raise FetchError(
                f"{self.name}: {path} in huggingface_hub's cache ({snapshot}) is damaged ({why}); fetch it again on a "
                f"machine that is online: overspec fetch {self.name}"
            )
        return self.verified(transfer) + " (from huggingface_hub's cache)"

    def lay_out(self, snapshot: Path, paths: list[str]) -> None:
        (self.folder / STARTED).parent.mkdir(parents=True, exist_ok=True)
        (self.folder / STARTED).touch()  # a layout cut short is not mistaken for a complete folder
        for path in paths:
            remote.place(snapshot / path, self.folder / path)

    def verified(self, transfer: Transfer) -> str:
        """Shard counts and sizes, then the class names (through ``load_dataset``); marks the folder complete."""
        counts = self.check_counts(transfer)
        from overspec.data import load_dataset

        load_dataset(self.name, root=self.folder)  # class names against the catalog's order (DataError)
        atomic_write(self.folder / DONE, json.dumps({f.path: f.size for f in transfer.files}, indent=1))
        shown = ", ".join(f"{split} {n} samples in {shards} shards" for split, (shards, n) in counts.items())
        return f"{self.name}: {shown}; class names match catalog/{self.name}.yaml ({self.folder})"

    def check_counts(self, transfer: Transfer) -> dict[str, tuple[int, int]]:
        """Per split of the copy: (shards, samples), checked against nshards.txt and the catalog's sizes."""
        ours = {theirs: ours for ours, theirs in self.their_splits().items()}
        counts = {}
        for split in sorted({f.path.split("/")[0] for f in transfer.files if f.path.endswith(".tar")}):
            shards = sorted(self.folder.glob(f"{split}/*.tar"))
            declared = self.folder / split / "nshards.txt"
            if declared.exists() and _shard_count(declared) != len(shards):
                raise FetchError(
                    f"{self.name}: {declared} says {declared.read_text().strip()} shards but {len(shards)} arrived; "
                    "run the same `overspec fetch` again"
                )
            n = sum(samples_in(shard) for shard in shards)
            expected = self.entry.sizes.get(ours.get(split, split))
            if expected is not None and n != expected:
                raise FetchError(
                    f"{self.name}: the {split} split has {n} samples but catalog/{self.name}.yaml (sizes."
                    f"{ours.get(split, split)}) expects {expected}; the copy at {self.folder} is incomplete or another "
                    "version: delete it and fetch again, or correct the catalog's sizes"
                )
            counts[split] = (len(shards), n)
        return counts


def damaged(transfer: Transfer) -> dict[str, str]:
    """Files that are absent, of the wrong size, of the wrong sha256 (LFS files) or, for shards, unreadable."""
    bad = {}
    for f in transfer.files:
        path = transfer.local(f)
        if not path.is_file():
            bad[f.path] = "absent"
        elif path.stat().st_size != f.size:
            bad[f.path] = f"{path.stat().st_size} bytes, published {f.size}"
        elif f.sha256 and file_sha256(path) != f.sha256:
            bad[f.path] = "sha256 differs from the published one"
        elif path.suffix == ".tar" and samples_in(path, strict=False) < 0:
            bad[f.path] = "not a readable tar file"
    return bad


def _shard_count(declared: Path) -> int:
    text = declared.read_text().strip()
    if not text.isdigit():
        raise FetchError(
            f"{declared} should hold the number of shards, not {text[:40]!r}; the published copy is broken"
        )
    return int(text)


def samples_in(shard: Path, *, strict: bool = True) -> int:
    """Samples in a shard, read as the loader reads it (whole, size-bounded, uncompressed:
    ``data/sources/webdataset.index_shard``); -1 for an unreadable one unless ``strict``."""
    from overspec.data.sources.webdataset import index_shard

    try:
        return len(index_shard(shard))
    except DataError as exc:
        if strict:
            raise FetchError(f"{exc} (run `overspec fetch` again)") from None
        return -1

"""A fake Hugging Face hub on 127.0.0.1: the endpoints huggingface_hub's ``snapshot_download`` and
``hf_hub_download`` call (repo info, tree listing, HEAD/GET ``resolve`` with Range), bounded in requests and time.
Faults on demand: a GET cut off part way (``cut``), or failing outright (``fail``)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, *, max_requests: int = 500, lifetime_s: float = 120) -> None:
        self.repos: dict[tuple[str, str], dict[str, bytes]] = {}  # (type, id) -> {path: bytes}
        self.gets: Counter[str] = Counter()  # full GETs of file bodies, by repo path
        self.ranges: list[str] = []  # Range headers received
        self.cut: dict[str, int] = {}  # path -> bytes sent before the first GET is cut off
        self.fail: dict[str, int] = {}  # path -> GETs answered 500 before serving it
        self.requests = 0
        self.max_requests = max_requests
        hub = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub.answer(self, body=False)

            def do_GET(self) -> None:
                hub.answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # a free port from the OS
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.deadline = time.monotonic() + lifetime_s

    def start(self) -> FakeHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, repo: str, files: dict[str, bytes], repo_type: str = "dataset") -> None:
        self.repos[(repo_type, repo)] = files

    def add_folder(self, repo: str, folder: Path, repo_type: str = "dataset") -> None:
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        self.add(repo, files, repo_type)

    # --- routing
    def answer(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        self.requests += 1
        if self.requests > self.max_requests or time.monotonic() > self.deadline:
            return self.send(handler, 503, b"fake hub: request budget spent", body=body)
        path = handler.path.split("?")[0]
        for pattern, route in (
            (r"/api/(models|datasets)/(.+?)/revision/([^/]+)", self.info),
            (r"/api/(models|datasets)/(.+?)/tree/([^/]+)", self.tree),
            (r"/(datasets/)?(.+?)/resolve/([^/]+)/(.+)", self.resolve),
        ):
            match = re.fullmatch(pattern, path)
            if match:
                return route(handler, *match.groups(), body=body)
        self.send(handler, 404, b"{}", body=body)

    def files_of(self, kind: str | None, repo: str) -> dict[str, bytes] | None:
        return self.repos.get(("dataset" if kind and kind.startswith("dataset") else "model", repo))

    def info(self, handler, kind, repo, revision, *, body) -> None:
        files = self.files_of(kind, repo)
        if files is None:
            return self.send(handler, 404, b'{"error": "Repository not found"}', body=body, error="RepoNotFound")
        data = {"id": repo, "sha": COMMIT, "private": False, "siblings": [{"rfilename": p} for p in sorted(files)]}
        self.send(handler, 200, json.dumps(data).encode(), body=body, kind="application/json")

    def tree(self, handler, kind, repo, revision, *, body) -> None:
        files = self.files_of(kind, repo)
        if files is None:
            return self.send(handler, 404, b'{"error": "Repository not found"}', body=body, error="RepoNotFound")
        entries = [
            {"type": "file", "path": p, "size": len(data), "oid": hashlib.sha1(data).hexdigest(), **_lfs(p, data)}
            for p, data in sorted(files.items())
        ]
        self.send(handler, 200, json.dumps(entries).encode(), body=body, kind="application/json")

    def resolve(self, handler, kind, repo, revision, file, *, body) -> None:
        files = self.files_of(kind, repo)
        if files is None:  # as the hub answers for a repository that does not exist (or is private)
            return self.send(handler, 404, b"{}", body=body, error="RepoNotFound")
        if file not in files:
            return self.send(handler, 404, b"{}", body=body, error="EntryNotFound")
        data = files[file]
        etag = hashlib.sha256(data).hexdigest() if _lfs(file, data) else hashlib.sha1(data).hexdigest()
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if not body:
            return self.send(handler, 200, data, body=False, headers=headers)
        if self.fail.get(file, 0) > 0:
            self.fail[file] -= 1
            return self.send(handler, 500, b"fake hub: failing on purpose", body=True)
        start = 0
        if "Range" in handler.headers:
            self.ranges.append(handler.headers["Range"])
            start = int(re.match(r"bytes=(\d+)-", handler.headers["Range"]).group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        else:
            self.gets[file] += 1
        if file in self.cut and not start:  # promise the whole file, send part of it, hang up
            handler.send_response(200)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data[: self.cut.pop(file)])
            handler.wfile.flush()
            handler.close_connection = True
            return None
        self.send(handler, 206 if start else 200, data[start:], body=True, headers=headers)

    @staticmethod
    def send(handler, status, data, *, body, kind="application/octet-stream", headers=None, error=None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        if error:
            handler.send_header("X-Error-Code", error)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(data)


def _lfs(path: str, data: bytes) -> dict:
    """Shards and weights are LFS files on the hub: the listing carries their sha256."""
    if not path.endswith((".tar", ".bin", ".pt", ".safetensors")):
        return {}
    return {"lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}}


def publish_webdataset(hub: FakeHub, repo: str, folder: Path, **options) -> Path:
    """CLIP_benchmark's published layout: shards, nshards.txt per split, classnames and templates."""
    from helpers.data import write_webdataset

    write_webdataset(folder, **options)
    for split in ("train", "test"):
        (folder / split / "nshards.txt").write_text(f"{len(list((folder / split).glob('*.tar')))}\n")
    hub.add_folder(repo, folder)
    return folder


def hub_env(hub: FakeHub, base: dict) -> dict:
    """A subprocess environment that talks to ``hub``: online, endpoint set, no progress bars in the logs."""
    env = {k: v for k, v in base.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    quiet = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HOME": base["OVERSPEC_CACHE"] + "/hf"}
    return {**env, "HF_ENDPOINT": hub.url, **quiet}

"""`overspec score` at scale: wall time and peak memory on 1 M and 10 M row score files, default options.

Writes verification and PAD score files (scores with 4 decimals, so ties are common) to a temporary folder,
runs the command as a user does (a fresh process) and reads the child's peak resident memory. With
``--old REV``, the same files go through overspec at git revision REV (checked out to a temporary folder):
its reading with ``--bootstrap 0`` and its bootstrap timed on ``--old-resamples`` resamples, extrapolated to
the default 1,000.

    python bench/score_scale.py [--rows 1000000 10000000] [--old 487b73f --old-resamples 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MEASURE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, r.returncode); "
    "sys.stderr.write(r.stderr[-2000:] if r.returncode else '')"
)


def write(path: Path, kind: str, rows: int) -> Path:
    rng = np.random.default_rng(rows)
    positive = rng.random(rows) < (0.01 if kind == "verification" else 0.3)
    scores = np.round(np.where(positive, rng.normal(0.5, 0.15, rows), rng.normal(0.05, 0.12, rows)), 4)
    labels = np.where(positive, "1", "0") if kind == "verification" else np.where(positive, "bonafide", "attack")
    with open(path, "w") as f:
        f.write("score,label\n")
        for start in range(0, rows, 1_000_000):
            stop = min(rows, start + 1_000_000)
            chunk = np.char.add(np.char.add(scores[start:stop].astype(str), ","), labels[start:stop])
            f.write("\n".join(chunk.tolist()) + "\n")
    return path


def measure(src: Path, *args: str) -> tuple[float, float]:
    """Seconds and peak MiB of ``overspec ARGS`` run with ``src`` first on the path."""
    env = os.environ | {"PYTHONPATH": str(src)}
    command = [sys.executable, "-c", "from overspec.cli import run; run()", *args]
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, env=env)
    seconds, peak, code = out.stdout.split()
    if code != "0":
        raise SystemExit(f"overspec {' '.join(args)} failed: {out.stderr}")
    return float(seconds), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--kinds", nargs="+", default=["verification", "pad"])
    parser.add_argument("--old", help="a git revision to compare with (e.g. the commit before the change)")
    parser.add_argument("--old-resamples", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old_src = None
        if args.old:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.old, "src"], capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
            old_src = tmp / "src"
        print("| rows | kind | version | what | seconds | peak MiB |")
        print("|---:|---|---|---|---:|---:|")
        for rows in args.rows:
            for kind in args.kinds:
                path = write(tmp / f"{kind}_{rows}.csv", kind, rows)
                seconds, peak = measure(ROOT / "src", "score", kind, str(path), "--json")
                print(f"| {rows:,} | {kind} | this | default (1,000 resamples) | {seconds:.1f} | {peak:.0f} |")
                sys.stdout.flush()
                if old_src is not None:
                    read, peak = measure(old_src, "score", kind, str(path), "--json", "--bootstrap", "0")
                    what = "read + metrics, no bootstrap"
                    print(f"| {rows:,} | {kind} | {args.old} | {what} | {read:.1f} | {peak:.0f} |")
                    n = args.old_resamples
                    some, peak = measure(old_src, "score", kind, str(path), "--json", "--bootstrap", str(n))
                    total = read + (some - read) * 1000 / n
                    what = f"default, extrapolated from {n} resamples"
                    print(f"| {rows:,} | {kind} | {args.old} | {what} | {total:.0f} | {peak:.0f} |")
                    sys.stdout.flush()


if __name__ == "__main__":
    main()

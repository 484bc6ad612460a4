"""Run a statistical test under many seeds and count how often it passes: the evidence that it cannot flake.

    python scripts/seed_check.py --seeds 20 \
        tests/test_finetune.py::test_fr_finetune_of_real_weights_gains_its_task

Each seed runs in a fresh pytest process with OVERSPEC_TEST_SEED set (the test's data, views and training all
follow it) and its own cache; one line per seed, then the pass count.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("test", help="pytest node id")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first", type=int, default=0)
    args = parser.parse_args()
    passed = 0
    for seed in range(args.first, args.first + args.seeds):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "OVERSPEC_TEST_SEED": str(seed), "OVERSPEC_CACHE": cache, "HF_HUB_OFFLINE": "1"}
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-m", "slow", args.test],
                env=env,
                capture_output=True,
                text=True,
            )
        ok = run.returncode == 0
        passed += ok
        stats = [line for line in run.stdout.splitlines() if re.search(r"STATS seed=\d", line)]  # the test's summary
        last = stats[-1:] or [line for line in run.stdout.splitlines() if line.strip()][-1:] or ["(no output)"]
        print(f"seed {seed}: {'pass' if ok else 'FAIL'} in {time.perf_counter() - start:.0f} s  {last[0]}", flush=True)
        if not ok:
            print("\n".join(line for line in run.stdout.splitlines() if line.startswith("E ")), flush=True)
    print(f"passed {passed} of {args.seeds}")
    return 0 if passed == args.seeds else 1


if __name__ == "__main__":
    raise SystemExit(main())

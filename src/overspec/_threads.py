"""How many cores this process may use, and torch's thread count set from it on purpose.

torch starts one intra-op thread per physical core of the machine, whatever share of it the process was given
(a CPU set, a Ray actor's ``num_cpus``); more threads than cores makes every matrix product wait on a descheduled
thread. Image decoding runs in DataLoader worker processes (one torch thread each, as DataLoader sets), next to
the forward pass: on 2 cores, 1 worker reaches 99.9 % of the tower-alone rate (bench/extraction.py).
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def set_torch_threads(cores: int | float | None = None) -> int:
    """torch intra-op threads = ``cores`` (default: ``usable_cores()``), unless ``OMP_NUM_THREADS`` says
    otherwise (the user's choice wins). Returns the count in effect."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, int(cores or usable_cores())))
    return torch.get_num_threads()

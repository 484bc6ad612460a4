"""Data-parallel training on several GPUs (or CPU processes) when launched by ``torchrun`` or
``accelerate launch``: both set RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR, which is all this reads.

Every process walks the same seeded order of samples; each takes its share of every global batch, and
gradients are averaged by ``DistributedDataParallel``. Each rank's loss is weighted by its share of the
batch, so the averaged gradient equals the one-process gradient of the whole batch (ragged last batch
included). Only rank 0 writes checkpoints, the model and progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Distributed:
        """The launcher's process group, or a single process (on CUDA when there is one)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls(device="cuda" if torch.cuda.is_available() else "cpu")
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        else:
            device = "cpu"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), device=device)

    def share(self, rows: list[int]) -> list[int]:
        """This rank's part of a global batch (strided, so every rank gets a near-equal share)."""
        return rows[self.rank :: self.world]

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def mean(self, value: float) -> float:
        """The mean of a number over ranks (for the logged loss)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor) / self.world

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def launch(arguments: list[str], nproc: int) -> int:
    """Run ``overspec ARGUMENTS`` in ``nproc`` processes on this machine with torchrun; its exit status."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return subprocess.call([*command, "-m", "overspec.cli", *arguments])

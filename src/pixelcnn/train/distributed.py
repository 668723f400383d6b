"""Multi-process training with PyTorch DDP, started by ``torchrun``.

    torchrun --nproc_per_node 4 -m pixelcnn train --model gated_pixelcnn --data cifar10 --out runs/c10

Each process trains on its own slice of every global batch (``batch_size``
images per process) and DDP averages the gradients. Process 0 (rank 0)
alone writes files, logs and evaluates. Without ``torchrun`` (WORLD_SIZE
unset or 1) nothing here does anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Distributed:
    rank: int = 0  # this process, 0..world_size-1
    world_size: int = 1  # processes in the run
    local_rank: int = 0  # this process on its machine (its GPU index)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join the process group when started by torchrun; returns (info, this process's device)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), device
    import torch.distributed as dist

    info = Distributed(
        rank=int(os.environ["RANK"]), world_size=world_size, local_rank=int(os.environ.get("LOCAL_RANK", "0"))
    )
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def any_process(flag: bool, info: Distributed, device: torch.device) -> bool:
    """True on every process when ``flag`` is true on any (so that all stop at the same step)."""
    if not info.enabled:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean_over_processes(value: torch.Tensor, info: Distributed) -> torch.Tensor:
    """The mean of a tensor over all processes (itself when not distributed)."""
    if not info.enabled:
        return value
    import torch.distributed as dist

    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def barrier(info: Distributed) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def teardown(info: Distributed) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

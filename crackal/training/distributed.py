"""Data-parallel training under ``torchrun``: one process per GPU (or per CPU worker with the
gloo backend), ``DistributedDataParallel`` averaging the gradients, rank 0 writing the run.

Nothing here runs unless ``torchrun`` (or another launcher) sets ``WORLD_SIZE`` > 1:

    torchrun --nproc_per_node 4 -m crackal train DATA --out runs/ddp --device cuda

Every rank seeds the same way (so the models start equal; DDP also broadcasts rank 0's weights),
draws the same epoch of crop indices and takes its share of them: the global batch is the
``--batch-size`` of a single process, split over the ranks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import distributed as dist

from crackal.errors import CrackalError

Count = TypeVar("Count", bound=int)  # bool or int


def launched() -> bool:
    """True when a launcher started this process as one rank of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: str) -> None:
    """Join the process group (``nccl`` on GPUs, else ``gloo``) when launched by ``torchrun``."""
    if not launched() or dist.is_initialized():
        return
    gpu = device != "cpu" and torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    try:
        dist.init_process_group("nccl" if gpu else "gloo")
    except (RuntimeError, ValueError) as exc:
        raise CrackalError(f"cannot join the torchrun process group ({exc}); "
                           "launch with 'torchrun --nproc_per_node N -m crackal train ...'") from None


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """The number of ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """True on the rank that writes files (rank 0, or the only process)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (nothing to wait for in a single process)."""
    if dist.is_initialized():
        dist.barrier()


@contextmanager
def main_first() -> Iterator[bool]:
    """Inside, rank 0 runs first (writing what the others then read); yields ``is_main()``."""
    if not is_main():
        barrier()
    try:
        yield is_main()
    finally:
        if is_main():
            barrier()


def local_device(device: torch.device) -> torch.device:
    """A rank's own GPU (``cuda:LOCAL_RANK``) under torchrun; ``device`` otherwise."""
    if dist.is_initialized() and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in ``DistributedDataParallel`` when there are several ranks; itself otherwise."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def from_main(value: Count) -> Count:
    """Rank 0's ``value`` (a flag or a count) on every rank (so that all stop after the same epoch)."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor([int(value)])
    dist.broadcast(tensor, 0)
    return type(value)(tensor.item())


def sync_buffers(model: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank: DDP broadcasts them before
    each forward pass, so after an epoch's last step each rank holds its own update of them."""
    if dist.is_initialized():
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def shard(indices: list[int]) -> list[int]:
    """This rank's share of an epoch's indices (every rank drew the same list)."""
    return indices[rank()::world_size()]


def finish() -> None:
    """Wait for every rank, then leave the process group."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

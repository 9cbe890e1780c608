"""torchrun / DistributedDataParallel plumbing shared by the trainings and batch rendering.

Run any training as `torchrun --nproc-per-node N -m corrode train-gan ...`: each rank reads
RANK / WORLD_SIZE / LOCAL_RANK from the environment torchrun sets. NCCL on CUDA, gloo elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from corrode.device import choose_device

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device_name: str = "auto") -> DistContext:
    """Initialise the process group when launched by torchrun; a single-process context otherwise."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistContext(0, 1, 0, choose_device(device_name))
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = choose_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world, local_rank, device)


def teardown(context: DistContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistContext) -> None:
    if context.enabled:
        dist.barrier()


def shard(items: Sequence[T], context: DistContext) -> list[T]:
    """This rank's share of `items`, by index (rank, rank + world, ...): no item twice."""
    return list(items[context.rank :: context.world_size])


def all_reduce_mean(value: torch.Tensor, context: DistContext) -> torch.Tensor:
    """Mean of `value` over ranks (for logging metrics measured on each rank's share)."""
    if not context.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / context.world_size


@contextmanager
def session(device_name: str = "auto") -> Iterator[DistContext]:
    """`setup` on entry, `teardown` on exit, whatever happens in between."""
    context = setup(device_name)
    try:
        yield context
    finally:
        teardown(context)


def wrap(model: torch.nn.Module, context: DistContext, *, compile: bool = False) -> torch.nn.Module:
    """`model` under DistributedDataParallel when there are several ranks (`model` itself otherwise),
    then under `torch.compile` when asked. Weights are saved from the plain module (checkpoint.unwrap)."""
    wrapped = model
    if context.enabled:
        device = context.device
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return torch.compile(wrapped) if compile else wrapped


def gather_to_main(value: dict, context: DistContext) -> list[dict]:
    """Every rank's `value` (tensors and plain containers) as a list on rank 0; `[value]` alone.

    Call on every rank. Tensors go through torch.save bytes: gather_object's own pickling of
    storages is not reliable, and the bytes are read back with `weights_only=True`.
    """
    if not context.enabled:
        return [value]
    import io

    buffer = io.BytesIO()
    torch.save(value, buffer)
    gathered: list | None = [None] * context.world_size if context.is_main else None
    dist.gather_object(buffer.getvalue(), gathered, dst=0)
    return [torch.load(io.BytesIO(blob), weights_only=True) for blob in gathered or []]

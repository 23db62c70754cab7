"""Process groups: spawned one-process-per-GPU runs and ``torchrun`` launches.

Rendezvous of spawned processes goes through a :class:`torch.distributed.FileStore` in a private
temporary folder, so no TCP port is chosen at all (the published tool picked a "free" port and
released it before use, which races with other jobs). Under ``torchrun`` the launcher's
``MASTER_ADDR``/``MASTER_PORT`` rendezvous is used (``init_method="env://"``).
Backends: NCCL between GPUs, Gloo on CPU.
"""

from __future__ import annotations

import datetime
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from spIsoNet.engine.device import DevicePlan, LaunchEnv

TIMEOUT = datetime.timedelta(minutes=30)


@dataclass
class DistContext:
    """Where this process stands in the run, and the device it computes on."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        """Whether several processes take part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is global rank 0 (the one that returns results)."""
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over processes in place (no-op in a single process)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def reduce_to_main(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over processes into rank 0 (in place; no-op in one process)."""
        if self.distributed:
            dist.reduce(tensor, dst=0, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_int(self, value: int) -> int:
        """Rank 0's ``value`` on every process."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.broadcast(t, src=0)
        return int(t.item())

    def barrier(self) -> None:
        """Wait until every process has arrived here."""
        if self.distributed:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()


def _device_for(plan: DevicePlan, local_rank: int) -> torch.device:
    if plan.kind == "cuda":
        index = plan.gpu_ids[local_rank % len(plan.gpu_ids)]
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def single_process(plan: DevicePlan) -> DistContext:
    """Context of an ordinary one-process run."""
    torch.set_num_threads(plan.threads)
    return DistContext(device=_device_for(plan, 0))


def join_spawned(rank: int, world_size: int, store_path: str, plan: DevicePlan) -> DistContext:
    """Join the group of spawned processes as ``rank`` (file store) and pick its device."""
    torch.set_num_threads(plan.threads)
    device = _device_for(plan, rank)
    backend = "nccl" if plan.kind == "cuda" else "gloo"
    store = dist.FileStore(store_path, world_size)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=TIMEOUT)
    return DistContext(device=device, rank=rank, world_size=world_size, owns_group=True)


def join_launcher(env: LaunchEnv, plan: DevicePlan) -> DistContext:
    """Join the ``torchrun`` group: one process per GPU of each node (``LOCAL_RANK`` picks it)."""
    torch.set_num_threads(plan.threads)
    device = _device_for(plan, env.local_rank)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if plan.kind == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://", timeout=TIMEOUT)
        owns = True
    return DistContext(device=device, rank=env.rank, world_size=env.world_size, owns_group=owns)


def leave(ctx: DistContext) -> None:
    """Destroy the process group if this context created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def maybe_no_sync(module, skip: bool):
    """DDP's ``no_sync`` when ``skip`` (accumulating micro-batches), else nothing."""
    if skip and hasattr(module, "no_sync"):
        with module.no_sync():
            yield
    else:
        yield

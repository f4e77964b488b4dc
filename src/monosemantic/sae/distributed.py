"""torchrun / DDP helpers: the backend follows the training device (NCCL for CUDA, gloo otherwise), one GPU per
rank (``LOCAL_RANK``); everything is a no-op in one process."""

from __future__ import annotations

import gc
import inspect
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

_OWNED = False


def setup(device: torch.device | None = None) -> tuple[int, int]:
    """(rank, world size); initialises the process group from torchrun's environment when needed, with the
    backend of the device the tensors live on."""
    global _OWNED
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        _OWNED = True
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def teardown(sync: bool = True) -> None:
    """Destroy the process group ``setup`` created. A rank that exits while anything still holds the group (a
    DDP wrapper left in a reference cycle keeps it alive past ``destroy_process_group``) can abort at interpreter
    shutdown with "terminate called without an active exception", so collect those first and let every rank
    get here before any of them closes its connections. ``sync=False`` skips that meeting: a rank leaving on an
    error must not wait for ranks that may be stuck elsewhere."""
    global _OWNED
    if _OWNED and dist.is_initialized():
        gc.collect()
        if sync:
            dist.barrier()
        dist.destroy_process_group()
        gc.collect()
    _OWNED = False


def local_world() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def any_reduce(mask: Tensor) -> Tensor:
    """Logical OR of a bool tensor over ranks."""
    if not dist.is_initialized():
        return mask
    m = mask.to(torch.uint8)
    dist.all_reduce(m, op=dist.ReduceOp.MAX)
    return m.bool()


def wrap(module: nn.Module, device: torch.device | None = None) -> nn.Module:
    # buffers (BatchTopK θ) are updated from all-reduced statistics, identically on every rank, so they need no
    # sync in forward; newer torch renamed the switch and warns on the old name
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    flag = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    ids = [device] if device is not None and device.type == "cuda" else None
    switch: dict[str, Any] = {flag: False}
    return DistributedDataParallel(module, device_ids=ids, **switch)

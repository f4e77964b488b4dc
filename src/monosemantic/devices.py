"""Device names as users write them (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``) and the torch devices they mean.

Every stage takes the same ``--device`` option and resolves it here, so "auto" means one thing everywhere: the
CUDA device of this process when torch sees one (``LOCAL_RANK`` picks it under torchrun), else the CPU. MPS is used
only when asked for by name: several sparse ops the trainer needs fall back to the CPU there.
"""

from __future__ import annotations

import os
import re

import torch

from monosemantic.errors import UserError

DEVICE_HELP = "auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps"


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device for a user's device name; a one-line ``UserError`` when it is unknown or absent here."""
    if isinstance(name, torch.device):
        return name
    text = (name or "auto").strip().lower()
    if text == "auto":
        return _local_cuda() if torch.cuda.is_available() else torch.device("cpu")
    if text in ("cpu", "meta"):  # meta: shape-only tensors, for tests of device propagation
        return torch.device(text)
    m = re.fullmatch(r"cuda(?::(\d+))?", text)
    if m:
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
            raise UserError(f"--device {name}: CUDA is not available here (torch {torch.__version__}, {build}); "
                            "use --device cpu or auto")
        if m.group(1) is None:
            return _local_cuda()
        index, count = int(m.group(1)), torch.cuda.device_count()
        if index >= count:
            raise UserError(f"--device {name}: this machine has {count} CUDA device(s), numbered 0 to {count - 1}")
        return torch.device("cuda", index)
    if text == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UserError(f"--device {name}: MPS is not available here; use --device cpu or auto")
        return torch.device("mps")
    raise UserError(f"unknown device {name!r}; use {DEVICE_HELP}")


def _local_cuda() -> torch.device:
    # one GPU per torchrun rank; a single process takes the current device
    local = os.environ.get("LOCAL_RANK")
    index = int(local) % max(1, torch.cuda.device_count()) if local is not None else torch.cuda.current_device()
    return torch.device("cuda", index)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a host batch to ``device``: through pinned memory and without blocking the host when that is CUDA."""
    if x.device == device:
        return x
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)

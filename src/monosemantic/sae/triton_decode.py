"""The sparse decode ``out[b] = Σ_s vals[b, s] · W[idx[b, s]]`` as a Triton kernel for CUDA.

One program per (row, block of d): it walks the row's k kept latents and accumulates their decoder rows in float32
registers, so the decode reads B·k·d decoder entries and writes B·d outputs, with no [B, k, d] temporary. Used by
``ops.gather_sum`` on CUDA when ``triton`` imports; ``MONOSEMANTIC_TRITON=0`` (or ``set_enabled(False)``) turns it
off and the eager ``embedding_bag`` runs instead.
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from typing import Any

import torch
from torch import Tensor

_ENABLED = os.environ.get("MONOSEMANTIC_TRITON", "1") != "0"


def set_enabled(flag: bool) -> None:
    """Switch the Triton decode on or off for this process."""
    global _ENABLED
    _ENABLED = flag


def _triton() -> tuple[Any, Any]:
    """``triton`` and ``triton.language``, optional (CUDA machines only): imported by name, so a machine without
    them type-checks this module too. Raises ImportError when they are missing."""
    return importlib.import_module("triton"), importlib.import_module("triton.language")


@cache
def _kernel() -> Any:
    try:
        triton, tl = _triton()
    except ImportError:
        return None

    @triton.jit
    def gather_sum_kernel(idx_ptr, vals_ptr, w_ptr, out_ptr, k, d, BLOCK_D: tl.constexpr):  # pyright: ignore[reportInvalidTypeForm]
        row = tl.program_id(0)
        offs = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        mask = offs < d
        acc = tl.zeros([BLOCK_D], dtype=tl.float32)
        for s in range(0, k):
            j = tl.load(idx_ptr + row * k + s).to(tl.int64)
            v = tl.load(vals_ptr + row * k + s).to(tl.float32)
            w = tl.load(w_ptr + j * d + offs, mask=mask, other=0.0).to(tl.float32)
            acc += v * w
        tl.store(out_ptr + row.to(tl.int64) * d + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)

    return gather_sum_kernel


def enabled() -> bool:
    return _ENABLED and _kernel() is not None


def gather_sum(idx: Tensor, vals: Tensor, W: Tensor) -> Tensor:
    """[B, d] decode of the kept (idx, vals) [B, k] through the decoder rows W [F, d]."""
    triton, _ = _triton()
    idx, vals, W = idx.contiguous(), vals.to(W.dtype).contiguous(), W.contiguous()
    B, k = idx.shape
    d = W.shape[1]
    out = torch.empty(B, d, dtype=W.dtype, device=W.device)
    if B == 0:
        return out
    block = min(256, triton.next_power_of_2(d))
    _kernel()[(B, triton.cdiv(d, block))](idx, vals, W, out, k, d, BLOCK_D=block)
    return out

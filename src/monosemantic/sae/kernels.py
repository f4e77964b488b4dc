"""Sparse TopK autograd: the encoder backward touches only the kept latents, the decoder works from indices.

Dense autograd forms a [B, d_sae] gradient; here every backward product is a gather or a scatter over the
B·k kept entries. The dense encoder matmul stays (every pre-activation is needed to select the
top k); with ``bf16=True`` it runs in bfloat16 and the kept values are then recomputed exactly in float32, so
bf16 only decides *which* latents win near-ties.

The same code runs on every device: the primitives are the torch operators of ``ops.py`` (compiled kernels on the
CPU, gathers and ``index_add_`` or Triton elsewhere). Off the CPU, AuxK's dead-latent selection avoids the data-
dependent ``nonzero`` so that a training step never waits for the device.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from monosemantic.sae import ops

SYNC_FREE = ops.ThreadFlag()
sync_free_paths = SYNC_FREE.on
"""Take the paths written for accelerators on the CPU too (tests compare them with the CPU paths)."""


def sync_free(t: Tensor) -> bool:
    """Whether selections on ``t`` must avoid data-dependent shapes: off the CPU (or when tests force it)."""
    return t.device.type != "cpu" or bool(SYNC_FREE)


def encoder_rows(W_enc: Tensor) -> Tensor:
    """The encoder as rows [d_sae, d_in]: free when ``W_enc`` is stored as a transposed view (see ``SAE.__init__``)."""
    return W_enc.t().contiguous()


def aux_topk(
    pre: Tensor, xc: Tensor, W_enc: Tensor, b_enc: Tensor, dead_mask: Tensor | None, k_aux: int, low: bool
) -> tuple[Tensor, Tensor]:
    """AuxK's inputs: per row, the k_aux largest pre-activations among dead latents (values, latent ids).

    On the CPU this works on the dead columns only (their count sets the width); elsewhere it takes the top k_aux
    of all columns with the live ones at −inf and zeroes what is not dead, so the shapes do not depend on the data.
    With a low-precision ``pre`` the kept values are recomputed in float32.
    """
    B = xc.shape[0]
    empty = (xc.new_zeros(B, 0), torch.zeros(B, 0, dtype=torch.int64, device=xc.device))
    if dead_mask is None or k_aux <= 0:
        return empty
    if sync_free(xc):
        return dead_topk(pre.to(xc.dtype) + b_enc, dead_mask, k_aux, W_enc, b_enc, xc if low else None)
    dead = dead_mask.nonzero().flatten()
    ka = min(k_aux, dead.numel())
    if ka == 0:
        return empty
    sub = pre.index_select(1, dead).to(xc.dtype) + b_enc[dead]
    av, ai = ops.topk_rows(sub.contiguous(), ka)
    aux_idx = dead[ai]
    if low:
        av = ops.gather_dot(aux_idx, encoder_rows(W_enc), xc) + b_enc[aux_idx]
    return av.to(xc.dtype).clamp_min_(0), aux_idx


def dead_topk(acts: Tensor, dead_mask: Tensor, k_aux: int, W_enc: Tensor | None = None, b_enc: Tensor | None = None,
              xc: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top ``min(k_aux, F)`` of each row of ``acts`` [B, F] among the dead latents, without a host sync.

    Entries that are not dead come out with value 0 (no gradient, nothing decoded). With ``xc`` the kept values are
    recomputed exactly as ``xc · W_enc[:, j] + b_enc[j]``.
    """
    ka = min(k_aux, acts.shape[1])
    z = torch.where(dead_mask[None], acts, torch.full_like(acts, -torch.inf))
    av, ai = z.topk(ka, dim=1, sorted=False)
    if xc is not None and W_enc is not None and b_enc is not None:
        av = ops.gather_dot(ai, encoder_rows(W_enc), xc) + b_enc[ai]
    av = torch.where(dead_mask[ai], av, torch.zeros_like(av))
    return av.clamp_min(0), ai


class TopKEncode(torch.autograd.Function):
    """``(x, b_dec, W_enc, b_enc) -> vals [B,k], idx [B,k], aux_vals [B,k_aux], aux_idx [B,k_aux]``.

    vals = ReLU of the k largest pre-activations per row (the raw pre-activations with ``relu=False``, for
    activations such as the G-SAE's sigmoid that apply their own function to the kept logits); the aux outputs
    are the k_aux largest among the latents in ``dead_mask`` (AuxK), read from the same pre-activation matrix.
    Empty [B, 0] when there is no dead mask.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, b_dec: Tensor, W_enc: Tensor, b_enc: Tensor, k: int,
        dead_mask: Tensor | None, k_aux: int, bf16: bool, apply_b_dec: bool, relu: bool = True,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        xc = (x - b_dec if apply_b_dec else x).contiguous()
        low = bf16 and xc.dtype == torch.float32
        pre = torch.mm(xc.bfloat16(), W_enc.bfloat16()) if low else torch.mm(xc, W_enc)
        vals, idx = ops.topk_rows(pre, k, b_enc.contiguous())
        rows = None
        if low:  # exact float32 values of the selected latents
            rows = encoder_rows(W_enc)
            vals = ops.gather_dot(idx, rows, xc) + b_enc[idx]
        vals = vals.to(xc.dtype)
        if relu:
            vals.clamp_min_(0)
        aux_vals, aux_idx = aux_topk(pre, xc, W_enc, b_enc, dead_mask, k_aux, low)
        ctx.save_for_backward(xc, W_enc, idx, vals, aux_idx, aux_vals)
        ctx.apply_b_dec, ctx.relu = apply_b_dec, relu
        ctx.mark_non_differentiable(idx, aux_idx)
        return vals, idx, aux_vals, aux_idx

    @staticmethod
    def backward(ctx: Any, g_vals: Tensor, _gi: Any, g_aux: Tensor, _ga: Any) -> tuple[Any, ...]:
        xc, W_enc, idx, vals, aux_idx, aux_vals = ctx.saved_tensors
        # a kept value of 0 sits on the flat side of the ReLU: no gradient (dense autograd agrees)
        g = g_vals * (vals > 0) if ctx.relu else g_vals
        if aux_idx.shape[1] and g_aux is not None:
            idx = torch.cat([idx, aux_idx], 1)
            g = torch.cat([g, g_aux * (aux_vals > 0)], 1)
        g = g.contiguous()
        F = W_enc.shape[1]
        g_b_enc = torch.zeros(F, dtype=g.dtype, device=g.device).index_add_(0, idx.reshape(-1), g.reshape(-1))
        g_W_enc = ops.scatter_rows(idx, g, xc, F).t()
        if W_enc.stride() != g_W_enc.stride():
            g_W_enc = g_W_enc.contiguous()
        g_b_dec = -(W_enc @ g_b_enc) if ctx.apply_b_dec and ctx.needs_input_grad[1] else None
        g_x = None
        if ctx.needs_input_grad[0]:
            g_x = ops.gather_sum(idx, g, encoder_rows(W_enc))
        return g_x, g_b_dec, g_W_enc, g_b_enc, None, None, None, None, None, None


class SparseDecode(torch.autograd.Function):
    """``(idx [B,k], vals [B,k], W_dec [F,d]) -> Σ_s vals[b,s] W_dec[idx[b,s]]`` (no bias)."""

    @staticmethod
    def forward(ctx: Any, idx: Tensor, vals: Tensor, W_dec: Tensor) -> Tensor:
        vals = vals.contiguous()
        ctx.save_for_backward(idx, vals, W_dec)
        return ops.gather_sum(idx, vals, W_dec)

    @staticmethod
    def backward(ctx: Any, g_out: Tensor) -> tuple[Any, ...]:
        idx, vals, W_dec = ctx.saved_tensors
        g_out = g_out.contiguous()
        g_vals = ops.gather_dot(idx, W_dec, g_out) if ctx.needs_input_grad[1] else None
        g_W = ops.scatter_rows(idx, vals, g_out, W_dec.shape[0]) if ctx.needs_input_grad[2] else None
        return None, g_vals, g_W


def topk_encode(
    x: Tensor, b_dec: Tensor, W_enc: Tensor, b_enc: Tensor, k: int, *, dead_mask: Tensor | None = None,
    k_aux: int = 0, bf16: bool = False, apply_b_dec: bool = True, relu: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    out = TopKEncode.apply(x, b_dec, W_enc, b_enc, k, dead_mask, k_aux, bf16, apply_b_dec, relu)
    return out


def sparse_decode(idx: Tensor, vals: Tensor, W_dec: Tensor) -> Tensor:
    return SparseDecode.apply(idx, vals, W_dec)

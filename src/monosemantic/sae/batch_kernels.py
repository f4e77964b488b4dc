"""Sparse BatchTopK / Matryoshka autograd: kept entries as flattened (row, col, val) triplets.

BatchTopK keeps the ``int(k·B)`` largest entries of the whole [B, F] batch, so rows hold a variable number of
latents. The kept entries travel as triplets (any count per row, zero rows included); every backward product is a
gather or a scatter over them (``ops.tri_*``), so no dense [B, F] gradient is ever formed.
The dense encoder matmul stays, in bfloat16 when asked, with the kept values recomputed exactly in float32.

On the CPU, selection does not sort the B·F matrix: each row's top ``cap`` candidates (``ops.topk_rows``) hold
every entry of the batch top-n unless some row has all its candidates selected; such rows then compete with all
their entries. On other devices one ``topk`` over the flattened batch selects the n entries with no host sync.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from monosemantic.sae import ops
from monosemantic.sae.kernels import aux_topk, encoder_rows, sync_free


def batch_topk_select(pre: Tensor, bias: Tensor, n: int, cap: int) -> tuple[Tensor, Tensor, Tensor]:
    """Rows, cols and values (float32 or the input dtype) of the n largest entries of ``pre + bias`` [B, F].

    Entries come out in row order. Ties at the cut are broken by ``torch.topk`` among the candidates.
    """
    B, F = pre.shape
    if sync_free(pre):
        vals, flat_idx = (pre.to(bias.dtype) + bias).reshape(-1).topk(n, sorted=False)
        rows = torch.div(flat_idx, F, rounding_mode="floor")
        return rows, flat_idx - rows * F, vals
    cap = max(1, min(cap, F))
    cv, ci = ops.topk_rows(pre, cap, bias.contiguous())
    flat = cv.reshape(-1)
    sel = flat.topk(min(n, flat.numel()), sorted=False).indices
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[sel] = True
    sat = keep.view(B, cap).all(1)
    if cap == F or not bool(sat.any()):
        pos = keep.nonzero().squeeze(1)
        return pos // cap, ci.reshape(-1)[pos], flat[pos]
    # A row that kept all its candidates may own more of the top n: take those rows whole. Adding candidates only
    # raises the cut, so the other rows' non-candidates (below one of their unkept candidates) stay out.
    full, part = sat.nonzero().squeeze(1), (~sat).nonzero().squeeze(1)
    vals = torch.cat([cv[part].reshape(-1), (pre[full].to(cv.dtype) + bias.to(cv.dtype)).reshape(-1)])
    cols = torch.cat([ci[part].reshape(-1), torch.arange(F, device=pre.device).repeat(full.numel())])
    rows = torch.cat([part.repeat_interleave(cap), full.repeat_interleave(F)])
    sel = vals.topk(n, sorted=False).indices
    sel = sel[torch.sort(rows[sel], stable=True).indices]
    return rows[sel], cols[sel], vals[sel]


class BatchTopKEncode(torch.autograd.Function):
    """``(x, b_dec, W_enc, b_enc) -> vals [n], rows [n], cols [n], aux_vals [B, k_aux], aux_idx [B, k_aux]``.

    vals = ReLU of the ``n = int(k·B)`` largest pre-activations of the batch; AuxK outputs as in ``TopKEncode``.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, b_dec: Tensor, W_enc: Tensor, b_enc: Tensor, k: float,
        dead_mask: Tensor | None, k_aux: int, bf16: bool, apply_b_dec: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        xc = (x - b_dec if apply_b_dec else x).contiguous()
        low = bf16 and xc.dtype == torch.float32
        pre = torch.mm(xc.bfloat16(), W_enc.bfloat16()) if low else torch.mm(xc, W_enc)
        B, F = pre.shape
        n = max(1, min(int(k * B), B * F))
        rows, cols, vals = batch_topk_select(pre, b_enc, n, 4 * max(1, round(k)))
        wr = None
        if low:  # exact float32 values of the selected latents
            wr = encoder_rows(W_enc)
            vals = ops.tri_gather_dot(rows, cols, wr, xc) + b_enc[cols]
        vals = vals.to(xc.dtype).clamp_min_(0)
        aux_vals, aux_idx = aux_topk(pre, xc, W_enc, b_enc, dead_mask, k_aux, low)
        ctx.save_for_backward(xc, W_enc, rows, cols, vals, aux_idx, aux_vals)
        ctx.apply_b_dec = apply_b_dec
        ctx.mark_non_differentiable(rows, cols, aux_idx)
        return vals, rows, cols, aux_vals, aux_idx

    @staticmethod
    def backward(ctx: Any, g_vals: Tensor, _gr: Any, _gc: Any, g_aux: Tensor, _ga: Any) -> tuple[Any, ...]:
        xc, W_enc, rows, cols, vals, aux_idx, aux_vals = ctx.saved_tensors
        B, F = xc.shape[0], W_enc.shape[1]
        # a kept value of 0 sits on the flat side of the ReLU: no gradient (dense autograd agrees)
        g = g_vals * (vals > 0) if g_vals is not None else torch.zeros_like(vals)
        ka = aux_idx.shape[1]
        if ka and g_aux is not None:
            rows = torch.cat([rows, torch.arange(B, device=rows.device).repeat_interleave(ka)])
            cols = torch.cat([cols, aux_idx.reshape(-1)])
            g = torch.cat([g, (g_aux * (aux_vals > 0)).reshape(-1)])
        g = g.contiguous()
        g_b_enc = torch.zeros(F, dtype=g.dtype, device=g.device).index_add_(0, cols, g)
        g_W_enc = ops.tri_scatter_rows(rows, cols, g, xc, F).t()
        if W_enc.stride() != g_W_enc.stride():
            g_W_enc = g_W_enc.contiguous()
        g_b_dec = -(W_enc @ g_b_enc) if ctx.apply_b_dec and ctx.needs_input_grad[1] else None
        g_x = ops.tri_gather_sum(rows, cols, g, encoder_rows(W_enc), B) if ctx.needs_input_grad[0] else None
        return g_x, g_b_dec, g_W_enc, g_b_enc, None, None, None, None, None


class TripletDecode(torch.autograd.Function):
    """``(orow [n], col [n], val [n], W [F, d]) -> out [n_out, d]``, ``out[r] = Σ_{orow[s]=r} val[s]·W[col[s]]``."""

    @staticmethod
    def forward(ctx: Any, orow: Tensor, col: Tensor, val: Tensor, W: Tensor, n_out: int) -> Tensor:
        val = val.contiguous()
        ctx.save_for_backward(orow, col, val, W)
        return ops.tri_gather_sum(orow, col, val, W, n_out)

    @staticmethod
    def backward(ctx: Any, g_out: Tensor) -> tuple[Any, ...]:
        orow, col, val, W = ctx.saved_tensors
        g_out = g_out.contiguous()
        g_val = ops.tri_gather_dot(orow, col, W, g_out) if ctx.needs_input_grad[2] else None
        g_W = ops.tri_scatter_rows(orow, col, val, g_out, W.shape[0]) if ctx.needs_input_grad[3] else None
        return None, None, g_val, g_W, None


def batch_topk_encode(
    x: Tensor, b_dec: Tensor, W_enc: Tensor, b_enc: Tensor, k: float, *, dead_mask: Tensor | None = None,
    k_aux: int = 0, bf16: bool = False, apply_b_dec: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """vals, rows, cols of the batch top-k (kept entries) and the AuxK aux_vals, aux_idx [B, k_aux]."""
    out = BatchTopKEncode.apply(x, b_dec, W_enc, b_enc, k, dead_mask, k_aux, bf16, apply_b_dec)
    return out


def triplet_decode(rows: Tensor, cols: Tensor, vals: Tensor, W_dec: Tensor, n_rows: int) -> Tensor:
    """``Σ`` of the kept entries of each row times their decoder rows: [n_rows, d] (no bias)."""
    return TripletDecode.apply(rows, cols, vals, W_dec, n_rows)


def prefix_decode(rows: Tensor, cols: Tensor, vals: Tensor, W_dec: Tensor, b_dec: Tensor, n_rows: int,
                  ends: Tensor) -> Tensor:
    """Matryoshka prefix reconstructions [G, B, d]: ``b_dec + Σ`` over kept entries with col < ends[i].

    One decode writes each entry into the slot of its group (per-group partial sums); a cumulative sum over the
    groups turns them into the nested prefixes.
    """
    G = ends.numel()
    grp = torch.bucketize(cols, ends.to(cols.dtype), right=True)
    partial = triplet_decode(grp * n_rows + rows, cols, vals, W_dec, G * n_rows).view(G, n_rows, -1)
    return partial.cumsum(0) + b_dec

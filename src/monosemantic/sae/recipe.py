"""Pieces of the training recipe shared by all architectures (after arXiv 2406.04093)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from monosemantic.sae import ops

_FOREACH: Any = torch
"""torch, for its foreach kernels (``_foreach_norm``, ``_foreach_mul_``), which its type stubs do not export."""


def geometric_median(X: Tensor, max_iter: int = 100, tol: float = 1e-5) -> Tensor:
    """Weiszfeld iteration from the mean (the b_dec init of arXiv 2406.04093); float64 accumulation."""
    X = X.double()
    g = X.mean(0)
    for _ in range(max_iter):
        w = 1.0 / ((X - g).norm(dim=1) + 1e-12)
        g_new = (w[:, None] * X).sum(0) / w.sum()
        done = float((g_new - g).norm()) < tol
        g = g_new
        if done:
            break
    return g.float()


def default_lr(d_sae: int, c: float = 2.5e-3) -> float:
    """``c / sqrt(F / 2^14)`` (the width scaling of arXiv 2406.04093, §2.4).

    The reference constant is c = 2e-4 (tuned for runs of billions of tokens). For the TopK family we use
    c = 2.5e-3: with inputs at unit mean squared norm, gradient clipping and the final decay it gave the best
    held-out FVU for runs of about a million tokens (MiniLM layer 3, F = 6144, 1M tokens: FVU 0.184 with
    c = 6e-4, 0.138 with c = 2e-3, 0.132 with c = 3e-3 but a fifth of the latents dead; c = 2e-4 reached only
    0.207 after 2M tokens). Long runs may prefer a smaller --lr. Each architecture states its c
    (``SAE.lr_constant``).
    """
    return c / math.sqrt(d_sae / 2**14)


def dimension_weights(x: Tensor, alpha: float, norm: str = "max") -> Tensor:
    """WSAE weights ``γ = s^α`` per input dimension (Cui et al., arXiv 2506.15963, the reweighted loss): ``s`` is
    each dimension's variance over the rows ``x`` [N, d] (already input-scaled), divided by its max or mean
    (``norm``; the paper leaves the normalisation open). The loss multiplies squared errors by ``γ²``; α = 0 gives
    the plain SAE. Float32 [d]."""
    s = x.double().var(0, unbiased=False)
    if norm == "max":
        s = s / s.max().clamp_min(1e-30)
    elif norm == "mean":
        s = s / s.mean().clamp_min(1e-30)
    return s.clamp_min(0).pow(alpha).float()


def steps_of(value: float, total: int) -> int:
    """A fraction of the run when below 1, else a step count."""
    return round(value * total) if 0 < value < 1 else int(value)


def lr_factor(step: int, total: int, warmup: int, decay: int) -> float:
    """Linear warm-up over ``warmup`` steps, flat, then linear decay to 0 over the last ``decay`` steps."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if decay > 0 and step >= total - decay:
        return max(total - step, 0) / decay
    return 1.0


@torch.no_grad()
def remove_parallel_grad(W_dec: nn.Parameter) -> None:
    """Project out the component of each decoder-row gradient along its row (arXiv 2406.04093)."""
    if W_dec.grad is not None:
        ops.project_rows_(W_dec.detach(), W_dec.grad)


@torch.no_grad()
def renormalise_rows(W_dec: nn.Parameter) -> None:
    ops.renorm_rows_(W_dec.detach())


@torch.no_grad()
def clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> Tensor | None:
    """Clip the global gradient norm with foreach kernels (the generic utility is slower on CPU); returns the norm.

    The scale is ``min(1, max_norm / (norm + 1e-6))``, formed in float64. Off the CPU it stays a tensor and every
    gradient is multiplied by it, so the device is never waited for; on the CPU, where reading it costs nothing, the
    multiplication is skipped when nothing is clipped.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or max_norm <= 0:
        return None
    norms = _FOREACH._foreach_norm(grads, 2.0)
    total = torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))
    coef = (max_norm / (total.double() + 1e-6)).clamp_max(1.0)
    if total.device.type == "cpu":
        if float(coef) < 1:
            _FOREACH._foreach_mul_(grads, float(coef))
    else:
        _FOREACH._foreach_mul_(grads, coef.to(grads[0].dtype))
    return total

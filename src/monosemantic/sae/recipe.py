"""Pieces of the training recipe shared by all architectures (methods.md §A.8-A.11)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def geometric_median(X: Tensor, max_iter: int = 100, tol: float = 1e-5) -> Tensor:
    """Weiszfeld iteration from the mean (§A.9); float64 accumulation."""
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


def default_lr(d_sae: int) -> float:
    """``2e-4 / sqrt(F / 2^14)`` (§A.11)."""
    return 2e-4 / math.sqrt(d_sae / 2**14)


def steps_of(value: float, total: int) -> int:
    """A fraction of the run when below 1, else a step count."""
    return int(round(value * total)) if 0 < value < 1 else int(value)


def lr_factor(step: int, total: int, warmup: int, decay: int) -> float:
    """Linear warm-up over ``warmup`` steps, flat, then linear decay to 0 over the last ``decay`` steps."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if decay > 0 and step >= total - decay:
        return max(total - step, 0) / decay
    return 1.0


@torch.no_grad()
def remove_parallel_grad(W_dec: nn.Parameter) -> None:
    """Project out the component of each decoder-row gradient along its row (§A.8)."""
    g = W_dec.grad
    if g is None:
        return
    n = W_dec.norm(dim=1, keepdim=True) + 1e-6
    d = W_dec / n
    g.sub_((g * d).sum(1, keepdim=True) * d)


@torch.no_grad()
def renormalise_rows(W_dec: nn.Parameter) -> None:
    W_dec.div_(W_dec.norm(dim=1, keepdim=True) + 1e-12)


@torch.no_grad()
def clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> float:
    """Clip the global gradient norm; foreach kernels (the generic utility is slower on CPU)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or max_norm <= 0:
        return 0.0
    norms = torch._foreach_norm(grads, 2.0)
    total = torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))
    coef = max_norm / (float(total) + 1e-6)
    if coef < 1:
        torch._foreach_mul_(grads, coef)
    return float(total)

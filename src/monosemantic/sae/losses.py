"""Loss terms. Each is a small callable ``(sae, out, ctx) -> scalar`` (a :class:`~monosemantic.sae.types.LossTerm`);
the trainer sums a list of them.

:func:`loss_terms` is that list for one SAE: the reconstruction first (the architecture's own,
``SAE.reconstruction_loss``, or the plain :class:`Reconstruction`), then the architecture's other terms
(``SAE.losses``). Callers can append terms (supervised terms on chosen latents, ...) through
``train(..., extra_losses=[...])`` without touching an architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from monosemantic.sae.kernels import sparse_decode
from monosemantic.sae.types import ArchOptions, LossTerm, StepContext, StepOutput

if TYPE_CHECKING:
    from monosemantic.sae.core import SAE


def loss_terms(sae: SAE, rec_loss: str, options: ArchOptions, coefficient: float | None,
               rec_weight: Tensor | None = None, extra: Sequence[LossTerm] = ()) -> list[LossTerm]:
    """Every term ``sae`` trains with, in the order they are summed: its reconstruction (``rec_loss``, each input
    dimension's error weighted by ``rec_weight`` [d_in] when given), its own terms at the sweep's ``coefficient``
    (None: its default), then ``extra``."""
    own = sae.reconstruction_loss(rec_loss, options, rec_weight)
    reconstruction = own if own is not None else Reconstruction(rec_loss, rec_weight)
    return [reconstruction, *sae.losses(options, coefficient), *extra]


def _ramp(ctx: StepContext, warmup: float) -> float:
    """``s(t) = min(t / warm-up steps, 1)``; a warm-up below 1 is a fraction of the run."""
    steps = warmup * ctx.total_steps if 0 < warmup < 1 else warmup
    return 1.0 if steps <= 0 else min(ctx.step / steps, 1.0)


def _sq_err(x: Tensor, x_hat: Tensor, weight: Tensor | None) -> Tensor:
    err = (x - x_hat).pow(2)
    if weight is not None:
        err = err * weight
    return err.sum(-1).mean()


@dataclass
class Reconstruction:
    """``mean_b ||x − x̂||²`` (``sum_mse``) or that divided by the batch variance (``normalized_mse``).

    ``weight`` (shape [d_in]) multiplies each input dimension's squared error: γ² of the weighted SAE (WSAE, Cui
    et al., arXiv 2506.15963), see :func:`monosemantic.sae.recipe.dimension_weights`.
    """

    kind: str = "sum_mse"
    weight: Tensor | None = None
    name: str = "mse"

    def __call__(self, _sae: SAE, out: StepOutput, _ctx: StepContext) -> Tensor:
        loss = _sq_err(out.x, out.x_hat, self.weight)
        if self.kind == "normalized_mse":
            loss = loss / (out.x - out.x.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-12)
        return loss


@dataclass
class MatryoshkaReconstruction:
    """Σ_i (``sum``) or mean_i/G (``dl_weighted_mean``) of the prefix reconstruction errors (Bussmann et al. 2025,
    arXiv 2503.17547); ``weight`` [d_in] weights each input dimension as in :class:`Reconstruction`."""

    kind: str = "sum"
    weight: Tensor | None = None
    name: str = "mse"

    def __call__(self, _sae: SAE, out: StepOutput, _ctx: StepContext) -> Tensor:
        stack = out.extras.get("prefix_stack")
        if stack is not None:  # [G, B, d] from the sparse path: one fused pass instead of G
            err = (out.x - stack).pow(2)
            total = (err if self.weight is None else err * self.weight).sum(-1).mean(-1).sum()
            n = stack.shape[0]
        else:
            prefix = out.prefix_recons
            if prefix is None:
                raise ValueError("the Matryoshka reconstruction needs the prefix reconstructions of the forward")
            total = torch.stack([_sq_err(out.x, r, self.weight) for r in prefix]).sum()
            n = len(prefix)
        if self.kind == "dl_weighted_mean":
            total = total / n**2
        return total


@dataclass
class AuxK:
    """Dead-latent revival (Gao et al. 2024, arXiv 2406.04093, Appendix A.2): the top k_aux dead latents reconstruct the
    detached residual. Zero when no latent is dead (kept as a tensor factor, so the device is never waited for)."""

    alpha: float = 1 / 32
    norm: str = "residual_variance"
    k_aux: int = 1
    name: str = "auxk"

    def __call__(self, sae: SAE, out: StepOutput, ctx: StepContext) -> Tensor:
        if self.alpha == 0 or out.aux_idx is None or out.aux_vals is None or out.aux_idx.shape[1] == 0:
            return out.x.new_zeros(())
        e = (out.x - out.x_hat).detach()
        e_hat = sparse_decode(out.aux_idx, out.aux_vals, sae.W_dec)
        raw = (e - e_hat).pow(2).sum(-1).mean()
        dead = ctx.dead_mask
        if self.norm == "scaled_count":
            n_dead = dead.sum().double() if dead is not None else raw.new_zeros((), dtype=torch.float64)
            loss = raw * (n_dead / max(self.k_aux, 1)).clamp_max(1.0).to(raw.dtype)
        else:
            loss = (raw / (e - e.mean(0)).pow(2).sum(-1).mean()).nan_to_num(0.0)
            if dead is not None:
                loss = loss * dead.any()
        return self.alpha * loss


@dataclass
class L1:
    """λ·s(t)·mean_b Σ_j |f_j| (``unit_norm``) or Σ_j f_j·||W_dec[j]|| (``decoder_norm``, Anthropic 2024)."""

    coefficient: float
    warmup: float = 0.05
    variant: str = "unit_norm"
    name: str = "l1"

    def __call__(self, sae: SAE, out: StepOutput, ctx: StepContext) -> Tensor:
        assert out.acts is not None
        f = out.acts
        weights = sae.W_dec.norm(dim=1) if self.variant == "decoder_norm" else None
        pen = (f * weights).sum(-1).mean() if weights is not None else f.abs().sum(-1).mean()
        return self.coefficient * _ramp(ctx, self.warmup) * pen


@dataclass
class JumpReLUSparsity:
    """``l0``: λ·s(t)·L0 (paper), or ``target_l0``: λ·s(t)·(L0/L0_target − 1)² (dictionary_learning)."""

    kind: str = "l0"
    coefficient: float = 1.0
    target_l0: float = 20.0
    warmup: float = 0.05
    name: str = "sparsity"

    def __call__(self, _sae: SAE, out: StepOutput, ctx: StepContext) -> Tensor:
        l0 = out.extras["l0_ste"]
        s = _ramp(ctx, self.warmup)
        if self.kind == "target_l0":
            return self.coefficient * s * (l0 / self.target_l0 - 1).pow(2)
        return self.coefficient * s * l0

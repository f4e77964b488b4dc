"""BatchTopK (Bussmann et al. 2024; methods.md §A.3): keep the k·B largest activations of the whole batch.

Inference uses one learned threshold θ (``f = ReLU(pre)·1[pre > θ]``), so the SAE saves as SAELens ``jumprelu``.
Training runs on the sparse triplet kernels (``batch_kernels.py``) unless ``ctx.options["batch_sparse"]`` says
``dense``, or says ``auto`` (the default) and the kept density k / d_sae is above 5%, the native kernels are missing
or the batch is not on the CPU: there dense autograd is as fast or faster.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from monosemantic.errors import UserError
from monosemantic.sae import native
from monosemantic.sae.batch_kernels import batch_topk_encode, triplet_decode
from monosemantic.sae.core import SAE, SAEConfig, StepContext, StepOutput, register


def batch_topk(acts: Tensor, k: float) -> Tensor:
    """Zero all but the ``int(k·B)`` largest entries of the [B, F] batch (ties broken by torch.topk)."""
    B = acts.shape[0]
    n = max(1, min(int(k * B), acts.numel()))
    flat = acts.flatten()
    vals, idx = flat.topk(n, sorted=False)
    return torch.zeros_like(flat).scatter(0, idx, vals).view_as(acts)


SPARSE_MAX_DENSITY = 0.05
"""``batch_sparse = "auto"`` trains sparse up to this kept density k / d_sae."""


def use_sparse(sae: SAE, x: Tensor, ctx: StepContext) -> bool:
    """Whether this training step runs on the triplet kernels (see the module docstring)."""
    mode = ctx.options.get("batch_sparse", "auto")
    if mode in ("sparse", "dense"):
        return bool(mode == "sparse")
    density = float(sae.cfg.k) / sae.cfg.d_sae  # type: ignore[arg-type]
    return density <= SPARSE_MAX_DENSITY and x.device.type == "cpu" and native.available()


@register("batchtopk")
class BatchTopKSAE(SAE):
    saelens_architecture = "jumprelu"
    has_threshold = True

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        # θ is one scalar broadcast to every latent; a vector keeps SAELens' jumprelu layout
        self.register_buffer("threshold", torch.zeros(cfg.d_sae))
        self.register_buffer("theta_initialised", torch.zeros((), dtype=torch.bool))

    @classmethod
    def validate(cls, cfg: SAEConfig) -> None:
        if cfg.k is None or not 0 < cfg.k <= cfg.d_sae:
            raise UserError(f"{cls.name} needs 0 < k <= d_sae={cfg.d_sae}, got k={cfg.k}")

    def activation(self, pre: Tensor) -> Tensor:
        return torch.relu(pre) * (pre > self.threshold)

    def sparse_encode(self, x: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Kept entries as (vals, rows, cols) triplets plus the AuxK outputs, without a dense gradient."""
        return batch_topk_encode(
            x, self.b_dec, self.W_enc, self.b_enc, float(self.cfg.k),  # type: ignore[arg-type]
            dead_mask=ctx.dead_mask, k_aux=ctx.k_aux, bf16=ctx.bf16, apply_b_dec=self.cfg.apply_b_dec_to_input,
        )

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        if use_sparse(self, x, ctx):
            vals, rows, cols, avals, aidx = self.sparse_encode(x, ctx)
            x_hat = triplet_decode(rows, cols, vals, self.W_dec, x.shape[0]) + self.b_dec
            return StepOutput(x=x, x_hat=x_hat, vals=vals, idx=cols, aux_vals=avals, aux_idx=aidx)
        pre = self.pre_acts(x)
        acts = torch.relu(pre)
        f = batch_topk(acts, float(self.cfg.k))  # type: ignore[arg-type]
        out = StepOutput(x=x, x_hat=self.decode(f), acts=f, pre=acts)
        self._add_aux(out, acts, ctx)
        return out

    def _add_aux(self, out: StepOutput, acts: Tensor, ctx: StepContext) -> None:
        if ctx.dead_mask is None or ctx.k_aux <= 0 or not bool(ctx.dead_mask.any()):
            return
        ka = min(ctx.k_aux, int(ctx.dead_mask.sum()))
        z = torch.where(ctx.dead_mask[None], acts, torch.full_like(acts, -torch.inf))
        out.aux_vals, out.aux_idx = z.topk(ka, dim=1, sorted=False)

    @torch.no_grad()
    def after_step(self, out: StepOutput, ctx: StepContext) -> None:
        """θ EMA from the smallest kept activation (variants in methods.md §A.3)."""
        f = out.acts if out.acts is not None else out.vals
        assert f is not None
        pos = f[f > 0]
        m = pos.min().double() if pos.numel() else torch.zeros((), dtype=torch.float64)
        if ctx.distributed:
            import torch.distributed as dist

            dist.all_reduce(m)
            m /= dist.get_world_size()
        rule = ctx.options.get("threshold_update", "ema_dl")
        theta = self.threshold[0].double()
        if rule == "ema_dl":
            if ctx.step < ctx.options.get("threshold_start_step", 1000):
                return
            beta = ctx.options.get("threshold_beta", 0.999)
            new = m if not bool(self.theta_initialised) else beta * theta + (1 - beta) * m
        elif rule == "ema_saelens":
            lr = ctx.options.get("threshold_lr", 0.01)
            new = (1 - lr) * theta + lr * m
        else:  # "mean": running average over all steps
            n = ctx.step + 1
            new = theta + (m - theta) / n
        self.threshold.fill_(float(new))
        self.theta_initialised.fill_(True)

    def default_losses(self, tc: Any) -> list[Any]:
        from monosemantic.sae.losses import AuxK, Reconstruction

        return [Reconstruction(tc.rec_loss), AuxK(tc.auxk_alpha, tc.auxk_norm)]

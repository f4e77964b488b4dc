"""BatchTopK (Bussmann et al. 2024, arXiv 2412.06410): keep the k·B largest activations of the whole batch.

Inference uses one learned threshold θ (``f = ReLU(pre)·1[pre > θ]``), so the SAE saves as SAELens ``jumprelu``.
Training runs on the sparse triplet kernels (``batch_kernels.py``) unless ``batch_sparse`` says ``dense``, or says
``auto`` (the default) and the kept density k / d_sae is above 5%, or the batch is on the CPU and the native
kernels are missing: there dense autograd is as fast or faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist
from torch import Tensor

from monosemantic.errors import UserError
from monosemantic.sae import native
from monosemantic.sae.architectures.topk import TopKFamily, TopKOptions
from monosemantic.sae.batch_kernels import batch_topk_encode, triplet_decode
from monosemantic.sae.core import SAE
from monosemantic.sae.kernels import dead_topk, sync_free
from monosemantic.sae.registry import register
from monosemantic.sae.types import SAEConfig, StepContext, StepOutput


@dataclass(frozen=True)
class BatchTopKOptions(TopKOptions):
    """Options of BatchTopK (and Matryoshka)."""

    threshold_update: Literal["ema_dl", "ema_saelens", "mean"] = "ema_dl"
    """BatchTopK θ rule: ema_dl, ema_saelens or mean."""
    threshold_start_step: int = 1000
    """BatchTopK ema_dl: first step of the θ EMA (at most a quarter of the run)."""
    batch_sparse: Literal["auto", "sparse", "dense"] = "auto"
    """BatchTopK/Matryoshka training: sparse kernels, dense autograd, or auto (sparse when k/d_sae <= 0.05)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.threshold_start_step < 0:
            raise UserError(f"--threshold-start-step must be at least 0, got {self.threshold_start_step}")

THRESHOLD_BETA = 0.999
"""ema_dl: θ ← β·θ + (1 − β)·min kept activation (dictionary_learning)."""
THRESHOLD_LR = 0.01
"""ema_saelens: θ ← (1 − lr)·θ + lr·min kept activation (SAELens)."""


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
    mode = sae.step_options(ctx).batch_sparse
    if mode in ("sparse", "dense"):
        return bool(mode == "sparse")
    density = float(sae.cfg.k or 0) / sae.cfg.d_sae
    return density <= SPARSE_MAX_DENSITY and (x.device.type != "cpu" or native.available())


@register("batchtopk")
class BatchTopKSAE(TopKFamily):
    saelens_architecture = "jumprelu"
    has_threshold = True
    Options = BatchTopKOptions
    threshold: Tensor
    """θ broadcast to every latent [d_sae] (a buffer)."""
    theta_initialised: Tensor
    """Bool scalar: whether θ has been set from a batch (ema_dl starts from the first minimum)."""

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

    def scale_threshold(self, factor: float) -> None:
        self.threshold.mul_(factor)

    def saved_threshold(self) -> Tensor:
        return self.threshold

    def load_threshold(self, threshold: Tensor) -> None:
        self.threshold.copy_(threshold)
        self.theta_initialised.fill_(True)

    @property
    def batch_k(self) -> float:
        """k, the average number of latents kept per row in training (``validate`` checked it is set)."""
        assert self.cfg.k is not None
        return float(self.cfg.k)

    def sparse_encode(self, x: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Kept entries as (vals, rows, cols) triplets plus the AuxK outputs, without a dense gradient."""
        dead, k_aux = self.aux_inputs(ctx)
        return batch_topk_encode(
            x, self.b_dec, self.W_enc, self.b_enc, self.batch_k,
            dead_mask=dead, k_aux=k_aux, bf16=ctx.bf16, apply_b_dec=self.cfg.apply_b_dec_to_input,
        )

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        if use_sparse(self, x, ctx):
            vals, rows, cols, avals, aidx = self.sparse_encode(x, ctx)
            x_hat = triplet_decode(rows, cols, vals, self.W_dec, x.shape[0]) + self.b_dec
            return StepOutput(x=x, x_hat=x_hat, vals=vals, idx=cols, aux_vals=avals, aux_idx=aidx)
        pre = self.pre_acts(x)
        acts = torch.relu(pre)
        f = batch_topk(acts, self.batch_k)
        out = StepOutput(x=x, x_hat=self.decode(f), acts=f, pre=acts)
        self._add_aux(out, acts, ctx)
        return out

    def _add_aux(self, out: StepOutput, acts: Tensor, ctx: StepContext) -> None:
        dead, k_aux = self.aux_inputs(ctx)
        if dead is None or k_aux <= 0:
            return
        if sync_free(acts):  # no data-dependent shapes off the CPU
            out.aux_vals, out.aux_idx = dead_topk(acts, dead, k_aux)
            return
        if not bool(dead.any()):
            return
        ka = min(k_aux, int(dead.sum()))
        z = torch.where(dead[None], acts, torch.full_like(acts, -torch.inf))
        out.aux_vals, out.aux_idx = z.topk(ka, dim=1, sorted=False)

    @torch.no_grad()
    def after_step(self, out: StepOutput, ctx: StepContext) -> None:
        """θ update from the smallest kept activation of the batch (one of three published rules).

        Tensor ops only: the new θ is computed where the batch lives and never read back to the host.
        """
        opts: BatchTopKOptions = self.step_options(ctx)
        if opts.threshold_update == "ema_dl" and ctx.step < min(opts.threshold_start_step, ctx.total_steps // 4):
            return
        f = out.acts if out.acts is not None else out.vals
        assert f is not None
        smallest = torch.where(f > 0, f, torch.full_like(f, torch.inf)).amin().double()
        m = torch.where(torch.isinf(smallest), torch.zeros_like(smallest), smallest)
        if ctx.distributed:
            dist.all_reduce(m)
            m /= dist.get_world_size()
        theta = self.threshold[0].double()
        if opts.threshold_update == "ema_dl":
            new = torch.where(self.theta_initialised, THRESHOLD_BETA * theta + (1 - THRESHOLD_BETA) * m, m)
        elif opts.threshold_update == "ema_saelens":
            new = (1 - THRESHOLD_LR) * theta + THRESHOLD_LR * m
        else:  # "mean": running average over all steps
            new = theta + (m - theta) / (ctx.step + 1)
        self.threshold.copy_(new.to(self.threshold.dtype).expand_as(self.threshold))
        self.theta_initialised.fill_(True)


"""JumpReLU / threshold-activated SAE (Rajamanoharan et al. 2024, arXiv 2407.14435).

``f_j = pre_j · H(pre_j − θ_j)`` with θ = exp(log_threshold) > 0, trained through rectangle-kernel
pseudo-derivatives of bandwidth ε.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from monosemantic.errors import UserError
from monosemantic.sae.core import SAE
from monosemantic.sae.losses import JumpReLUSparsity
from monosemantic.sae.registry import register
from monosemantic.sae.types import ArchOptions, LossTerm, SAEConfig, StepContext, StepOutput, WarmupOptions


@dataclass(frozen=True)
class JumpReLUOptions(WarmupOptions):
    """Options of the JumpReLU SAE."""

    jumprelu_sparsity: Literal["l0", "target_l0"] = "l0"
    """JumpReLU sparsity term: l0 (paper) or target_l0 (dictionary_learning)."""
    target_l0: float = 20.0
    """JumpReLU target_l0: wanted L0."""
    bandwidth: float = 1e-3
    """JumpReLU: bandwidth ε of the pseudo-derivative."""
    threshold_init: float = 1e-3
    """JumpReLU: initial threshold θ."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("target_l0", "bandwidth", "threshold_init"):
            if not getattr(self, name) > 0:
                raise UserError(f"--{name.replace('_', '-')} must be greater than 0, got {getattr(self, name):g}")


def _rect(u: Tensor) -> Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, pre: Tensor, theta: Tensor, eps: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.eps = eps
        return pre * (pre > theta)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        pre, theta = ctx.saved_tensors
        eps = ctx.eps
        g_pre = g * (pre > theta)
        g_theta = (-(theta / eps) * _rect((pre - theta) / eps) * g).sum(0)
        return g_pre, g_theta, None


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, pre: Tensor, theta: Tensor, eps: float) -> Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.eps = eps
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        pre, theta = ctx.saved_tensors
        eps = ctx.eps
        # the L0 term trains only θ (∂H/∂pre := 0)
        return None, (-(1.0 / eps) * _rect((pre - theta) / eps) * g).sum(0), None


@register("jumprelu")
class JumpReLUSAE(SAE):
    saelens_architecture = "jumprelu"
    has_threshold = True
    Options = JumpReLUOptions
    sparsity_param = "coefficient"
    sweep_axes = ("l1_coefficient",)
    default_coefficient = 1.0

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        self.log_threshold = nn.Parameter(torch.full((cfg.d_sae,), math.log(1e-3)))

    @property
    def threshold(self) -> Tensor:
        return self.log_threshold.exp()

    def init_for_training(self, options: ArchOptions, generator: torch.Generator | None = None) -> None:
        super().init_for_training(options, generator)
        assert isinstance(options, JumpReLUOptions)
        with torch.no_grad():
            self.log_threshold.fill_(math.log(options.threshold_init))

    def scale_threshold(self, factor: float) -> None:
        self.log_threshold.add_(math.log(factor))

    def saved_threshold(self) -> Tensor:
        return self.threshold

    def load_threshold(self, threshold: Tensor) -> None:
        self.log_threshold.copy_(threshold.clamp_min(1e-30).log())

    def activation(self, pre: Tensor) -> Tensor:
        return torch.relu(pre) * (pre > self.threshold)

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        pre = self.pre_acts(x)
        theta = self.threshold
        eps = self.step_options(ctx).bandwidth
        f = _JumpReLU.apply(torch.relu(pre), theta, eps)
        l0 = _Step.apply(pre, theta, eps).sum(1).mean()
        return StepOutput(x=x, x_hat=self.decode(f), acts=f, pre=pre, extras={"l0_ste": l0})

    def losses(self, options: ArchOptions, coefficient: float | None) -> list[LossTerm]:
        assert isinstance(options, JumpReLUOptions)
        lam = self.default_coefficient if coefficient is None else coefficient
        assert lam is not None
        return [JumpReLUSparsity(options.jumprelu_sparsity, lam, options.target_l0, options.sparsity_warmup)]

"""TopK (Gao et al. 2024, arXiv 2406.04093 §2.3): keep the k largest ReLU pre-activations of each row.

Training uses the sparse kernels (``kernels.py``): the encoder backward and the decoder touch only the B·k kept
entries. Dead latents are revived by AuxK (its Appendix A.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from typing_extensions import override

from monosemantic.errors import UserError
from monosemantic.sae.core import SAE
from monosemantic.sae.kernels import sparse_decode, topk_encode
from monosemantic.sae.losses import AuxK
from monosemantic.sae.registry import register
from monosemantic.sae.types import ArchOptions, LossTerm, SAEConfig, StepContext, StepOutput


@dataclass(frozen=True)
class TopKOptions(ArchOptions):
    """Options of the TopK family (TopK, BatchTopK, Matryoshka)."""

    auxk_alpha: float = 1 / 32
    """AuxK coefficient for dead latents; 0 = off."""
    auxk_norm: Literal["residual_variance", "scaled_count"] = "residual_variance"
    """AuxK normalisation: residual_variance (dictionary_learning) or scaled_count (SAELens)."""
    k_aux: int | None = None
    """Dead latents used by AuxK per row (default d_in // 2)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.auxk_alpha >= 0:
            raise UserError(f"--auxk-alpha must be at least 0, got {self.auxk_alpha:g}")
        if self.k_aux is not None and self.k_aux < 1:
            raise UserError(f"--k-aux must be at least 1, got {self.k_aux}")

    def aux_count(self, d_in: int) -> int:
        """k_aux, the dead latents AuxK may use per row: the option, or d_in // 2 (Gao et al., arXiv 2406.04093,
        Appendix A.2)."""
        return self.k_aux or d_in // 2


def check_k(cfg: SAEConfig, what: str) -> None:
    """A TopK-style config needs an integer k in [1, d_sae]."""
    if cfg.k is None or int(cfg.k) != cfg.k or not 1 <= cfg.k <= cfg.d_sae:
        raise UserError(f"{what} needs an integer k between 1 and d_sae={cfg.d_sae}, got k={cfg.k}")


def integer_k(k: float | None, what: str) -> int | None:
    """The sweep's k as an int (None stays None); a fractional k is refused."""
    if k is not None and int(k) != k:
        raise UserError(f"{what} needs an integer k, got {k:g}")
    return None if k is None else int(k)


class TopKFamily(SAE):
    """What the TopK-family architectures share: k sets sparsity, AuxK revives dead latents."""

    Options = TopKOptions
    sparsity_param = "k"
    sweep_axes = ("k",)
    lr_constant = 2.5e-3

    def aux_inputs(self, ctx: StepContext) -> tuple[Tensor | None, int]:
        """The dead mask and k_aux the encoder should use for AuxK (none when AuxK is off)."""
        opts: TopKOptions = self.step_options(ctx)
        if not opts.auxk_alpha:
            return None, 0
        return ctx.dead_mask, opts.aux_count(self.cfg.d_in)

    def aux_loss(self, options: TopKOptions) -> AuxK:
        return AuxK(options.auxk_alpha, options.auxk_norm, options.aux_count(self.cfg.d_in))

    @override
    def losses(self, options: ArchOptions, coefficient: float | None) -> list[LossTerm]:
        assert isinstance(options, TopKOptions)
        return [self.aux_loss(options)]


@register("topk")
class TopKSAE(TopKFamily):
    saelens_architecture = "topk"

    @classmethod
    def validate(cls, cfg: SAEConfig) -> None:
        check_k(cfg, "TopK")

    @classmethod
    def build_config(cls, d_in: int, d_sae: int, k: float | None, options: ArchOptions,
                     metadata: dict[str, Any] | None = None) -> SAEConfig:
        return super().build_config(d_in, d_sae, integer_k(k, "TopK"), options, metadata)

    def activation(self, pre: Tensor) -> Tensor:
        vals, idx = pre.topk(self.cfg.kept, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, idx, vals.relu())

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        dead, k_aux = self.aux_inputs(ctx)
        vals, idx, avals, aidx = topk_encode(
            x, self.b_dec, self.W_enc, self.b_enc, self.cfg.kept,
            dead_mask=dead, k_aux=k_aux, bf16=ctx.bf16, apply_b_dec=self.cfg.apply_b_dec_to_input,
        )
        x_hat = sparse_decode(idx, vals, self.W_dec) + self.b_dec
        return StepOutput(x=x, x_hat=x_hat, vals=vals, idx=idx, aux_vals=avals, aux_idx=aidx)

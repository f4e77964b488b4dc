"""TopK (Gao et al. 2024, arXiv 2406.04093 §2.3): keep the k largest ReLU pre-activations of each row.

Training uses the sparse kernels (``kernels.py``): the encoder backward and the decoder touch only the B·k kept
entries. Dead latents are revived by AuxK (its Appendix A.2).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from monosemantic.errors import UserError
from monosemantic.sae.core import SAE, SAEConfig, StepContext, StepOutput, register
from monosemantic.sae.kernels import sparse_decode, topk_encode
from monosemantic.sae.options import ArchOptions, TopKOptions


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
    lr_constant = 2.5e-3

    def aux_inputs(self, ctx: StepContext) -> tuple[Tensor | None, int]:
        """The dead mask and k_aux the encoder should use for AuxK (none when AuxK is off)."""
        opts: TopKOptions = self.step_options(ctx)
        if not opts.auxk_alpha:
            return None, 0
        return ctx.dead_mask, opts.aux_count(self.cfg.d_in)

    def aux_loss(self, options: TopKOptions) -> Any:
        from monosemantic.sae.losses import AuxK

        return AuxK(options.auxk_alpha, options.auxk_norm, options.aux_count(self.cfg.d_in))

    def losses(self, rec_loss: str, options: ArchOptions, coefficient: float | None,
               rec_weight: Tensor | None = None) -> list[Any]:
        from monosemantic.sae.losses import Reconstruction

        return [Reconstruction(rec_loss, rec_weight), self.aux_loss(options)]  # type: ignore[arg-type]


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
        vals, idx = pre.topk(int(self.cfg.k), dim=-1)  # type: ignore[arg-type]
        return torch.zeros_like(pre).scatter_(-1, idx, vals.relu())

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        dead, k_aux = self.aux_inputs(ctx)
        vals, idx, avals, aidx = topk_encode(
            x, self.b_dec, self.W_enc, self.b_enc, int(self.cfg.k),  # type: ignore[arg-type]
            dead_mask=dead, k_aux=k_aux, bf16=ctx.bf16, apply_b_dec=self.cfg.apply_b_dec_to_input,
        )
        x_hat = sparse_decode(idx, vals, self.W_dec) + self.b_dec
        return StepOutput(x=x, x_hat=x_hat, vals=vals, idx=idx, aux_vals=avals, aux_idx=aidx)

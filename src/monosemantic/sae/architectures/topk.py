"""TopK (Gao et al. 2024; methods.md §A.2): keep the k largest ReLU pre-activations of each row.

Training uses the sparse kernels (``kernels.py``): the encoder backward and the decoder touch only the B·k kept
entries.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from monosemantic.errors import UserError
from monosemantic.sae.core import SAE, SAEConfig, StepContext, StepOutput, register
from monosemantic.sae.kernels import sparse_decode, topk_encode


@register("topk")
class TopKSAE(SAE):
    saelens_architecture = "topk"

    @classmethod
    def validate(cls, cfg: SAEConfig) -> None:
        if cfg.k is None or int(cfg.k) != cfg.k or not 1 <= cfg.k <= cfg.d_sae:
            raise UserError(f"TopK needs an integer k between 1 and d_sae={cfg.d_sae}, got k={cfg.k}")

    def activation(self, pre: Tensor) -> Tensor:
        vals, idx = pre.topk(int(self.cfg.k), dim=-1)  # type: ignore[arg-type]
        return torch.zeros_like(pre).scatter_(-1, idx, vals.relu())

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        vals, idx, avals, aidx = topk_encode(
            x, self.b_dec, self.W_enc, self.b_enc, int(self.cfg.k),  # type: ignore[arg-type]
            dead_mask=ctx.dead_mask, k_aux=ctx.k_aux, bf16=ctx.bf16, apply_b_dec=self.cfg.apply_b_dec_to_input,
        )
        x_hat = sparse_decode(idx, vals, self.W_dec) + self.b_dec
        return StepOutput(x=x, x_hat=x_hat, vals=vals, idx=idx, aux_vals=avals, aux_idx=aidx)

    def default_losses(self, tc: Any) -> list[Any]:
        from monosemantic.sae.losses import AuxK, Reconstruction

        return [Reconstruction(tc.rec_loss), AuxK(tc.auxk_alpha, tc.auxk_norm)]

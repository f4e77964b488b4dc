"""The theory SAE of Cui et al. (arXiv 2506.15963, §3): tied weights, no biases, ReLU.

``x_m = ReLU(W_m x_p)``, ``x̂_p = W_mᵀ x_m``, with ``W_m`` stored as ``W_dec`` [d_sae, d_in] and nothing else
trained; sparsity comes from the ReLU alone. It is the model the paper's identifiability results are stated for,
so the synthetic benchmark can test them as stated. Saved as a SAELens ``standard`` SAE with ``W_enc = W_decᵀ``
(times the folded input scale) and zero biases, so every loader encodes it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from typing_extensions import override

from monosemantic.sae.core import SAE
from monosemantic.sae.registry import register
from monosemantic.sae.types import ArchOptions, SAEConfig, StepContext, StepOutput


@dataclass(frozen=True)
class TiedOptions(ArchOptions):
    """The theory SAE (tied weights, no biases, ReLU) has no options of its own."""


@register("tied")
class TiedSAE(SAE):
    saelens_architecture = "standard"
    Options = TiedOptions
    sparsity_param = "none"
    sweep_axes = ()
    lr_constant = 2.5e-3

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        for p in (self.W_enc, self.b_enc, self.b_dec):
            p.requires_grad_(False)  # only W_dec trains; the others are written at save time

    @override
    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        pre = x @ self.W_dec.t()
        f = torch.relu(pre)
        return StepOutput(x=x, x_hat=f @ self.W_dec, acts=f, pre=pre)

    @override
    def unit_norm_decoder(self, options: ArchOptions) -> bool:
        return False  # the theory's W_m is unconstrained

    def set_initial_bias(self, b_dec: Tensor) -> None:
        """No biases: the decoder bias stays zero whatever the recipe's initialisation."""

    @torch.no_grad()
    def fold_input_scale(self, scale: float, how: Literal["weights", "biases"]) -> None:
        self.W_enc.copy_(self.W_dec.t())
        super().fold_input_scale(scale, how)

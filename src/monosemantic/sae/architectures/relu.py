"""ReLU + L1 ("standard"; Bricken et al. 2023, Anthropic "Towards Monosemanticity"): ``f = ReLU(pre)`` with an L1
penalty; the decoder-norm variant weights it by the decoder row norms (Anthropic's April 2024 update)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from monosemantic.sae.core import SAE
from monosemantic.sae.losses import L1
from monosemantic.sae.registry import register
from monosemantic.sae.types import ArchOptions, LossTerm, WarmupOptions


@dataclass(frozen=True)
class ReLUOptions(WarmupOptions):
    """Options of the ReLU + L1 SAE."""

    l1_variant: Literal["unit_norm", "decoder_norm"] = "unit_norm"
    """ReLU: unit_norm (unit decoder rows, plain L1) or decoder_norm (L1 weighted by decoder norms)."""


@register("relu")
class ReLUSAE(SAE):
    saelens_architecture = "standard"
    Options = ReLUOptions
    sparsity_param = "coefficient"
    sweep_axes = ("l1_coefficient",)
    default_coefficient = 0.05

    def losses(self, options: ArchOptions, coefficient: float | None) -> list[LossTerm]:
        assert isinstance(options, ReLUOptions)
        lam = self.default_coefficient if coefficient is None else coefficient
        assert lam is not None
        return [L1(lam, options.sparsity_warmup, options.l1_variant)]

    def unit_norm_decoder(self, options: ArchOptions) -> bool:
        assert isinstance(options, ReLUOptions)
        return options.l1_variant == "unit_norm"

    @torch.no_grad()
    def finish_training(self, options: ArchOptions) -> None:
        if not self.unit_norm_decoder(options):
            self.fold_decoder_norms()

    @torch.no_grad()
    def fold_decoder_norms(self) -> None:
        """Make decoder rows unit norm without changing reconstructions (exact for ReLU)."""
        n = self.W_dec.norm(dim=1).clamp_min(1e-12)
        self.W_enc.mul_(n)
        self.b_enc.mul_(n)
        self.W_dec.div_(n[:, None])

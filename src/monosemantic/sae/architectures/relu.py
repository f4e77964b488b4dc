"""ReLU + L1 ("standard"; Bricken et al. 2023, Anthropic "Towards Monosemanticity"): ``f = ReLU(pre)`` with an L1
penalty; the decoder-norm variant weights it by the decoder row norms (Anthropic's April 2024 update)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from monosemantic.sae.core import SAE, register
from monosemantic.sae.options import ArchOptions, ReLUOptions


@register("relu")
class ReLUSAE(SAE):
    saelens_architecture = "standard"
    Options = ReLUOptions
    sparsity_param = "coefficient"
    default_coefficient = 0.05

    def losses(self, rec_loss: str, options: ArchOptions, coefficient: float | None,
               rec_weight: Tensor | None = None) -> list[Any]:
        from monosemantic.sae.losses import L1, Reconstruction

        opts: ReLUOptions = options  # type: ignore[assignment]
        lam = self.default_coefficient if coefficient is None else coefficient
        l1 = L1(lam, opts.sparsity_warmup, opts.l1_variant)  # type: ignore[arg-type]
        return [Reconstruction(rec_loss, rec_weight), l1]

    def unit_norm_decoder(self, options: ArchOptions) -> bool:
        return options.l1_variant == "unit_norm"  # type: ignore[attr-defined, no-any-return]

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

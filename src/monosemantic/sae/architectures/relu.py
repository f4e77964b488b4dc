"""ReLU + L1 ("standard"; methods.md §A.1): ``f = ReLU(pre)``, trained with an L1 penalty."""

from __future__ import annotations

from typing import Any

import torch

from monosemantic.sae.core import SAE, register


@register("relu")
class ReLUSAE(SAE):
    saelens_architecture = "standard"

    def default_losses(self, tc: Any) -> list[Any]:
        from monosemantic.sae.losses import L1, Reconstruction

        return [Reconstruction(tc.rec_loss), L1(5.0, tc.sparsity_warmup, tc.l1_variant)]

    @torch.no_grad()
    def fold_decoder_norms(self) -> None:
        """Make decoder rows unit norm without changing reconstructions (exact for ReLU; §A.1)."""
        n = self.W_dec.norm(dim=1).clamp_min(1e-12)
        self.W_enc.mul_(n)
        self.b_enc.mul_(n)
        self.W_dec.div_(n[:, None])

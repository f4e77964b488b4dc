"""Matryoshka BatchTopK (Bussmann et al. 2025, arXiv 2503.17547): every prefix of the dictionary reconstructs x.

Group sizes come from fractions; the last group takes the remainder. The prefix reconstructions go to
``StepOutput.extras["prefix_recons"]`` for the ``MatryoshkaReconstruction`` loss term. The sparse path (as for
BatchTopK) decodes every kept triplet once into the slot of its group and sums the slots cumulatively.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from monosemantic.errors import UserError
from monosemantic.sae.architectures.batchtopk import BatchTopKSAE, batch_topk, use_sparse
from monosemantic.sae.batch_kernels import prefix_decode
from monosemantic.sae.core import SAEConfig, StepContext, StepOutput, register
from monosemantic.sae.options import ArchOptions, MatryoshkaOptions


def group_sizes_from_fractions(fractions: Sequence[float], d_sae: int) -> list[int]:
    """``size_i = int(g_i·F)`` for all but the last group, which takes the remainder."""
    if not fractions:
        raise UserError("Matryoshka needs group fractions, e.g. --group-fraction 0.25 --group-fraction 0.75")
    if any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise UserError(f"Matryoshka group fractions must be positive and sum to 1, got {list(fractions)}")
    sizes = [int(f * d_sae) for f in fractions[:-1]]
    sizes.append(d_sae - sum(sizes))
    if any(s < 1 for s in sizes):
        raise UserError(
            f"Matryoshka group fractions {list(fractions)} give an empty group for d_sae={d_sae} "
            f"(sizes {sizes}); use larger fractions or a wider SAE"
        )
    return sizes


@register("matryoshka")
class MatryoshkaSAE(BatchTopKSAE):
    saelens_architecture = "jumprelu"
    Options = MatryoshkaOptions

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        # the group ends as a tensor that follows the module to its device (not saved: cfg holds the sizes)
        self.register_buffer("ends", torch.tensor(cfg.group_ends, dtype=torch.int64), persistent=False)

    @classmethod
    def build_config(cls, d_in: int, d_sae: int, k: float | None, options: ArchOptions,
                     metadata: dict[str, Any] | None = None) -> SAEConfig:
        groups = group_sizes_from_fractions(options.group_fraction, d_sae)  # type: ignore[attr-defined]
        cfg = SAEConfig(d_in=d_in, d_sae=d_sae, architecture=cls.name, k=k, group_sizes=groups,
                        metadata=metadata or {})
        cls.validate(cfg)
        return cfg

    @classmethod
    def validate(cls, cfg: SAEConfig) -> None:
        super().validate(cfg)
        sizes = cfg.group_sizes
        if not sizes or any(s < 1 for s in sizes) or sum(sizes) != cfg.d_sae:
            raise UserError(f"Matryoshka group sizes {sizes} must be positive and sum to d_sae={cfg.d_sae}")

    def train_forward(self, x: Tensor, ctx: StepContext) -> StepOutput:
        if use_sparse(self, x, ctx):
            vals, rows, cols, avals, aidx = self.sparse_encode(x, ctx)
            stack = prefix_decode(rows, cols, vals, self.W_dec, self.b_dec, x.shape[0], self.ends)
            prefix = list(stack.unbind(0))
            return StepOutput(x=x, x_hat=prefix[-1], vals=vals, idx=cols, aux_vals=avals, aux_idx=aidx,
                              extras={"prefix_recons": prefix, "prefix_stack": stack})  # type: ignore[dict-item]
        acts = self.activation_train(x)
        f = batch_topk(acts, float(self.cfg.k))  # type: ignore[arg-type]
        recon = self.b_dec.expand_as(x)
        prefix: list[Tensor] = []
        start = 0
        for end in self.cfg.group_ends:
            recon = recon + f[:, start:end] @ self.W_dec[start:end]
            prefix.append(recon)
            start = end
        out = StepOutput(x=x, x_hat=recon, acts=f, pre=acts, extras={"prefix_recons": prefix})  # type: ignore[dict-item]
        self._add_aux(out, acts, ctx)
        return out

    def activation_train(self, x: Tensor) -> Tensor:
        return self.pre_acts(x).relu()

    def losses(self, rec_loss: str, options: ArchOptions, coefficient: float | None,
               rec_weight: Tensor | None = None) -> list[Any]:
        from monosemantic.sae.losses import MatryoshkaReconstruction

        opts: MatryoshkaOptions = options  # type: ignore[assignment]
        return [MatryoshkaReconstruction(opts.matryoshka_loss, rec_weight), self.aux_loss(opts)]

    def extra_state_for_save(self) -> dict[str, Any]:
        return {"group_sizes": list(self.cfg.group_sizes or [])}

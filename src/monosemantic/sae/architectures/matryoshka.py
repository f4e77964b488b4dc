"""Matryoshka BatchTopK (Bussmann et al. 2025, arXiv 2503.17547): every prefix of the dictionary reconstructs x.

Group sizes come from fractions; the last group takes the remainder. The prefix reconstructions go to
``StepOutput.prefix_recons`` for the ``MatryoshkaReconstruction`` loss term. The sparse path (as for
BatchTopK) decodes every kept triplet once into the slot of its group and sums the slots cumulatively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor
from typing_extensions import override

from monosemantic.errors import UserError
from monosemantic.sae.architectures.batchtopk import BatchTopKOptions, BatchTopKSAE, batch_topk, use_sparse
from monosemantic.sae.batch_kernels import prefix_decode
from monosemantic.sae.losses import MatryoshkaReconstruction
from monosemantic.sae.registry import register
from monosemantic.sae.types import ArchOptions, LossTerm, SAEConfig, StepContext, StepOutput


@dataclass(frozen=True)
class MatryoshkaOptions(BatchTopKOptions):
    """Options of the Matryoshka SAE."""

    group_fraction: list[float] = field(default_factory=list)
    """Matryoshka: fraction of the latents in each nested group, in order; they must sum to 1."""
    matryoshka_loss: Literal["sum", "dl_weighted_mean"] = "sum"
    """Matryoshka reconstruction: sum (paper, SAELens) or dl_weighted_mean (dictionary_learning)."""


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
    sweep_axes = ("k", "group_fraction")
    ends: Tensor
    """The exclusive end of each group [G] (a buffer)."""

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        # the group ends as a tensor that follows the module to its device (not saved: cfg holds the sizes)
        self.register_buffer("ends", torch.tensor(cfg.group_ends, dtype=torch.int64), persistent=False)

    @classmethod
    def build_config(cls, d_in: int, d_sae: int, k: float | None, options: ArchOptions,
                     metadata: dict[str, Any] | None = None) -> SAEConfig:
        assert isinstance(options, MatryoshkaOptions)
        groups = group_sizes_from_fractions(options.group_fraction, d_sae)
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
                              prefix_recons=prefix, extras={"prefix_stack": stack})
        acts = self.activation_train(x)
        f = batch_topk(acts, self.batch_k)
        recon = self.b_dec.expand_as(x)
        prefix: list[Tensor] = []
        start = 0
        for end in self.cfg.group_ends:
            recon = recon + f[:, start:end] @ self.W_dec[start:end]
            prefix.append(recon)
            start = end
        out = StepOutput(x=x, x_hat=recon, acts=f, pre=acts, prefix_recons=prefix)
        self._add_aux(out, acts, ctx)
        return out

    def activation_train(self, x: Tensor) -> Tensor:
        return self.pre_acts(x).relu()

    @override
    def reconstruction_loss(self, rec_loss: str, options: ArchOptions, rec_weight: Tensor | None) -> LossTerm:
        """Every prefix reconstructs x (the ``matryoshka_loss`` sum or mean); ``rec_loss`` does not apply."""
        assert isinstance(options, MatryoshkaOptions)
        return MatryoshkaReconstruction(options.matryoshka_loss, rec_weight)

"""The value types of the SAE stage: an SAE's inference config, the state and output of one training step, the
base of every architecture's training options, and the shape of a loss term.

They depend on nothing else in ``monosemantic.sae``, so the SAE base class (``core``), its files (``io``), the loss
terms (``losses``) and the trainer can all import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

from monosemantic.config import check_fields
from monosemantic.errors import UserError

if TYPE_CHECKING:
    from monosemantic.sae.core import SAE


def option_flag(name: str) -> str:
    """The command-line name a message uses for a training setting (``l1_coefficient`` is ``--l1``)."""
    return "--" + {"l1_coefficient": "l1"}.get(name, name).replace("_", "-")


@dataclass
class SAEConfig:
    """What an SAE needs at inference time; written to ``cfg.json`` (SAELens fields plus ours)."""

    d_in: int
    """Width of the activations the SAE reads."""
    d_sae: int
    """Number of latents (dictionary size)."""
    architecture: str = "topk"
    """Registered architecture name: relu, topk, batchtopk, matryoshka, jumprelu, tied, gsae."""
    k: float | None = None
    """TopK: latents kept per row. BatchTopK/Matryoshka: average latents kept per row in training."""
    group_sizes: list[int] | None = None
    """Matryoshka: sizes of the nested groups, in latent order (they sum to d_sae)."""
    apply_b_dec_to_input: bool = True
    """Subtract b_dec from the input before encoding."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Provenance: model, hook, store path, norm factor and training settings (the JSON of ``cfg.json``)."""

    @property
    def group_ends(self) -> list[int]:
        """Exclusive end index of each Matryoshka prefix (``m_i``; Bussmann et al., arXiv 2503.17547); ``[d_sae]``
        otherwise."""
        if not self.group_sizes:
            return [self.d_sae]
        ends, total = [], 0
        for size in self.group_sizes:
            total += size
            ends.append(total)
        return ends

    @property
    def kept(self) -> int:
        """k as the integer count of latents a TopK-style encoder keeps (the architectures check it is set)."""
        if self.k is None:
            raise UserError(f"{self.architecture} needs k, the number of latents kept per row")
        return int(self.k)


@dataclass(frozen=True)
class ArchOptions:
    """Training options of an architecture; each architecture subclasses this with its own typed fields, beside its
    class in ``monosemantic.sae.architectures``.

    ``__post_init__`` checks the values: NaN, infinite numbers and values outside a ``Literal`` first (named by
    their flag), then each subclass's ranges, so an options object that exists is a valid one.
    """

    def __post_init__(self) -> None:
        check_fields(self, option_flag)


@dataclass(frozen=True)
class WarmupOptions(ArchOptions):
    """Options of the architectures trained with a sparsity coefficient (ReLU, JumpReLU)."""

    sparsity_warmup: float = 0.05
    """Warm-up of the L1 / L0 coefficient: a fraction of the steps when below 1, else steps."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sparsity_warmup >= 0:
            raise UserError(f"--sparsity-warmup must be at least 0, got {self.sparsity_warmup:g}")


@dataclass
class StepContext:
    """Training state an architecture or a loss term may read."""

    step: int
    total_steps: int
    dead_mask: Tensor | None = None
    """Bool [d_sae]: latents that have not fired for ``dead_tokens`` rows."""
    bf16: bool = False
    distributed: bool = False
    options: ArchOptions | None = None
    """The architecture's training options (an instance of its ``Options``; None: its defaults)."""
    labels: Tensor | None = None
    """Float [B, C] concept labels of the batch's rows (architectures with ``needs_labels``; else None)."""


@dataclass
class StepOutput:
    """One training forward: input, reconstruction and the latents in sparse or dense form."""

    x: Tensor
    x_hat: Tensor
    acts: Tensor | None = None
    """Dense latents [B, F] (dense architectures)."""
    pre: Tensor | None = None
    """Dense pre-activations [B, F] when they exist."""
    vals: Tensor | None = None
    """Sparse latents: kept values [B, k] (TopK), or [n] flattened kept entries (BatchTopK family) ..."""
    idx: Tensor | None = None
    """... and their latent indices, same shape."""
    aux_vals: Tensor | None = None
    """AuxK: the top-k_aux dead-latent values [B, k_aux] (differentiable) ..."""
    aux_idx: Tensor | None = None
    """... and their indices."""
    extras: dict[str, Tensor] = field(default_factory=dict)
    """Architecture-specific terms (Matryoshka prefix reconstructions stacked [G, B, d], JumpReLU L0, ...)."""
    prefix_recons: list[Tensor] | None = None
    """Matryoshka: the reconstruction of each nested prefix, smallest first."""

    def fired(self, d_sae: int) -> Tensor:
        """Bool [d_sae]: latents with a positive value anywhere in the batch."""
        if self.idx is not None and self.vals is not None:
            hits = torch.zeros(d_sae, dtype=torch.int32, device=self.x.device)
            hits.index_add_(0, self.idx.reshape(-1), (self.vals > 0).reshape(-1).to(torch.int32))
            return hits > 0
        assert self.acts is not None
        return (self.acts > 0).any(0)

    def l0(self) -> Tensor:
        """Mean number of positive latents per row."""
        if self.vals is not None:  # [B, k] or flattened kept entries of variable count per row
            return (self.vals > 0).sum().float() / self.x.shape[0]
        assert self.acts is not None
        return (self.acts > 0).sum(1).float().mean()


class LossTerm(Protocol):
    """A term of the training loss: ``(sae, out, ctx) -> scalar``, called with its three arguments in that order
    (a term names the ones it does not read ``_sae``, ``_ctx``); the trainer sums a list of them, logging each under
    its ``name``."""

    name: str

    def __call__(self, sae: SAE, out: StepOutput, ctx: StepContext, /) -> Tensor: ...

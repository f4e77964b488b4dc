"""The training options of every SAE architecture: typed frozen dataclasses, one per architecture.

They live apart from the architectures (which need torch) so that ``monosemantic train --help`` can list every
architecture's flags without importing torch. Each architecture class names its options (``SAE.Options``) and
:func:`monosemantic.sae.core.register` checks that it names the ones registered here under the same name. On the
command line and in TOML the options are flat keys (``--group-fraction``, ``bandwidth = 1e-3``); a key that belongs
to another architecture is refused with the architectures it applies to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Literal

from monosemantic.errors import UserError

_OPTIONS: dict[str, type[ArchOptions]] = {}


def options_for(name: str) -> Callable[[type[ArchOptions]], type[ArchOptions]]:
    """Class decorator: the options of architecture ``name`` (once per name)."""

    def deco(cls: type[ArchOptions]) -> type[ArchOptions]:
        if name in _OPTIONS:
            raise ValueError(f"options for SAE architecture {name!r} are registered twice")
        _OPTIONS[name] = cls
        return cls

    return deco


def registered_options() -> dict[str, type[ArchOptions]]:
    """Every architecture's options class, by architecture name."""
    return dict(_OPTIONS)


def option_owners() -> dict[str, list[str]]:
    """Each option name and the architectures that take it."""
    owners: dict[str, list[str]] = {}
    for arch, cls in _OPTIONS.items():
        for f in fields(cls):
            owners.setdefault(f.name, []).append(arch)
    return owners


@dataclass(frozen=True)
class ArchOptions:
    """Training options of an architecture; each architecture subclasses this with its own typed fields."""

    def check(self) -> None:
        """Raise a UserError for values out of range (types and choices are checked by the config loader)."""


@dataclass(frozen=True)
class WarmupOptions(ArchOptions):
    """Options of the architectures trained with a sparsity coefficient."""

    sparsity_warmup: float = 0.05
    """Warm-up of the L1 / L0 coefficient: a fraction of the steps when below 1, else steps."""

    def check(self) -> None:
        """Raise a UserError for a negative sparsity warm-up."""
        if not self.sparsity_warmup >= 0:
            raise UserError(f"--sparsity-warmup must be at least 0, got {self.sparsity_warmup:g}")


@options_for("topk")
@dataclass(frozen=True)
class TopKOptions(ArchOptions):
    """Options of the TopK family (TopK, BatchTopK, Matryoshka)."""

    auxk_alpha: float = 1 / 32
    """AuxK coefficient for dead latents; 0 = off."""
    auxk_norm: Literal["residual_variance", "scaled_count"] = "residual_variance"
    """AuxK normalisation: residual_variance (dictionary_learning) or scaled_count (SAELens)."""
    k_aux: int | None = None
    """Dead latents used by AuxK per row (default d_in // 2)."""

    def check(self) -> None:
        """Raise a UserError for a negative AuxK coefficient or a k_aux below 1."""
        if not self.auxk_alpha >= 0:
            raise UserError(f"--auxk-alpha must be at least 0, got {self.auxk_alpha:g}")
        if self.k_aux is not None and self.k_aux < 1:
            raise UserError(f"--k-aux must be at least 1, got {self.k_aux}")

    def aux_count(self, d_in: int) -> int:
        """k_aux, the dead latents AuxK may use per row: the option, or d_in // 2 (Gao et al., arXiv 2406.04093,
        Appendix A.2)."""
        return self.k_aux or d_in // 2


@options_for("batchtopk")
@dataclass(frozen=True)
class BatchTopKOptions(TopKOptions):
    """Options of BatchTopK (and Matryoshka)."""

    threshold_update: Literal["ema_dl", "ema_saelens", "mean"] = "ema_dl"
    """BatchTopK θ rule: ema_dl, ema_saelens or mean."""
    threshold_start_step: int = 1000
    """BatchTopK ema_dl: first step of the θ EMA (at most a quarter of the run)."""
    batch_sparse: Literal["auto", "sparse", "dense"] = "auto"
    """BatchTopK/Matryoshka training: sparse kernels, dense autograd, or auto (sparse when k/d_sae <= 0.05)."""

    def check(self) -> None:
        """The TopK checks, and a threshold start step of at least 0."""
        super().check()
        if self.threshold_start_step < 0:
            raise UserError(f"--threshold-start-step must be at least 0, got {self.threshold_start_step}")


@options_for("matryoshka")
@dataclass(frozen=True)
class MatryoshkaOptions(BatchTopKOptions):
    """Options of the Matryoshka SAE."""

    group_fraction: list[float] = field(default_factory=list)
    """Matryoshka: fraction of the latents in each nested group, in order; they must sum to 1."""
    matryoshka_loss: Literal["sum", "dl_weighted_mean"] = "sum"
    """Matryoshka reconstruction: sum (paper, SAELens) or dl_weighted_mean (dictionary_learning)."""


@options_for("relu")
@dataclass(frozen=True)
class ReLUOptions(WarmupOptions):
    """Options of the ReLU + L1 SAE."""

    l1_variant: Literal["unit_norm", "decoder_norm"] = "unit_norm"
    """ReLU: unit_norm (unit decoder rows, plain L1) or decoder_norm (L1 weighted by decoder norms)."""


@options_for("jumprelu")
@dataclass(frozen=True)
class JumpReLUOptions(WarmupOptions):
    """Options of the JumpReLU SAE."""

    jumprelu_sparsity: Literal["l0", "target_l0"] = "l0"
    """JumpReLU sparsity term: l0 (paper) or target_l0 (dictionary_learning)."""
    target_l0: float = 20.0
    """JumpReLU target_l0: wanted L0."""
    bandwidth: float = 1e-3
    """JumpReLU: bandwidth ε of the pseudo-derivative."""
    threshold_init: float = 1e-3
    """JumpReLU: initial threshold θ."""

    def check(self) -> None:
        """The base checks, and a positive target L0, bandwidth and initial threshold."""
        super().check()
        for name in ("target_l0", "bandwidth", "threshold_init"):
            if not getattr(self, name) > 0:
                raise UserError(f"--{name.replace('_', '-')} must be greater than 0, got {getattr(self, name):g}")


@options_for("tied")
@dataclass(frozen=True)
class TiedOptions(ArchOptions):
    """The theory SAE (tied weights, no biases, ReLU) has no options of its own."""


@options_for("gsae")
@dataclass(frozen=True)
class GSAEOptions(ArchOptions):
    """Options of the Guided SAE (G-SAE): latents 0..C-1 are tied to the store's C labelled concepts."""

    gsae_activation: Literal["topk-sigmoid", "topk"] = "topk-sigmoid"
    """G-SAE: a sigmoid on the k kept logits (the paper's topk-sigmoid), or ReLU TopK."""
    concept_reduction: Literal["sum", "mean"] = "sum"
    """G-SAE: the concept BCE terms summed (the paper's code) or averaged as 1/(C+1) Σ (its project page)."""
    concept_weight: float = 1.0
    """G-SAE: multiplier of the concept BCE term in the loss."""

    def check(self) -> None:
        """Raise a UserError for a negative concept-loss weight."""
        if not self.concept_weight >= 0:
            raise UserError(f"--concept-weight must be at least 0, got {self.concept_weight:g}")

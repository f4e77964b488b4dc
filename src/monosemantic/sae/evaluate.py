"""Held-out evaluation of an SAE on raw activations: pure functions on tensors plus one streaming loop.

:func:`fvu_from_sums` is the project's one definition of the fraction of variance unexplained: the training log
(:func:`batch_fvu`), ``eval.json`` (:class:`ReconStats`) and ``monosemantic.metrics.fvu`` all compute it, so the
numbers mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from monosemantic.sae.core import SAE


@dataclass(frozen=True)
class EvalResult:
    """``eval.json``: the saved SAE (raw activations in, as saved) on the held-out rows of its store."""

    fvu: float
    """Fraction of variance unexplained (:func:`fvu_from_sums`)."""
    mse: float
    """Mean squared error per entry."""
    l0: float
    """Mean number of active latents per row."""
    dead_fraction: float
    """Share of latents that fired on none of the held-out rows."""
    cosine: float
    """Mean cosine similarity of each row and its reconstruction."""
    n_rows: float
    """Held-out rows evaluated (a float, as eval.json has always written it)."""
    dead_fraction_train: float
    """Share of latents dead at the end of training (no firing in the last ``dead_tokens`` rows)."""
    concept_auroc: dict[str, float | None] | None = None
    """Label-trained architectures (G-SAE): each concept latent's held-out AUROC (None: one class only)."""

    def to_json(self) -> dict[str, object]:
        """The JSON of ``eval.json`` (``concept_auroc`` only where there is one)."""
        data: dict[str, object] = {"fvu": self.fvu, "mse": self.mse, "l0": self.l0,
                                   "dead_fraction": self.dead_fraction, "cosine": self.cosine, "n_rows": self.n_rows,
                                   "dead_fraction_train": self.dead_fraction_train}
        if self.concept_auroc is not None:
            data["concept_auroc"] = self.concept_auroc
        return data


@dataclass
class ReconStats:
    """Streaming sums (float64) for FVU, MSE, L0, firing counts and cosine over many batches."""

    d_sae: int
    n: int = 0
    sum_x: Tensor | None = None
    sum_x2: Tensor | None = None
    sum_e: Tensor | None = None
    sum_e2: Tensor | None = None
    l0: float = 0.0
    cos: float = 0.0
    fired: Tensor = field(default_factory=lambda: torch.zeros(0))

    def add(self, x: Tensor, x_hat: Tensor, f: Tensor | None) -> None:
        # sums stay on the host in float64 (MPS has no float64); only [d]- and [d_sae]-sized results travel
        x, x_hat = x.double() if x.device.type != "mps" else x.cpu().double(), x_hat.to(x.device).double()
        e = x - x_hat
        if self.sum_x is None:
            self.fired = torch.zeros(self.d_sae, dtype=torch.float64)
        z = torch.zeros(x.shape[1], dtype=torch.float64)
        self.sum_x = (self.sum_x if self.sum_x is not None else z.clone()) + x.sum(0).cpu()
        self.sum_x2 = (self.sum_x2 if self.sum_x2 is not None else z.clone()) + x.pow(2).sum(0).cpu()
        self.sum_e = (self.sum_e if self.sum_e is not None else z.clone()) + e.sum(0).cpu()
        self.sum_e2 = (self.sum_e2 if self.sum_e2 is not None else z.clone()) + e.pow(2).sum(0).cpu()
        self.cos += float(torch.nn.functional.cosine_similarity(x, x_hat, dim=1).sum())
        if f is not None:
            active = f > 0
            self.l0 += float(active.sum())
            self.fired += active.sum(0).double().cpu()
        self.n += x.shape[0]

    def result(self, dead_fraction_train: float, concept_auroc: dict[str, float | None] | None = None
               ) -> EvalResult:
        """The sums as ``eval.json``'s numbers, with the training-side dead share and any concept AUROCs."""
        assert self.sum_x is not None and self.sum_x2 is not None and self.sum_e is not None
        assert self.sum_e2 is not None
        n = self.n
        return EvalResult(
            fvu=float(fvu_from_sums(n, self.sum_x, self.sum_x2, self.sum_e, self.sum_e2)),
            mse=float(self.sum_e2.sum() / (n * self.sum_x.numel())),
            l0=self.l0 / n,
            dead_fraction=float((self.fired == 0).double().mean()),
            cosine=self.cos / n,
            n_rows=float(n),
            dead_fraction_train=dead_fraction_train,
            concept_auroc=concept_auroc,
        )

    def log_frequency(self) -> Tensor:
        """log10 of each latent's firing frequency (+1e-10), SAELens' ``sparsity.safetensors``."""
        return torch.log10(self.fired / max(self.n, 1) + 1e-10).float()


def fvu_from_sums(n: int, sum_x: Tensor, sum_x2: Tensor, sum_e: Tensor, sum_e2: Tensor) -> Tensor:
    """Fraction of variance unexplained ``Σ_d Var_n(x − x̂) / Σ_d Var_n(x)`` from per-dimension sums over n rows of
    x, x², e = x − x̂ and e² (float64 [d] each); the variances are over the rows, so a constant offset of the
    reconstruction is not counted as error. A 0-dim tensor (no host sync)."""
    var_x = (sum_x2 - sum_x.pow(2) / n).sum()
    var_e = (sum_e2 - sum_e.pow(2) / n).sum()
    return var_e / var_x


def batch_fvu(x: Tensor, x_hat: Tensor) -> Tensor:
    """FVU of one batch [B, d] as a 0-dim float64 tensor on the batch's device."""
    x, x_hat = x.detach().double(), x_hat.detach().double()
    e = x - x_hat
    return fvu_from_sums(x.shape[0], x.sum(0), x.pow(2).sum(0), e.sum(0), e.pow(2).sum(0))


def fvu(x: Tensor, x_hat: Tensor) -> float:
    """FVU of paired rows [N, d] as a float (see :func:`fvu_from_sums`)."""
    return float(batch_fvu(x, x_hat))


@torch.no_grad()
def evaluate(sae: SAE, batches: Iterable[Tensor]) -> ReconStats:
    """Inference-mode encode/decode of every batch (raw activations, the SAE as saved), on the SAE's device."""
    stats = ReconStats(sae.cfg.d_sae)
    device = sae.W_dec.device
    for x in batches:
        f = sae.encode(x.to(device))
        stats.add(x.to(device), sae.decode(f), f)
    return stats

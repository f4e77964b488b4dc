"""Held-out evaluation of an SAE on raw activations: pure functions on tensors plus one streaming loop."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from monosemantic.sae.core import SAE


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
        x, x_hat = x.double(), x_hat.double()
        e = x - x_hat
        if self.sum_x is None:
            z = torch.zeros(x.shape[1], dtype=torch.float64)
            self.sum_x, self.sum_x2, self.sum_e, self.sum_e2 = z.clone(), z.clone(), z.clone(), z.clone()
            self.fired = torch.zeros(self.d_sae, dtype=torch.float64)
        self.sum_x += x.sum(0)
        self.sum_x2 += x.pow(2).sum(0)
        self.sum_e += e.sum(0)
        self.sum_e2 += e.pow(2).sum(0)
        self.cos += float(torch.nn.functional.cosine_similarity(x, x_hat, dim=1).sum())
        if f is not None:
            active = f > 0
            self.l0 += float(active.sum())
            self.fired += active.sum(0).double()
        self.n += x.shape[0]

    def result(self) -> dict[str, float]:
        assert self.sum_x is not None and self.sum_x2 is not None and self.sum_e is not None
        assert self.sum_e2 is not None
        n = self.n
        var_x = (self.sum_x2 - self.sum_x.pow(2) / n).sum()
        var_e = (self.sum_e2 - self.sum_e.pow(2) / n).sum()
        return {
            "fvu": float(var_e / var_x),
            "mse": float(self.sum_e2.sum() / (n * self.sum_x.numel())),
            "l0": self.l0 / n,
            "dead_fraction": float((self.fired == 0).double().mean()),
            "cosine": self.cos / n,
            "n_rows": float(n),
        }

    def log_frequency(self) -> Tensor:
        """log10 of each latent's firing frequency (+1e-10), SAELens' ``sparsity.safetensors``."""
        return torch.log10(self.fired / max(self.n, 1) + 1e-10).float()


def fvu(x: Tensor, x_hat: Tensor) -> float:
    """Fraction of variance unexplained, ``Σ_d Var(x − x̂) / Σ_d Var(x)`` (methods.md §0.2), in float64."""
    x, x_hat = x.double(), x_hat.double()
    e = x - x_hat
    return float((e - e.mean(0)).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


@torch.no_grad()
def evaluate(sae: SAE, batches: Iterable[Tensor]) -> ReconStats:
    """Inference-mode encode/decode of every batch (raw activations, the SAE as saved)."""
    stats = ReconStats(sae.cfg.d_sae)
    for x in batches:
        f = sae.encode(x)
        stats.add(x, sae.decode(f), f)
    return stats

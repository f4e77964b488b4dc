"""Each feature's top-5 activating units (tokens or words), kept while the activations stream past, and their texts:
what the junk and shared-token filters and the semantic subspaces read (Lan et al., arXiv 2410.06981, §3.1, §4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from monosemantic.compare.align import Alignment

TOP = 5
"""Top-activating units kept per feature."""


@dataclass(frozen=True)
class TopTexts:
    """Per feature, the texts of its top units that fired, and their ±2-unit contexts (same order)."""

    tokens: list[list[str]]
    contexts: list[list[str]]


class TopUnits:
    """The ``TOP`` highest-activating units of every feature over the chunks added so far."""

    def __init__(self, width: int) -> None:
        self.vals = torch.full((TOP, width), -torch.inf)
        self.units = torch.full((TOP, width), -1, dtype=torch.int64)

    def add(self, x: torch.Tensor, offset: int) -> None:
        """A dense chunk ``[c, width]`` of units ``offset .. offset + c``."""
        k = min(TOP, len(x))
        v, u = torch.topk(x, k, dim=0)
        vals, j = torch.topk(torch.cat([self.vals, v]), TOP, dim=0)
        self.units = torch.gather(torch.cat([self.units, u + offset]), 0, j)
        self.vals = vals

    def texts(self, al: Alignment) -> TopTexts:
        """The texts of each feature's top units that fired (activation > 0), and their contexts."""
        tokens, contexts = [], []
        for f in range(self.units.shape[1]):
            fired = [int(u) for u, v in zip(self.units[:, f], self.vals[:, f], strict=True) if v > 0 and u >= 0]
            tokens.append([al.texts[u] for u in fired])
            contexts.append([al.context(u) for u in fired])
        return TopTexts(tokens, contexts)

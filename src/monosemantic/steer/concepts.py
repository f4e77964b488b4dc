"""The concept latents of an SAE on labelled held-out rows: which latent stands for each concept, how monosemantic it
is (balanced FMS@1 / FMS@5, Härle et al., arXiv 2506.19382), how well it detects the concept (AUROC), and the sign
that steers towards the concept.

An SAE that ties latents to concepts (a G-SAE: :class:`ConceptSAE`) names them itself and detects each concept with
its latent's pre-TopK logit, as the paper scores it; for any other SAE the concept latent is the root of its FMS
tree, the best single latent, and it detects with that latent's activation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor

from monosemantic.errors import UserError
from monosemantic.metrics import fms
from monosemantic.sae.core import SAE
from monosemantic.store import ActivationStore

FMS_P = (1, 5)
"""The FMS@p reported for every concept latent."""
ENCODE_CHUNK = 4096
"""Rows encoded at once."""


@runtime_checkable
class ConceptSAE(Protocol):
    """An SAE whose latents are tied to labelled concepts (the G-SAE)."""

    def concept_latents(self) -> list[int]:
        """The latent tied to each concept, in the order of the concept labels."""
        ...

    def concept_logits(self, x: Tensor) -> Tensor:
        """The concept detectors [.., C]: the pre-TopK logits of the concept latents."""
        ...


@dataclass(frozen=True)
class GroupedRows:
    """Token rows ``x`` and the item each belongs to: encode the rows, then average per item."""

    x: Tensor
    group: Tensor
    """[rows] the item (0 .. n−1) of each row."""
    n: int
    """Number of items."""

    def __len__(self) -> int:
        return self.n


Rows = Tensor | GroupedRows
"""Held-out rows to score on: token rows, or token rows averaged per item after encoding."""


@dataclass(frozen=True)
class ConceptScores:
    """One SAE's concept latents scored on held-out rows."""

    fms1: float
    """Mean balanced FMS@1 over concepts (from the concept latent)."""
    fms5: float
    fms1_per_concept: list[float]
    fms5_per_concept: list[float]
    root: list[int]
    """Root latent of each concept's free FMS tree (the best single latent; −1 where none splits)."""
    latents: list[int]
    """The latent steered for each concept."""
    auroc: list[float | None]
    """Detection AUROC per concept (None where the rows hold one class only)."""
    auroc_mean: float | None
    signs: list[float]
    """+1, or −1 for a root latent that fires for the concept's absence (steered with −α)."""
    best_latent_fms1: float
    """Mean FMS@1 of the best single latent (the free tree's; the same as ``fms1`` without tied latents)."""
    root_is_reserved: list[bool] | None
    """Per concept, whether the free tree's root is the tied latent (None for an SAE without tied latents)."""

    def to_json(self) -> dict[str, object]:
        return {
            "fms@1": self.fms1, "fms@5": self.fms5, "fms@1_per_concept": self.fms1_per_concept,
            "fms@5_per_concept": self.fms5_per_concept, "root": self.root, "latents": self.latents,
            "auroc": self.auroc, "auroc_mean": self.auroc_mean, "signs": self.signs,
            "best_latent_fms@1": self.best_latent_fms1, "root_is_reserved": self.root_is_reserved,
        }


def concept_rows(store: ActivationStore, *, per_token: bool, limit: int, seed: int,
                 holdout: float) -> tuple[Rows, np.ndarray]:
    """Held-out rows (the share ``holdout`` of items that ``store.split`` keeps out of training) and their concept
    labels [N, C]: per token, labelled rows plus as many unlabelled ones (at most ``limit`` in all); per item, the
    token rows of at most ``limit`` items grouped by item (latents are averaged over each item's tokens after
    encoding)."""
    row_labels, item_labels = store.row_labels, store.labels
    if row_labels is None or item_labels is None:
        raise UserError(f"the store {store.root} has no concept labels; extract it from labelled data")
    _, eval_rows = store.split(holdout=holdout, seed=seed)
    rng = np.random.default_rng(seed)
    if per_token:
        labels = row_labels[eval_rows]
        pos = eval_rows[labels.any(1)]
        neg = eval_rows[~labels.any(1)]
        pos = rng.choice(pos, size=min(len(pos), limit // 2), replace=False)
        neg = rng.choice(neg, size=min(len(neg), len(pos)), replace=False)
        rows = np.sort(np.concatenate([pos, neg]))
        return store.gather(None, rows), row_labels[rows].astype(np.int64)
    items = np.unique(store.item_index[eval_rows])
    if len(items) > limit:
        items = np.sort(rng.choice(items, size=limit, replace=False))
    rows = np.nonzero(np.isin(store.item_index, items))[0]
    item_of = np.searchsorted(items, store.item_index[rows])
    labels = item_labels[items]
    if labels.ndim == 1:  # class ids: one binary concept column per class, as the store's row labels have
        labels = np.eye(len(store.label_names), dtype=np.int64)[labels]
    return GroupedRows(store.gather(None, rows), torch.from_numpy(item_of), len(items)), labels.astype(np.int64)


@torch.no_grad()
def encode_rows(sae: SAE, rows: Rows) -> Tensor:
    """The SAE's latents of ``rows`` [N, d_sae] (averaged per item for grouped rows), on the CPU."""
    return _per_row(sae.encode, sae.W_dec.device, rows)


@torch.no_grad()
def _per_row(fn: Callable[[Tensor], Tensor], device: torch.device, rows: Rows) -> Tensor:
    """``fn`` of the rows in chunks on ``device``; for grouped rows, its mean over each item's rows."""
    x = rows.x if isinstance(rows, GroupedRows) else rows
    out = torch.cat([fn(x[a : a + ENCODE_CHUNK].to(device)).float().cpu() for a in range(0, len(x), ENCODE_CHUNK)])
    if not isinstance(rows, GroupedRows):
        return out
    sums = torch.zeros(rows.n, out.shape[1]).index_add_(0, rows.group, out)
    counts = torch.bincount(rows.group, minlength=rows.n).clamp_min(1).unsqueeze(1)
    return sums / counts


def score_concepts(sae: SAE, x: Rows, y: np.ndarray, seed: int) -> ConceptScores:
    """Balanced FMS@1/@5 per concept of each concept latent and its detection AUROC (see the module docstring);
    ``best_latent_fms1`` is the best single latent's, so a G-SAE's reserved latent can be compared with it."""
    f = encode_rows(sae, x)
    labels = torch.from_numpy(y)
    tied = sae.concept_latents() if isinstance(sae, ConceptSAE) else None
    res = fms(f, labels, p=FMS_P, seed=seed, balance=True, root=tied)
    free = fms(f, labels, p=FMS_P, seed=seed, balance=True) if tied is not None else res
    roots = [int(r) for r in free["root"]]
    latents, scores = _detectors(sae, x, f, roots)
    auroc = [_auroc(y[:, c], s) for c, s in enumerate(scores)]
    # a root latent that fires for the concept's absence steers towards it with the opposite sign
    signs = [-1.0 if tied is None and a < 0.5 else 1.0 for a in auroc]
    return ConceptScores(
        fms1=res["fms_mean"][1], fms5=res["fms_mean"][5], fms1_per_concept=[float(v) for v in res["fms"][1]],
        fms5_per_concept=[float(v) for v in res["fms"][5]], root=roots, latents=latents,
        auroc=[None if not np.isfinite(a) else a for a in auroc],
        auroc_mean=float(np.nanmean(auroc)) if np.isfinite(auroc).any() else None, signs=signs,
        best_latent_fms1=free["fms_mean"][1],
        root_is_reserved=[r == j for j, r in zip(tied, roots, strict=True)] if tied is not None else None,
    )


def _detectors(sae: SAE, x: Rows, f: Tensor, roots: list[int]) -> tuple[list[int], list[np.ndarray]]:
    """The concept latents and each one's detector scores on the rows: a G-SAE's tied latents with their pre-TopK
    logits, any other SAE's FMS roots with their activations."""
    if isinstance(sae, ConceptSAE):
        tied = sae.concept_latents()
        logits = _per_row(sae.concept_logits, sae.W_dec.device, x)
        return tied, [logits[:, c].numpy() for c in range(len(tied))]
    if min(roots) < 0:
        raise UserError(f"no latent of the vanilla SAE separates concept {roots.index(min(roots))} on the held-out "
                        "rows (every latent is constant there); train it longer or use more items")
    return roots, [f[:, j].numpy() for j in roots]


def _auroc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the binary labels ``y``; NaN when ``y`` holds one class only."""
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")

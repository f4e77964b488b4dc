"""Unit-label metrics of MedSAE (Renzulli et al. 2025, arXiv 2510.26411): Pearson correlation, the entropy of
the normalised |ρ|, the best unit per class, and precision/recall/F1 of binarised firing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError
from monosemantic.metrics._common import as_matrix, auto_chunk, exact_matmul, label_matrix

FIRING_EPS = 1e-7
"""An activation counts as positive (firing) when it is > FIRING_EPS."""


def label_correlation(acts: Any, labels: Any, *, chunk_size: int | None = None) -> torch.Tensor:
    """Pearson ρ[j, c] between unit j's activations and label column c over the N items: float64 [K, C].

    labels: [N] class ids (one-hot, column c = class c, C = max id + 1) or [N, C] binary. A constant unit or a
    constant label column gets ρ = 0. Two passes over the items (means, then centred sums) in fp64.
    """
    a = as_matrix(acts, "activations")
    y, _ = label_matrix(labels, a.shape[0])
    n, k = a.shape
    y = y.to(a.device)
    step = chunk_size or auto_chunk(k)
    mean_a = torch.zeros(k, dtype=torch.float64, device=a.device)
    for i in range(0, n, step):
        mean_a += a[i : i + step].to(torch.float64).sum(0)
    mean_a /= n
    yc = y - y.mean(0)
    cov = torch.zeros(k, y.shape[1], dtype=torch.float64, device=a.device)
    var_a = torch.zeros(k, dtype=torch.float64, device=a.device)
    with exact_matmul():
        for i in range(0, n, step):
            ac = a[i : i + step].to(torch.float64) - mean_a
            cov.addmm_(ac.T, yc[i : i + step])
            var_a += (ac * ac).sum(0)
    var_y = (yc * yc).sum(0)
    # exact constancy (max == min): a centred constant column can leave rounding residue that would look like signal
    const_a = a.max(0).values == a.min(0).values
    const_y = y.max(0).values == y.min(0).values
    denom = torch.sqrt(var_a[:, None] * var_y[None, :])
    rho = cov / torch.where(denom > 0, denom, torch.ones_like(denom))
    rho = rho.clamp(-1.0, 1.0)
    rho[const_a] = 0.0
    rho[:, const_y] = 0.0
    return rho


def correlation_entropy(corr: Any) -> torch.Tensor:
    """H[j] = -Σ_c p log(p + 1e-10) with p = |ρ[j, c]| / (Σ_c' |ρ[j, c']| + 1e-8), natural log: float64 [K].

    Lower means the unit's correlation mass sits on fewer classes (more monosemantic).
    """
    r = torch.as_tensor(corr).to(torch.float64)
    if r.ndim != 2 or r.numel() == 0:
        raise UserError(f"corr must be a non-empty [K, C] matrix; got shape {tuple(r.shape)}")
    mag = r.abs()
    p = mag / (mag.sum(1, keepdim=True) + 1e-8)
    return -(p * torch.log(p + 1e-10)).sum(1)


@dataclass(frozen=True)
class BestUnits:
    """MedSAE's best unit per class (see `best_unit_per_class`)."""

    indices: torch.Tensor
    """int64 [C]: the unit of each class, -1 when no unit is alive."""
    scores: torch.Tensor
    """float64 [C]: its ρ (CorrScore), NaN when none."""
    entropy: torch.Tensor
    """float64 [C]: its correlation entropy (EntropyScore), NaN when none."""
    alive: torch.Tensor
    """bool [K]: max_c |ρ[j, c]| > alive_threshold."""
    corr_mean: float
    """Mean CorrScore over the classes that have a unit (NaN only when none has)."""
    entropy_mean: float
    """Mean EntropyScore over the classes that have a unit (NaN only when none has)."""
    n_missing: int
    """Classes without an alive unit."""


def best_unit_per_class(corr: Any, alive_threshold: float = 0.2) -> BestUnits:
    """Per class c, the alive unit with the largest signed ρ[j, c], and its entropy.

    A unit is alive when max_c |ρ[j, c]| > alive_threshold. Ties go to the lower unit index.
    """
    r = torch.as_tensor(corr).to(torch.float64)
    entropy = correlation_entropy(r)
    alive = r.abs().max(1).values > alive_threshold
    c = r.shape[1]
    indices = torch.full((c,), -1, dtype=torch.int64)
    scores = torch.full((c,), math.nan, dtype=torch.float64)
    ent = torch.full((c,), math.nan, dtype=torch.float64)
    if bool(alive.any()):
        masked = torch.where(alive[:, None], r, torch.full_like(r, -math.inf))
        best = masked.argmax(0)
        indices = best.cpu()
        scores = r[best, torch.arange(c)].cpu()
        ent = entropy[best].cpu()
    found = indices >= 0
    return BestUnits(
        indices=indices,
        scores=scores,
        entropy=ent,
        alive=alive.cpu(),
        corr_mean=float(scores[found].mean()) if bool(found.any()) else math.nan,
        entropy_mean=float(ent[found].mean()) if bool(found.any()) else math.nan,
        n_missing=int((~found).sum()),
    )


@dataclass(frozen=True)
class PrecisionRecall:
    """Precision, recall and F1 of each unit's binarised firing against each label (see `precision_recall_f1`)."""

    precision: torch.Tensor
    """float64 [K, C]: TP / #fires (0 when the unit never fires)."""
    recall: torch.Tensor
    """float64 [K, C]: TP / #positives of the label (0 when it has none)."""
    f1: torch.Tensor
    """float64 [K, C]: 2PR / (P + R), 0 when undefined."""
    threshold: torch.Tensor
    """float64 [K]: t_j (+inf for a unit with no positive activation: it never fires)."""
    fires: torch.Tensor
    """int64 [K]: items the unit fires on."""
    l0: torch.Tensor
    """[K]: #fires // top_fraction."""
    valid: torch.Tensor
    """bool [K]: l0_min < l0 < l0_max."""


def precision_recall_f1(
    acts: Any,
    labels: Any,
    top_fraction: float = 0.30,
    l0_min: float = 15,
    l0_max: float = 300,
    *,
    chunk_units: int | None = None,
) -> PrecisionRecall:
    """Precision/recall/F1 of each unit's binarised firing against each label.

    Unit j fires on item i when A[i, j] > t_j, where t_j is the k-th smallest of its positive (> 1e-7)
    activations with k = max(1, floor((1 - top_fraction) · #positive)): the top `top_fraction` of its positive
    activations. Prec = TP / #fires, Rec = TP / #positives of the label, F1 = 2PR / (P + R), each 0 when
    undefined. valid_j = l0_min < l0_j < l0_max with l0_j = #fires_j // top_fraction (Python floor division).
    """
    if not 0.0 < top_fraction < 1.0:
        raise UserError(f"top_fraction must lie in (0, 1); got {top_fraction}")
    a = as_matrix(acts, "activations")
    y, _ = label_matrix(labels, a.shape[0])
    n, k = a.shape
    keep = 1.0 - top_fraction
    thresholds = torch.full((k,), math.inf, dtype=torch.float64)
    step = chunk_units or max(1, (1 << 22) // n)
    for j in range(0, k, step):
        blk = a[:, j : j + step].to(torch.float64).T
        positive = blk > FIRING_EPS
        count = positive.sum(1)
        srt = torch.sort(torch.where(positive, blk, torch.full_like(blk, math.inf)), dim=1).values
        kth = torch.from_numpy(np.maximum(1, np.floor(keep * count.cpu().numpy().astype(np.float64))).astype(np.int64))
        t = srt.gather(1, (kth - 1).clamp_max(n - 1)[:, None].to(srt.device)).squeeze(1)
        thresholds[j : j + step] = torch.where(count > 0, t, torch.full_like(t, math.inf)).cpu()
    thr = thresholds.to(a.device)
    y = y.to(a.device)
    tp = torch.zeros(k, y.shape[1], dtype=torch.float64, device=a.device)
    fires = torch.zeros(k, dtype=torch.float64, device=a.device)
    rows = auto_chunk(k)
    with exact_matmul():
        for i in range(0, n, rows):
            fired = (a[i : i + rows].to(torch.float64) > thr).to(torch.float64)
            tp.addmm_(fired.T, y[i : i + rows])
            fires += fired.sum(0)
    tp, fires = tp.cpu(), fires.cpu()
    label_pos = y.sum(0).cpu()
    precision = torch.where(fires[:, None] > 0, tp / fires.clamp_min(1)[:, None], torch.zeros_like(tp))
    recall = torch.where(label_pos[None, :] > 0, tp / label_pos.clamp_min(1)[None, :], torch.zeros_like(tp))
    ssum = precision + recall
    f1 = torch.where(ssum > 0, 2 * precision * recall / torch.where(ssum > 0, ssum, torch.ones_like(ssum)),
                     torch.zeros_like(ssum))
    l0 = torch.from_numpy(np.floor_divide(fires.numpy(), top_fraction))
    valid = (l0 > l0_min) & (l0 < l0_max)
    return PrecisionRecall(precision=precision, recall=recall, f1=f1, threshold=thresholds,
                           fires=fires.to(torch.int64), l0=l0, valid=valid)

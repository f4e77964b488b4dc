"""Top-activating items per unit and the pairwise Jaccard uniqueness of those sets (Pach et al., arXiv 2504.02821)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from monosemantic.errors import UserError
from monosemantic.metrics._common import as_matrix

DEFAULT_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(10))


def top_activating(acts: Any, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Each unit's n highest activations: (values [K, n], item indices [K, n] int64), sorted descending.

    Ties are broken by the lower item index, also at the n-th place, so the result is deterministic.
    """
    a = as_matrix(acts, "activations")
    n_items, k = a.shape
    if not 1 <= n <= n_items:
        raise UserError(f"n must lie in 1..{n_items} (the number of items); got {n}")
    values = torch.empty(k, n, dtype=a.dtype)
    indices = torch.empty(k, n, dtype=torch.int64)
    step = max(1, (1 << 22) // n_items)
    for j in range(0, k, step):
        blk = a[:, j : j + step].T.contiguous()
        nth = torch.topk(blk, n, dim=1).values[:, -1:]
        above = blk > nth
        equal = blk == nth
        need = n - above.sum(1, keepdim=True)
        chosen = above | (equal & (torch.cumsum(equal.to(torch.int64), dim=1) <= need))
        idx = chosen.nonzero()[:, 1].reshape(-1, n)  # ascending item index within each unit
        val = blk.gather(1, idx)
        order = torch.sort(val, dim=1, descending=True, stable=True).indices
        values[j : j + step] = val.gather(1, order).cpu()
        indices[j : j + step] = idx.gather(1, order).cpu()
    return values, indices


class JaccardResult(dict):
    """Uniqueness of top-activating sets; a dict whose keys are also attributes.

    ``units`` (ids of the units kept), ``n_units``, ``dropped`` (units removed by the values/mask rule),
    ``set_size`` (n), ``total_pairs`` (n_units·(n_units-1)/2), ``thresholds``, ``counts`` (pairs with J > t,
    strict), ``ratios`` (counts / total_pairs; 0 when there is no pair), ``most_similar`` / ``least_similar``
    (lists of (unit_u, unit_v, J) with unit_u < unit_v; ties by (u, v)), ``n_overlapping`` (pairs with J > 0).
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err


def jaccard_uniqueness(
    top_indices: Any,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
    *,
    values: Any = None,
    mask: Any = None,
    n_extreme: int = 10,
) -> JaccardResult:
    """Pairwise Jaccard similarity J(u, v) = |H_u ∩ H_v| / |H_u ∪ H_v| of the units' top-item sets.

    top_indices: [K, n] item ids per unit (distinct within a row). values: the matching [K, n] activations;
    when given, units whose n-th highest activation is exactly 0 are dropped (dead or almost dead). mask: [K]
    bool, units to keep. Only overlapping pairs are built: overlaps O = H Hᵀ of the sparse unit x item
    incidence matrix, and since every set has n items, J = O / (2n - O).
    """
    idx = torch.as_tensor(top_indices)
    if idx.ndim != 2 or idx.numel() == 0:
        raise UserError(f"top_indices must be a non-empty [K, n] matrix; got shape {tuple(idx.shape)}")
    if idx.dtype.is_floating_point:
        raise UserError("top_indices must hold integer item ids")
    idx_np = idx.to(torch.int64).cpu().numpy()
    k, n = idx_np.shape
    if idx_np.min() < 0:
        raise UserError("top_indices holds negative item ids; drop units with fewer than n firing items instead")
    srt = np.sort(idx_np, axis=1)
    if (srt[:, 1:] == srt[:, :-1]).any():
        raise UserError("a row of top_indices repeats an item; each unit's top set must hold n distinct items")
    keep = np.ones(k, dtype=bool)
    if values is not None:
        v = torch.as_tensor(values).to(torch.float64).cpu().numpy()
        if v.shape != (k, n):
            raise UserError(f"values must have the shape of top_indices {(k, n)}; got {v.shape}")
        keep &= v.min(1) != 0
    if mask is not None:
        m = torch.as_tensor(mask).to(torch.bool).cpu().numpy().reshape(-1)
        if m.shape[0] != k:
            raise UserError(f"mask must have one entry per unit ({k}); got {m.shape[0]}")
        keep &= m
    units = np.flatnonzero(keep)
    m_units = units.size
    total = m_units * (m_units - 1) // 2
    rows = idx_np[units]
    n_items = int(rows.max()) + 1 if rows.size else 1
    inc = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.int32), (np.repeat(np.arange(m_units), n), rows.reshape(-1))),
        shape=(m_units, n_items),
    )
    overlap = sp.triu(inc @ inc.T, k=1).tocoo()
    pu, pv, po = overlap.row.astype(np.int64), overlap.col.astype(np.int64), overlap.data.astype(np.float64)
    nz = po > 0
    pu, pv, po = pu[nz], pv[nz], po[nz]
    jac = po / (2 * n - po)
    ths = tuple(float(t) for t in thresholds)
    counts = [int(total) if t < 0 else int((jac > t).sum()) for t in ths]
    ratios = [c / total if total else 0.0 for c in counts]
    desc = np.lexsort((pv, pu, -jac))
    most = [(int(units[pu[i]]), int(units[pv[i]]), float(jac[i])) for i in desc[:n_extreme]]
    least = _zero_pairs(m_units, set(zip(pu.tolist(), pv.tolist(), strict=True)), n_extreme)
    least = [(int(units[a]), int(units[b]), 0.0) for a, b in least]
    if len(most) < n_extreme:  # fewer overlapping pairs than asked: the rest are zero pairs
        most += least[: n_extreme - len(most)]
    if len(least) < n_extreme:
        asc = np.lexsort((pv, pu, jac))
        least += [(int(units[pu[i]]), int(units[pv[i]]), float(jac[i])) for i in asc[: n_extreme - len(least)]]
    return JaccardResult(
        units=units.tolist(), n_units=int(m_units), dropped=int(k - m_units), set_size=int(n),
        total_pairs=int(total), thresholds=list(ths), counts=counts, ratios=ratios,
        most_similar=most, least_similar=least, n_overlapping=int(jac.size),
    )


def _zero_pairs(m: int, overlapping: set[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """The first `limit` pairs (u < v, lexicographic) that share no item."""
    out: list[tuple[int, int]] = []
    if len(overlapping) >= m * (m - 1) // 2:
        return out
    for u in range(m):
        for v in range(u + 1, m):
            if (u, v) not in overlapping:
                out.append((u, v))
                if len(out) >= limit:
                    return out
    return out

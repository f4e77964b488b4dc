"""Item-level pooling of token rows."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch


def pool_by_item(
    values: torch.Tensor, item_index: np.ndarray | torch.Tensor, n_items: int, how: Literal["max", "mean"] = "max"
) -> torch.Tensor:
    """[n_rows, K] token values -> [n_items, K], max (default) or mean over each item's rows."""
    idx = torch.as_tensor(np.asarray(item_index), dtype=torch.int64, device=values.device)
    if how == "max":
        out = torch.full((n_items, values.shape[1]), float("-inf"), dtype=values.dtype, device=values.device)
        out.scatter_reduce_(0, idx[:, None].expand_as(values), values, reduce="amax", include_self=True)
        return out.nan_to_num(neginf=0.0)
    if how == "mean":
        sums = torch.zeros(n_items, values.shape[1], dtype=torch.float64, device=values.device)
        sums.index_add_(0, idx, values.double())
        counts = torch.bincount(idx, minlength=n_items).clamp_min(1).to(sums)
        return (sums / counts[:, None]).to(values.dtype)
    raise ValueError(f"how must be 'max' or 'mean', got {how!r}")

"""Item-level activations of raw neurons or SAE latents, streamed over a store in chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from monosemantic.devices import to_device
from monosemantic.errors import UserError
from monosemantic.store import ActivationStore, nonfinite


@dataclass
class ItemActivations:
    acts: torch.Tensor
    """[n_items, K] pooled per item (max or mean over its rows)."""
    fired_rows: torch.Tensor
    """[K] number of rows where the unit is > 0."""
    n_rows: int
    l0: float
    """Mean number of units > 0 per row."""


@torch.inference_mode()
def item_activations(
    store: ActivationStore, hook: str | None, encode: Callable[[torch.Tensor], torch.Tensor], width: int,
    pool: Literal["max", "mean"] = "max", chunk_rows: int = 16384, device: torch.device | None = None,
) -> ItemActivations:
    """Encode every row (in chunks) and pool per item, never holding the [n_rows, K] matrix.

    With ``device`` the rows are encoded and pooled there (``encode`` must accept tensors on it); only the pooled
    [n_items, K] result comes back to the host.
    """
    device = device or torch.device("cpu")
    hook = store.hook(hook)
    n_items = store.n_items
    # float64 sums for mean pooling; MPS has no float64
    sum_dtype = torch.float32 if device.type == "mps" else torch.float64
    if pool == "max":
        out = torch.full((n_items, width), float("-inf"), device=device)
    else:
        out = torch.zeros(n_items, width, dtype=sum_dtype, device=device)
    fired = torch.zeros(width, dtype=torch.int64, device=device)
    items = torch.from_numpy(store.item_index).to(device)
    for start in range(0, store.n_rows, chunk_rows):
        stop = min(start + chunk_rows, store.n_rows)
        x = store.rows(hook, start, stop)
        _check_finite(x, store, hook, start)
        z = encode(to_device(x, device)).float()
        fired += (z > 0).sum(0, dtype=torch.int32)  # int32 sums of bools run about twice as fast as int64
        idx = items[start:stop]
        if pool == "max":
            out.scatter_reduce_(0, idx[:, None].expand_as(z), z, reduce="amax", include_self=True)
        else:
            out.index_add_(0, idx, z.to(sum_dtype))
    if pool == "mean":
        counts = torch.bincount(items, minlength=n_items).clamp_min(1).to(sum_dtype)
        out = (out / counts[:, None]).float()
    fired = fired.cpu()
    active = int(fired.sum())  # every row's positive count, summed over latents
    return ItemActivations(out.nan_to_num(neginf=0.0).cpu(), fired, store.n_rows, active / max(store.n_rows, 1))


def _check_finite(x: torch.Tensor, store: ActivationStore, hook: str, start: int) -> None:
    """Refuse NaN/inf rows: a NaN is never > 0, so its item would silently count as inactive."""
    mask = nonfinite(x)
    if mask is None:
        return
    row = start + int(mask.any(1).nonzero()[0, 0])
    item = int(store.item_index[row])
    raise UserError(
        f"hook {hook!r} of the store {store.root} holds NaN or inf values (first at row {row}, item {item}); "
        "re-extract the store or drop those items before scoring"
    )


def weakest_firing(acts: torch.Tensor, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Per unit, the n items with the smallest positive activation (values, indices); -1 where fewer fire."""
    masked = torch.where(acts > 0, acts, torch.full_like(acts, float("inf")))
    n = min(n, acts.shape[0])
    vals, idx = torch.topk(masked, n, dim=0, largest=False)
    idx = torch.where(torch.isfinite(vals), idx, torch.full_like(idx, -1))
    return vals.T.contiguous(), idx.T.contiguous()


def rows_of_items(store: ActivationStore, items: np.ndarray) -> dict[int, np.ndarray]:
    """The store rows of each given item (rows of an item are contiguous)."""
    starts = np.searchsorted(store.item_index, items, side="left")
    ends = np.searchsorted(store.item_index, items, side="right")
    return {int(i): np.arange(a, b) for i, a, b in zip(items, starts, ends, strict=True)}

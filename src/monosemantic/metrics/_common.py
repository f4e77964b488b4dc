"""Input checks and numeric guards shared by the pure metric functions."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError


def as_matrix(x: Any, name: str, *, dtype: torch.dtype | None = None, check_finite: bool = True) -> torch.Tensor:
    """A 2-D tensor (numpy arrays are wrapped without a copy where possible); empty or non-finite -> UserError.

    check_finite=False skips the full scan, for callers that check a reduction of the values instead.
    """
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise UserError(f"{name} must be a 2-D [items, units] array; got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise UserError(f"{name} is empty (shape {tuple(t.shape)}); give at least one item and one unit")
    if t.dtype.is_complex:
        raise UserError(f"{name} must be real-valued; got {t.dtype}")
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if check_finite and t.dtype.is_floating_point and not bool(torch.isfinite(t).all()):
        raise UserError(f"{name} holds NaN or infinite values; clean them before scoring")
    return t


def check_same_items(n_a: int, n_b: int, a: str, b: str) -> None:
    if n_a != n_b:
        raise UserError(f"{a} has {n_a} items (rows) but {b} has {n_b}; both must describe the same items")


def label_matrix(labels: Any, n: int, *, name: str = "labels") -> tuple[torch.Tensor, list[int]]:
    """[N] class ids -> one-hot [N, C] with column c = class c (C = max id + 1); [N, C] 0/1 -> itself.

    Returns the float64 matrix and the class ids / column indices it holds. A single class is a UserError.
    """
    y = torch.as_tensor(labels)
    if y.numel() == 0:
        raise UserError(f"{name} is empty; give one label per item")
    if y.ndim == 1:
        check_same_items(n, y.shape[0], "the activations", name)
        if y.dtype.is_floating_point:
            if not bool((y == y.round()).all()):
                raise UserError(f"{name} [N] must be integer class ids; got non-integer values")
            y = y.long()
        y = y.long()
        if int(y.min()) < 0:
            raise UserError(f"{name} must be class ids >= 0; got {int(y.min())}")
        classes = torch.unique(y)
        if classes.numel() < 2:
            raise UserError(f"{name} hold a single class ({int(classes[0])}); at least two are needed")
        onehot = torch.zeros(y.shape[0], int(y.max()) + 1, dtype=torch.float64)
        onehot[torch.arange(y.shape[0]), y] = 1.0
        return onehot, list(range(onehot.shape[1]))
    if y.ndim == 2:
        check_same_items(n, y.shape[0], "the activations", name)
        yf = y.to(torch.float64)
        if not bool(((yf == 0) | (yf == 1)).all()):
            raise UserError(f"{name} [N, C] must be binary (0/1 or bool) per concept column")
        varying = (yf.max(0).values != yf.min(0).values)
        if not bool(varying.any()):
            raise UserError(f"every column of {name} holds a single class; at least one must hold both 0 and 1")
        return yf, list(range(yf.shape[1]))
    raise UserError(f"{name} must be [N] class ids or [N, C] binary columns; got shape {tuple(y.shape)}")


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UserError(f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}")


@contextlib.contextmanager
def exact_matmul() -> Iterator[None]:
    """Disable TF32 for the duration (fp32 matmuls on Ampere+ GPUs otherwise drop to ~10-bit mantissas)."""
    cuda_flag = torch.backends.cuda.matmul.allow_tf32
    cudnn_flag = torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = cuda_flag
        torch.backends.cudnn.allow_tf32 = cudnn_flag


def auto_chunk(n_cols: int, budget_elems: int = 1 << 24, lo: int = 256, hi: int = 8192) -> int:
    """Rows per chunk so that one fp64 [rows, n_cols] block stays near `budget_elems` elements (128 MB)."""
    return int(min(hi, max(lo, budget_elems // max(n_cols, 1))))


@dataclass(frozen=True)
class ScoreSummary:
    """Per-unit scores summarised over the finite values only (a non-finite unit counts as dead); the statistics
    are None, not NaN, when no unit is finite, so nothing downstream averages a NaN by accident."""

    n: int
    """Units with a finite score."""
    dead: int
    """Units with a non-finite (NaN) score."""
    total: int
    mean: float | None
    std: float | None
    """Population standard deviation (ddof = 0)."""
    best: float | None
    """The highest score."""
    worst: float | None
    """The lowest score."""
    best_unit: int | None
    worst_unit: int | None
    top: list[int]
    """The unit ids with the highest scores, best first (ties by lower id)."""
    bottom: list[int]
    """The unit ids with the lowest scores, worst first (ties by lower id)."""


def summarize(scores: Any, *, n_extreme: int = 10) -> ScoreSummary:
    """Summary of per-unit scores over the finite values only; non-finite (NaN) units are counted as `dead`.

    ``top`` / ``bottom`` hold the `n_extreme` unit ids with the highest / lowest score (see `ScoreSummary`).
    """
    s = torch.as_tensor(scores).detach().to("cpu", torch.float64).reshape(-1)
    finite = torch.isfinite(s)
    ids = torch.nonzero(finite).reshape(-1)
    vals = s[ids]
    n, dead, total = int(ids.numel()), int((~finite).sum()), int(s.numel())
    if ids.numel() == 0:
        return ScoreSummary(n=n, dead=dead, total=total, mean=None, std=None, best=None, worst=None, best_unit=None,
                            worst_unit=None, top=[], bottom=[])
    order_desc = ids[torch.from_numpy(np.lexsort((ids.numpy(), -vals.numpy())).copy())]
    order_asc = ids[torch.from_numpy(np.lexsort((ids.numpy(), vals.numpy())).copy())]
    mean = float(vals.mean())
    return ScoreSummary(
        n=n, dead=dead, total=total,
        mean=mean,
        std=float(math.sqrt(float(((vals - mean) ** 2).mean()))),
        best=float(vals.max()),
        worst=float(vals.min()),
        best_unit=int(order_desc[0]),
        worst_unit=int(order_asc[0]),
        top=[int(i) for i in order_desc[:n_extreme]],
        bottom=[int(i) for i in order_asc[:n_extreme]],
    )

"""The sparse primitives of SAE training as torch operators (``torch.ops.monosemantic.*``).

Each primitive is a ``torch.library`` custom op with a typed schema and three implementations:

- CPU: the compiled kernels of ``native.py`` after checking dtypes, contiguity and index bounds (the C code trusts
  its arguments), or the torch version when the library is missing, disabled or the arguments do not fit it;
- any other device (CUDA, MPS): the torch version, built from gathers, ``embedding_bag`` and ``index_add_`` so that
  no dense [batch, d_sae] matrix is formed; on CUDA the decode (``gather_sum``) runs as a Triton kernel when
  ``triton`` imports and ``MONOSEMANTIC_TRITON`` is not ``0``;
- fake/meta: shapes only, so the SAE modules trace and run on the ``meta`` device.

:func:`torch_fallback` forces the torch versions everywhere (tests compare them with the native ones).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from monosemantic.sae import native

_CHUNK_ELEMS = 1 << 24  # torch versions: elements per [chunk, k, d] temporary


class ThreadFlag:
    """A per-thread switch, off by default; ``with flag.on():`` turns it on inside a block."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __bool__(self) -> bool:
        return bool(getattr(self._local, "value", False))

    @contextmanager
    def on(self) -> Iterator[None]:
        old = bool(self)
        self._local.value = True
        try:
            yield
        finally:
            self._local.value = old


FORCE_TORCH = ThreadFlag()
torch_fallback = FORCE_TORCH.on
"""Run the torch versions of every primitive inside the block, whatever the device."""


def _native(*ts: Tensor) -> bool:
    if FORCE_TORCH or not native.available():
        return False
    return all(t.is_contiguous() for t in ts)


def _f32(*ts: Tensor) -> bool:
    return all(t.dtype == torch.float32 for t in ts)


def _check_index(idx: Tensor, n: int, what: str) -> None:
    """Refuse indices the C kernels would read out of bounds with (one pass in C; aminmax only for the message)."""
    if idx.dtype != torch.int64:
        raise ValueError(f"{what} must be int64, got {idx.dtype}")
    if idx.numel() and native.count_out_of_range(idx, n):
        lo, hi = torch.aminmax(idx)
        raise IndexError(f"{what} holds {int(lo)}..{int(hi)}, outside [0, {n})")


def _rows_per_chunk(k: int, d: int) -> int:
    return max(1, _CHUNK_ELEMS // max(1, k * d))


# ----------------------------------------------------------------------------------------------- torch versions


def _topk_rows_torch(pre: Tensor, k: int, bias: Tensor | None) -> tuple[Tensor, Tensor]:
    full = pre if bias is None else pre + bias
    if full.dtype == torch.bfloat16:
        full = full.float()
    return full.topk(k, dim=1, sorted=False)


def _gather_dot_torch(idx: Tensor, W: Tensor, G: Tensor) -> Tensor:
    B, k = idx.shape
    step = _rows_per_chunk(k, W.shape[1])
    parts = [torch.bmm(W[idx[i : i + step]], G[i : i + step, :, None]).squeeze(2) for i in range(0, B, step)]
    return torch.cat(parts) if parts else G.new_zeros(0, k)


def _gather_sum_torch(idx: Tensor, vals: Tensor, W: Tensor) -> Tensor:
    return torch.nn.functional.embedding_bag(idx, W, per_sample_weights=vals.to(W.dtype), mode="sum")


def _scatter_rows_torch(idx: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    B, k = idx.shape
    d = X.shape[1]
    out = torch.zeros(n_rows, d, dtype=X.dtype, device=X.device)
    step = _rows_per_chunk(k, d)
    for i in range(0, B, step):
        ii, ww, xx = idx[i : i + step], w[i : i + step], X[i : i + step]
        out.index_add_(0, ii.reshape(-1), (ww[..., None].to(X.dtype) * xx[:, None, :]).reshape(-1, d))
    return out


def _tri_gather_sum_torch(orow: Tensor, col: Tensor, val: Tensor, W: Tensor, n_out: int) -> Tensor:
    out = torch.zeros(n_out, W.shape[1], dtype=W.dtype, device=W.device)
    step = _rows_per_chunk(1, W.shape[1])
    for i in range(0, orow.numel(), step):
        sl = slice(i, i + step)
        out.index_add_(0, orow[sl], val[sl, None].to(W.dtype) * W[col[sl]])
    return out


def _tri_gather_dot_torch(orow: Tensor, col: Tensor, W: Tensor, X: Tensor) -> Tensor:
    step = _rows_per_chunk(1, W.shape[1])
    parts = [(X[orow[i : i + step]] * W[col[i : i + step]]).sum(1) for i in range(0, orow.numel(), step)]
    return torch.cat(parts) if parts else X.new_zeros(0)


def _tri_scatter_rows_torch(orow: Tensor, col: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    out = torch.zeros(n_rows, X.shape[1], dtype=X.dtype, device=X.device)
    step = _rows_per_chunk(1, X.shape[1])
    for i in range(0, orow.numel(), step):
        sl = slice(i, i + step)
        out.index_add_(0, col[sl], w[sl, None].to(X.dtype) * X[orow[sl]])
    return out


# ----------------------------------------------------------------------------------------------- operators


@torch.library.custom_op("monosemantic::topk_rows", mutates_args=())
def topk_rows(pre: Tensor, k: int, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top-k of ``pre + bias`` per row of [B, F] (unsorted): values (float32 for bf16 input) and int64 indices."""
    return _topk_rows_torch(pre, k, bias)


@topk_rows.register_kernel("cpu")
def _(pre: Tensor, k: int, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
    if not 0 < k <= pre.shape[1]:
        raise ValueError(f"topk_rows: k={k} must lie in [1, {pre.shape[1]}]")
    ok = _native(pre) and pre.dtype in (torch.float32, torch.bfloat16)
    if bias is not None:
        ok = ok and _f32(bias) and bias.is_contiguous() and bias.shape == (pre.shape[1],)
    return native.topk_rows(pre, k, bias) if ok else _topk_rows_torch(pre, k, bias)


@topk_rows.register_fake
def _(pre: Tensor, k: int, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
    del bias  # a fake gives only the shape and dtype of the result
    dtype = torch.float32 if pre.dtype == torch.bfloat16 else pre.dtype
    return pre.new_empty(pre.shape[0], k, dtype=dtype), pre.new_empty(pre.shape[0], k, dtype=torch.int64)


@torch.library.custom_op("monosemantic::gather_dot", mutates_args=())
def gather_dot(idx: Tensor, W: Tensor, G: Tensor) -> Tensor:
    """``out[b, s] = <G[b], W[idx[b, s]]>``: [B, k]."""
    return _gather_dot_torch(idx, W, G)


@gather_dot.register_kernel("cpu")
def _(idx: Tensor, W: Tensor, G: Tensor) -> Tensor:
    if _native(idx, W, G) and _f32(W, G):
        _check_index(idx, W.shape[0], "gather_dot indices")
        return native.gather_dot(idx, W, G)
    return _gather_dot_torch(idx, W, G)


@gather_dot.register_fake
def _(idx: Tensor, W: Tensor, G: Tensor) -> Tensor:
    return G.new_empty(idx.shape, dtype=torch.promote_types(W.dtype, G.dtype))


@torch.library.custom_op("monosemantic::gather_sum", mutates_args=())
def gather_sum(idx: Tensor, vals: Tensor, W: Tensor) -> Tensor:
    """``out[b] = Σ_s vals[b, s] · W[idx[b, s]]``: [B, d] (an embedding bag; the sparse decode)."""
    if W.device.type == "cuda" and not FORCE_TORCH:
        from monosemantic.sae import triton_decode

        if triton_decode.enabled():
            return triton_decode.gather_sum(idx, vals, W)
    return _gather_sum_torch(idx, vals, W)


@gather_sum.register_kernel("cpu")
def _(idx: Tensor, vals: Tensor, W: Tensor) -> Tensor:
    if _native(idx, vals, W) and _f32(vals, W):
        _check_index(idx, W.shape[0], "gather_sum indices")
        return native.gather_sum(idx, vals, W)
    return _gather_sum_torch(idx, vals, W)


@gather_sum.register_fake
def _(idx: Tensor, vals: Tensor, W: Tensor) -> Tensor:
    del vals  # a fake gives only the shape and dtype of the result
    return W.new_empty(idx.shape[0], W.shape[1])


@torch.library.custom_op("monosemantic::scatter_rows", mutates_args=())
def scatter_rows(idx: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    """``out[j] = Σ_{(b,s): idx[b,s]=j} w[b, s] · X[b]``: [n_rows, d] (the transpose of gather_sum)."""
    return _scatter_rows_torch(idx, w, X, n_rows)


@scatter_rows.register_kernel("cpu")
def _(idx: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    if _native(idx, w, X) and _f32(w, X):
        _check_index(idx, n_rows, "scatter_rows indices")
        return native.scatter_rows(idx, w, X, n_rows)
    return _scatter_rows_torch(idx, w, X, n_rows)


@scatter_rows.register_fake
def _(idx: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    del idx, w  # a fake gives only the shape and dtype of the result
    return X.new_empty(n_rows, X.shape[1])


@torch.library.custom_op("monosemantic::project_rows_", mutates_args=("G",))
def project_rows_(W: Tensor, G: Tensor) -> None:
    """In place: ``G[j] -= (G[j]·d_j) d_j`` with ``d_j = W[j] / (|W[j]| + 1e-6)`` (unit-norm decoder gradients)."""
    d = W / (W.norm(dim=1, keepdim=True) + 1e-6)
    G.sub_((G * d).sum(1, keepdim=True) * d)


@project_rows_.register_kernel("cpu")
def _(W: Tensor, G: Tensor) -> None:
    if _native(W, G) and _f32(W, G) and W.shape == G.shape:
        native.project_rows_(W, G)
        return
    d = W / (W.norm(dim=1, keepdim=True) + 1e-6)
    G.sub_((G * d).sum(1, keepdim=True) * d)


@project_rows_.register_fake
def _(W: Tensor, G: Tensor) -> None:
    del W, G  # an in-place operator's fake has no result to describe
    return None


@torch.library.custom_op("monosemantic::renorm_rows_", mutates_args=("W",))
def renorm_rows_(W: Tensor, eps: float = 1e-12) -> None:
    """In place: every row of W to unit norm."""
    W.div_(W.norm(dim=1, keepdim=True) + eps)


@renorm_rows_.register_kernel("cpu")
def _(W: Tensor, eps: float = 1e-12) -> None:
    if _native(W) and _f32(W):
        native.renorm_rows_(W, eps)
        return
    W.div_(W.norm(dim=1, keepdim=True) + eps)


@renorm_rows_.register_fake
def _(W: Tensor, eps: float = 1e-12) -> None:
    del W, eps  # an in-place operator's fake has no result to describe
    return None


@torch.library.custom_op("monosemantic::tri_gather_sum", mutates_args=())
def tri_gather_sum(orow: Tensor, col: Tensor, val: Tensor, W: Tensor, n_out: int) -> Tensor:
    """``out[r] = Σ_{s: orow[s]=r} val[s] · W[col[s]]``: [n_out, d] (kept entries as triplets)."""
    return _tri_gather_sum_torch(orow, col, val, W, n_out)


@tri_gather_sum.register_kernel("cpu")
def _(orow: Tensor, col: Tensor, val: Tensor, W: Tensor, n_out: int) -> Tensor:
    if _native(orow, col, val, W) and _f32(val, W):
        _check_index(orow, n_out, "tri_gather_sum rows")
        _check_index(col, W.shape[0], "tri_gather_sum cols")
        return native.tri_gather_sum(orow, col, val, W, n_out)
    return _tri_gather_sum_torch(orow, col, val, W, n_out)


@tri_gather_sum.register_fake
def _(orow: Tensor, col: Tensor, val: Tensor, W: Tensor, n_out: int) -> Tensor:
    del orow, col, val  # a fake gives only the shape and dtype of the result
    return W.new_empty(n_out, W.shape[1])


@torch.library.custom_op("monosemantic::tri_gather_dot", mutates_args=())
def tri_gather_dot(orow: Tensor, col: Tensor, W: Tensor, X: Tensor) -> Tensor:
    """``out[s] = <X[orow[s]], W[col[s]]>``: [n]."""
    return _tri_gather_dot_torch(orow, col, W, X)


@tri_gather_dot.register_kernel("cpu")
def _(orow: Tensor, col: Tensor, W: Tensor, X: Tensor) -> Tensor:
    if _native(orow, col, W, X) and _f32(W, X):
        _check_index(orow, X.shape[0], "tri_gather_dot rows")
        _check_index(col, W.shape[0], "tri_gather_dot cols")
        return native.tri_gather_dot(orow, col, W, X)
    return _tri_gather_dot_torch(orow, col, W, X)


@tri_gather_dot.register_fake
def _(orow: Tensor, col: Tensor, W: Tensor, X: Tensor) -> Tensor:
    del col  # a fake gives only the shape and dtype of the result
    return X.new_empty(orow.shape[0], dtype=torch.promote_types(W.dtype, X.dtype))


@torch.library.custom_op("monosemantic::tri_scatter_rows", mutates_args=())
def tri_scatter_rows(orow: Tensor, col: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    """``out[j] = Σ_{s: col[s]=j} w[s] · X[orow[s]]``: [n_rows, d] (the transpose of tri_gather_sum)."""
    return _tri_scatter_rows_torch(orow, col, w, X, n_rows)


@tri_scatter_rows.register_kernel("cpu")
def _(orow: Tensor, col: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    if _native(orow, col, w, X) and _f32(w, X):
        _check_index(orow, X.shape[0], "tri_scatter_rows rows")
        _check_index(col, n_rows, "tri_scatter_rows cols")
        return native.tri_scatter_rows(orow, col, w, X, n_rows)
    return _tri_scatter_rows_torch(orow, col, w, X, n_rows)


@tri_scatter_rows.register_fake
def _(orow: Tensor, col: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    del orow, col, w  # a fake gives only the shape and dtype of the result
    return X.new_empty(n_rows, X.shape[1])


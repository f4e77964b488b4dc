"""Sparse CPU primitives: a small C library compiled with the system compiler on first use, or plain torch.

PyTorch's CPU sparse primitives (``index_add_``, ``argsort``, CSR ``mm``, ``topk``) cost 30-300 ms on a
4096 x 6144 TopK batch, more than the dense bf16 encoder matmul itself; these loops cost a few ms. The library is
cached under ``$MONOSEMANTIC_CACHE`` (default ``~/.cache/monosemantic``) by a hash of the source and the CPU flags,
so ``-march=native`` code never runs on another CPU. Without a compiler, or with ``MONOSEMANTIC_NATIVE=0``, every
function falls back to torch with the same results (up to float rounding order).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import torch
from torch import Tensor

from monosemantic.sae._csrc import SOURCE

_LIB: ctypes.CDLL | None = None
_TRIED = False
_LOCK = threading.Lock()

_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_I = ctypes.c_int
_SIGS = {
    "topk_rows": [_P, _I, _P, _I64, _I64, _I64, _I, _P, _P, _I],
    "gather_dot": [_P, _I64, _I, _P, _P, _I64, _P, _I],
    "gather_sum": [_P, _P, _I64, _I, _P, _I64, _P, _I],
    "scatter_rows": [_P, _P, _I64, _I, _P, _I64, _I64, _P, _I],
    "project_rows": [_P, _P, _I64, _I64, _I],
    "renorm_rows": [_P, _I64, _I64, ctypes.c_float, _I],
    "tri_gather_sum": [_P, _P, _P, _I64, _P, _I64, _I64, _P, _I],
    "tri_gather_dot": [_P, _P, _I64, _P, _P, _I64, _P, _I],
    "tri_scatter_rows": [_P, _P, _P, _I64, _P, _I64, _I64, _P, _I],
}
_RESTYPES = {"project_rows": ctypes.c_double}


def _cpu_key() -> str:
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "model name")):
                flags += line
                if line.startswith("flags"):
                    break
    except OSError:
        pass
    return hashlib.sha256((SOURCE + platform.machine() + flags).encode()).hexdigest()[:16]


def _build() -> ctypes.CDLL | None:
    if os.environ.get("MONOSEMANTIC_NATIVE", "1") == "0" or platform.system() != "Linux":
        return None
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        return None
    cache = Path(os.environ.get("MONOSEMANTIC_CACHE", Path.home() / ".cache" / "monosemantic")) / "kernels"
    target = cache / f"sparse_{_cpu_key()}.so"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            src = Path(tmp) / "sparse.c"
            src.write_text(SOURCE)
            out = Path(tmp) / "sparse.so"
            cmd = [cc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", str(src), "-o", str(out), "-lm"]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                warnings.warn(f"could not compile the sparse kernels, using torch: {res.stderr[-300:]}",
                              stacklevel=3)
                return None
            os.replace(out, target)  # atomic: a concurrent build of the same hash is harmless
    lib = ctypes.CDLL(str(target))
    for name, argtypes in _SIGS.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = _RESTYPES.get(name)
    return lib


def lib() -> ctypes.CDLL | None:
    """The compiled library, or None when it is unavailable or disabled."""
    global _LIB, _TRIED
    if not _TRIED:
        with _LOCK:
            if not _TRIED:
                try:
                    _LIB = _build()
                except OSError as exc:  # unwritable cache, failed dlopen: stay correct, just slower
                    warnings.warn(f"sparse kernels unavailable ({exc}); using torch", stacklevel=2)
                    _LIB = None
                _TRIED = True
    return _LIB


def available() -> bool:
    return lib() is not None


def _usable(*ts: Tensor) -> bool:
    return lib() is not None and all(t.device.type == "cpu" and t.is_contiguous() for t in ts)


def _nt() -> int:
    return max(1, torch.get_num_threads())


def _f32(*ts: Tensor) -> bool:
    return all(t.dtype == torch.float32 for t in ts)


# ----------------------------------------------------------------------------------- primitives


def topk_rows(pre: Tensor, k: int, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top-k of ``pre + bias`` per row (unsorted): values in float32 and int64 indices."""
    B, F = pre.shape
    native = _usable(pre) and pre.dtype in (torch.float32, torch.bfloat16)
    if bias is not None:
        native = native and bias.dtype == torch.float32 and bias.is_contiguous()
    if native:
        vals = torch.empty(B, k, dtype=torch.float32)
        idx = torch.empty(B, k, dtype=torch.int64)
        lib().topk_rows(  # type: ignore[union-attr]
            pre.data_ptr(), int(pre.dtype == torch.bfloat16), bias.data_ptr() if bias is not None else None,
            B, F, F, k, vals.data_ptr(), idx.data_ptr(), _nt(),
        )
        return vals, idx
    full = pre if bias is None else pre + bias
    if full.dtype == torch.bfloat16:
        full = full.float()
    return full.topk(k, dim=1, sorted=False)


def gather_dot(idx: Tensor, W: Tensor, G: Tensor) -> Tensor:
    """``out[b, s] = <G[b], W[idx[b, s]]>``: [B, k]."""
    B, k = idx.shape
    if _usable(idx, W, G) and _f32(W, G):
        out = torch.empty(B, k, dtype=torch.float32)
        lib().gather_dot(idx.data_ptr(), B, k, W.data_ptr(), G.data_ptr(), W.shape[1], out.data_ptr(), _nt())  # type: ignore[union-attr]
        return out
    return torch.einsum("bkd,bd->bk", W[idx], G)


def gather_sum(idx: Tensor, vals: Tensor, W: Tensor) -> Tensor:
    """``out[b] = Σ_s vals[b, s] · W[idx[b, s]]``: [B, d] (an embedding bag)."""
    B, k = idx.shape
    if _usable(idx, vals, W) and _f32(vals, W):
        out = torch.empty(B, W.shape[1], dtype=torch.float32)
        lib().gather_sum(idx.data_ptr(), vals.data_ptr(), B, k, W.data_ptr(), W.shape[1], out.data_ptr(), _nt())  # type: ignore[union-attr]
        return out
    return torch.nn.functional.embedding_bag(idx, W, per_sample_weights=vals.to(W.dtype), mode="sum")


def scatter_rows(idx: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    """``out[j] = Σ_{(b,s): idx[b,s]=j} w[b, s] · X[b]``: [n_rows, d] (the transpose of gather_sum)."""
    B, k = idx.shape
    d = X.shape[1]
    if _usable(idx, w, X) and _f32(w, X):
        out = torch.empty(n_rows, d, dtype=torch.float32)
        lib().scatter_rows(idx.data_ptr(), w.data_ptr(), B, k, X.data_ptr(), d, n_rows, out.data_ptr(), _nt())  # type: ignore[union-attr]
        return out
    out = torch.zeros(n_rows, d, dtype=X.dtype)
    step = max(1, 65536 // max(k, 1))
    for i in range(0, B, step):  # chunked so the [rows, k, d] product stays small
        ii, ww, xx = idx[i : i + step], w[i : i + step], X[i : i + step]
        out.index_add_(0, ii.reshape(-1), (ww[..., None].to(X.dtype) * xx[:, None, :]).reshape(-1, d))
    return out


def project_rows_(W: Tensor, G: Tensor) -> float:
    """In place: ``G[j] -= (G[j]·d_j) d_j`` with ``d_j = W[j] / (|W[j]| + 1e-6)``; returns ``|G|²`` afterwards."""
    if _usable(W, G) and _f32(W, G):
        return float(lib().project_rows(W.data_ptr(), G.data_ptr(), W.shape[0], W.shape[1], _nt()))  # type: ignore[union-attr]
    d = W / (W.norm(dim=1, keepdim=True) + 1e-6)
    G.sub_((G * d).sum(1, keepdim=True) * d)
    return float(G.double().pow(2).sum())


def renorm_rows_(W: Tensor, eps: float = 1e-12) -> None:
    """In place: every row of W to unit norm."""
    if _usable(W) and _f32(W):
        lib().renorm_rows(W.data_ptr(), W.shape[0], W.shape[1], eps, _nt())  # type: ignore[union-attr]
        return
    W.div_(W.norm(dim=1, keepdim=True) + eps)


# ----------------------------------------------------------------------------------- triplets (variable k per row)

_CHUNK = 16384  # torch fallbacks: entries per chunk, so the [chunk, d] temporaries stay small


def tri_gather_sum(orow: Tensor, col: Tensor, val: Tensor, W: Tensor, n_out: int) -> Tensor:
    """``out[r] = Σ_{s: orow[s]=r} val[s] · W[col[s]]``: [n_out, d]."""
    d = W.shape[1]
    if _usable(orow, col, val, W) and _f32(val, W):
        out = torch.empty(n_out, d, dtype=torch.float32)
        lib().tri_gather_sum(orow.data_ptr(), col.data_ptr(), val.data_ptr(), orow.numel(), W.data_ptr(), d,  # type: ignore[union-attr]
                             n_out, out.data_ptr(), _nt())
        return out
    out = torch.zeros(n_out, d, dtype=W.dtype)
    for i in range(0, orow.numel(), _CHUNK):
        sl = slice(i, i + _CHUNK)
        out.index_add_(0, orow[sl], val[sl, None].to(W.dtype) * W[col[sl]])
    return out


def tri_gather_dot(orow: Tensor, col: Tensor, W: Tensor, X: Tensor) -> Tensor:
    """``out[s] = <X[orow[s]], W[col[s]]>``: [n]."""
    n = orow.numel()
    if _usable(orow, col, W, X) and _f32(W, X):
        out = torch.empty(n, dtype=torch.float32)
        lib().tri_gather_dot(orow.data_ptr(), col.data_ptr(), n, W.data_ptr(), X.data_ptr(), W.shape[1],  # type: ignore[union-attr]
                             out.data_ptr(), _nt())
        return out
    parts = [(X[orow[i : i + _CHUNK]] * W[col[i : i + _CHUNK]]).sum(1) for i in range(0, n, _CHUNK)]
    return torch.cat(parts) if parts else X.new_zeros(0)


def tri_scatter_rows(orow: Tensor, col: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    """``out[j] = Σ_{s: col[s]=j} w[s] · X[orow[s]]``: [n_rows, d] (the transpose of tri_gather_sum)."""
    d = X.shape[1]
    if _usable(orow, col, w, X) and _f32(w, X):
        out = torch.empty(n_rows, d, dtype=torch.float32)
        lib().tri_scatter_rows(orow.data_ptr(), col.data_ptr(), w.data_ptr(), orow.numel(), X.data_ptr(), d,  # type: ignore[union-attr]
                               n_rows, out.data_ptr(), _nt())
        return out
    out = torch.zeros(n_rows, d, dtype=X.dtype)
    for i in range(0, orow.numel(), _CHUNK):
        sl = slice(i, i + _CHUNK)
        out.index_add_(0, col[sl], w[sl, None].to(X.dtype) * X[orow[sl]])
    return out

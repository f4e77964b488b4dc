"""The compiled CPU kernels: ``csrc/sparse.c`` built with the system compiler on first use, called through ctypes.

PyTorch's CPU sparse primitives (``index_add_``, ``argsort``, CSR ``mm``, ``topk``) cost 30-300 ms on a
4096 x 6144 TopK batch, more than the dense bf16 encoder matmul itself; these loops cost a few ms. The library is
cached under ``$MONOSEMANTIC_CACHE`` (default ``~/.cache/monosemantic``) by a hash of the source, the compiler
flags and the CPU, so ``-march=native`` code never runs on another CPU. It is built with ``-Wall -Wextra``, and a
warning is shown once (the tests require none). Without a compiler, or with
``MONOSEMANTIC_NATIVE=0``, :func:`lib` is None and ``ops.py`` runs the torch versions instead.

This module only builds and calls; ``ops.py`` registers the functions as torch operators and checks their
arguments (dtypes, contiguity, index bounds) before anything here reads memory.
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
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

_FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-Wall", "-Wextra")
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
    "count_out_of_range": [_P, _I64, _I64],
}
_RESTYPES = {"project_rows": ctypes.c_double, "count_out_of_range": ctypes.c_int64}


def source() -> str:
    """The C source, shipped as package data."""
    return resources.files("monosemantic.sae").joinpath("csrc/sparse.c").read_text()


def _cpu_key(src: str) -> str:
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "model name")):
                flags += line
                if line.startswith("flags"):
                    break
    except OSError:
        pass
    return hashlib.sha256((src + " ".join(_FLAGS) + platform.machine() + flags).encode()).hexdigest()[:16]


def compile_library(src: str, out: Path, cc: str) -> str:
    """Compile ``src`` into the shared library ``out``; returns the compiler's warnings (raises on failure)."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        c_file, so_file = Path(tmp) / "sparse.c", Path(tmp) / "sparse.so"
        c_file.write_text(src)
        res = subprocess.run([cc, *_FLAGS, str(c_file), "-o", str(so_file), "-lm"], capture_output=True, text=True)
        if res.returncode != 0:
            raise OSError(f"could not compile the sparse kernels: {res.stderr[-300:]}")
        os.replace(so_file, out)  # atomic: a concurrent build of the same hash is harmless
        return res.stderr.strip()


def compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")


def _build() -> ctypes.CDLL | None:
    if os.environ.get("MONOSEMANTIC_NATIVE", "1") == "0" or platform.system() != "Linux":
        return None
    cc = compiler()
    if cc is None:
        return None
    src = source()
    cache = Path(os.environ.get("MONOSEMANTIC_CACHE", Path.home() / ".cache" / "monosemantic")) / "kernels"
    target = cache / f"sparse_{_cpu_key(src)}.so"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            printed = compile_library(src, target, cc)
        except OSError as exc:
            warnings.warn(f"{exc}; using torch", stacklevel=3)
            return None
        if printed:
            warnings.warn(f"the sparse kernels compiled with warnings: {printed[-300:]}", stacklevel=3)
    library = ctypes.CDLL(str(target))
    for name, argtypes in _SIGS.items():
        fn = getattr(library, name)
        fn.argtypes = argtypes
        fn.restype = _RESTYPES.get(name)
    return library


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


def _nt() -> int:
    return max(1, torch.get_num_threads())


def _call(name: str, *args: object) -> object:
    return getattr(lib(), name)(*args, _nt())


# Each function below assumes checked arguments: CPU, contiguous, float32 (bf16 where said), int64 indices in range.


def count_out_of_range(idx: Tensor, bound: int) -> int:
    """How many int64 entries of ``idx`` lie outside [0, bound)."""
    native = lib()
    assert native is not None, "callers check available() first"
    return int(native.count_out_of_range(idx.data_ptr(), idx.numel(), bound))


def topk_rows(pre: Tensor, k: int, bias: Tensor | None) -> tuple[Tensor, Tensor]:
    B, F = pre.shape
    vals = torch.empty(B, k, dtype=torch.float32)
    idx = torch.empty(B, k, dtype=torch.int64)
    _call("topk_rows", pre.data_ptr(), int(pre.dtype == torch.bfloat16),
          bias.data_ptr() if bias is not None else None, B, F, F, k, vals.data_ptr(), idx.data_ptr())
    return vals, idx


def gather_dot(idx: Tensor, W: Tensor, G: Tensor) -> Tensor:
    B, k = idx.shape
    out = torch.empty(B, k, dtype=torch.float32)
    _call("gather_dot", idx.data_ptr(), B, k, W.data_ptr(), G.data_ptr(), W.shape[1], out.data_ptr())
    return out


def gather_sum(idx: Tensor, vals: Tensor, W: Tensor) -> Tensor:
    B, k = idx.shape
    out = torch.empty(B, W.shape[1], dtype=torch.float32)
    _call("gather_sum", idx.data_ptr(), vals.data_ptr(), B, k, W.data_ptr(), W.shape[1], out.data_ptr())
    return out


def scatter_rows(idx: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    B, k = idx.shape
    out = torch.empty(n_rows, X.shape[1], dtype=torch.float32)
    _call("scatter_rows", idx.data_ptr(), w.data_ptr(), B, k, X.data_ptr(), X.shape[1], n_rows, out.data_ptr())
    return out


def project_rows_(W: Tensor, G: Tensor) -> None:
    _call("project_rows", W.data_ptr(), G.data_ptr(), W.shape[0], W.shape[1])


def renorm_rows_(W: Tensor, eps: float) -> None:
    _call("renorm_rows", W.data_ptr(), W.shape[0], W.shape[1], eps)


def tri_gather_sum(orow: Tensor, col: Tensor, val: Tensor, W: Tensor, n_out: int) -> Tensor:
    out = torch.empty(n_out, W.shape[1], dtype=torch.float32)
    _call("tri_gather_sum", orow.data_ptr(), col.data_ptr(), val.data_ptr(), orow.numel(), W.data_ptr(),
          W.shape[1], n_out, out.data_ptr())
    return out


def tri_gather_dot(orow: Tensor, col: Tensor, W: Tensor, X: Tensor) -> Tensor:
    out = torch.empty(orow.numel(), dtype=torch.float32)
    _call("tri_gather_dot", orow.data_ptr(), col.data_ptr(), orow.numel(), W.data_ptr(), X.data_ptr(), W.shape[1],
          out.data_ptr())
    return out


def tri_scatter_rows(orow: Tensor, col: Tensor, w: Tensor, X: Tensor, n_rows: int) -> Tensor:
    out = torch.empty(n_rows, X.shape[1], dtype=torch.float32)
    _call("tri_scatter_rows", orow.data_ptr(), col.data_ptr(), w.data_ptr(), orow.numel(), X.data_ptr(), X.shape[1],
          n_rows, out.data_ptr())
    return out

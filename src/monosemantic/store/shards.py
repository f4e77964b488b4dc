"""Shard files: plain safetensors, read through numpy memory maps so nothing is loaded until it is used.

The safetensors layout is an 8-byte little-endian header length, a JSON header with each tensor's dtype, shape
and byte range, then the raw data; mapping each range with ``np.memmap`` gives random row access for free.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from monosemantic.errors import StoreError

_NUMPY = {
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "U8": np.uint8,
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def write_shard(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write atomically (temporary name, then rename) and return the file's sha256."""
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    return digest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


RESUME = "re-run the same `monosemantic extract` command; it resumes from the last intact shard"
REBUILD = "re-run the same `monosemantic extract` command with --overwrite to rebuild the store"


def open_shard(path: Path, fix: str = REBUILD) -> dict[str, np.ndarray]:
    """Map every tensor of a shard; a missing, truncated or garbled file raises a StoreError naming it and
    ending with ``fix``, which the caller picks because only it knows whether the store is finished."""
    if not path.is_file():
        raise StoreError(f"shard {path} is missing; {fix}")
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n <= 0 or 8 + n > size:
                raise ValueError("header length out of range")
            header = json.loads(fh.read(n))
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"shard {path} is corrupt ({exc}); {fix}") from None
    if not isinstance(header, dict):
        raise StoreError(f"shard {path} is corrupt (its header is not a JSON object); {fix}")
    header.pop("__metadata__", None)
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        try:
            begin, end = info["data_offsets"]
            dtype = np.dtype(_NUMPY[info["dtype"]])
            shape = tuple(info["shape"])
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"shard {path} has a malformed entry {name!r}; {fix}") from None
        if 8 + n + end > size or end - begin != int(np.prod(shape)) * dtype.itemsize:
            raise StoreError(f"shard {path} is truncated ({size} bytes, tensor {name!r} needs {8 + n + end}); {fix}")
        out[name] = np.memmap(path, dtype=dtype, mode="r", offset=8 + n + begin, shape=shape)
    return out


def to_float32(array: np.ndarray, dtype: str) -> torch.Tensor:
    """Rows from a mapped shard as float32 (bfloat16 is stored as raw uint16 bits)."""
    t = torch.from_numpy(np.array(array))  # a copy: mapped pages are read-only
    if dtype == "bfloat16":
        t = t.view(torch.bfloat16)
    return t.float()

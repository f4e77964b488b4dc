"""Synthetic superposition as an activation store, so `monosemantic train` and `score` run on it as on a model's
activations; the ground truth (W_p and the codes) travels beside the shards in ``ground_truth.npz``.

For the MonoSemanticity score the codes themselves are the natural external embedding: save
``load_ground_truth(store).codes`` as ``{"embeddings": codes}`` in a .safetensors file and pass it to
``monosemantic score --embeddings``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monosemantic.errors import StoreError, UserError, unknown_choice
from monosemantic.store import ActivationStore, write_store
from monosemantic.synthetic.generator import make_superposition

GROUND_TRUTH = "ground_truth.npz"
HOOK = "x_p"
LABEL_MODES = ("active", "argmax", "none")


def _labels(codes: np.ndarray, mode: str) -> tuple[np.ndarray | None, list[str] | None]:
    n = codes.shape[1]
    names = [f"gt{i}" for i in range(n)]
    if mode == "active":
        return (codes != 0).astype(np.int64), names
    if mode == "argmax":
        # a sample with no active feature has no strongest one: class n, "none"
        ids = np.where((codes != 0).any(1), codes.argmax(1), n)
        return ids.astype(np.int64), [*names, "none"]
    return None, None


def write_superposition(
    path: str | Path,
    x: Any,
    codes: Any,
    w_p: Any,
    *,
    labels: str = "active",
    params: dict[str, Any] | None = None,
    overwrite: bool = False,
    shard_rows: int = 1 << 16,
) -> ActivationStore:
    """Write X [N, n_dims] as a one-hook store (hook ``x_p``, one item per sample) and the ground truth beside it.

    labels: ``active`` (default) gives every item the binary [n_features] column set of its active features, one
    concept per ground-truth feature (the store's [N, C] label model); ``argmax`` gives the strongest active
    feature as a class id, with class n_features ("none") for a sample without any; ``none`` writes no labels.
    params: the generator settings, recorded in ``ground_truth.npz`` and named in the store's dataset name.
    """
    xt = torch.as_tensor(x)
    ct = torch.as_tensor(codes)
    wt = torch.as_tensor(w_p)
    if xt.ndim != 2 or ct.ndim != 2 or wt.ndim != 2:
        raise UserError("x, codes and W_p must be 2-D: [N, n_dims], [N, n_features], [n_dims, n_features]")
    if xt.shape[0] != ct.shape[0] or wt.shape != (xt.shape[1], ct.shape[1]):
        raise UserError(
            f"shapes do not fit: x {tuple(xt.shape)}, codes {tuple(ct.shape)}, W_p {tuple(wt.shape)}; "
            "expected [N, n_dims], [N, n_features], [n_dims, n_features]"
        )
    if labels not in LABEL_MODES:
        raise unknown_choice("labels mode", labels, LABEL_MODES)
    c = ct.detach().cpu().numpy()
    lab, names = _labels(c, labels)
    params = dict(params or {})
    tag = ", ".join(f"{k}={v}" for k, v in params.items())
    store = write_store(
        path,
        {HOOK: xt.detach().cpu().float()},
        labels=lab,
        label_names=names,
        model="superposition",
        dataset=f"superposition({tag})" if tag else "superposition",
        shard_rows=shard_rows,
        overwrite=overwrite,
    )
    rows, cols = np.nonzero(c)
    tmp = store.root / f".{GROUND_TRUTH}.tmp"
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            w_p=wt.detach().cpu().float().numpy(),
            # codes as CSR: N x n_features dense would dwarf the activations at high sparsity
            indptr=np.r_[0, np.cumsum(np.bincount(rows, minlength=c.shape[0]))].astype(np.int64),
            indices=cols.astype(np.int32),
            values=c[rows, cols].astype(np.float32),
            shape=np.array(c.shape, dtype=np.int64),
            params=np.array(json.dumps(params)),
        )
    os.replace(tmp, store.root / GROUND_TRUTH)
    return store


def superposition_store(
    path: str | Path,
    n_features: int,
    n_dims: int,
    sparsity: float,
    n_samples: int,
    geometry: str = "random",
    magnitude: str = "uniform",
    seed: int = 0,
    *,
    labels: str = "active",
    overwrite: bool = False,
    **generator_options: Any,
) -> ActivationStore:
    """`make_superposition` with these arguments, written by `write_superposition`."""
    x, codes, w_p = make_superposition(n_features, n_dims, sparsity, n_samples, geometry, magnitude, seed,
                                       **generator_options)
    params = {"n_features": n_features, "n_dims": n_dims, "sparsity": sparsity, "n_samples": n_samples,
              "geometry": geometry, "magnitude": magnitude, "seed": seed, **generator_options}
    return write_superposition(path, x, codes, w_p, labels=labels, params=params, overwrite=overwrite)


@dataclass(frozen=True)
class GroundTruth:
    """The ground truth beside a synthetic store."""

    w_p: torch.Tensor
    """float32 [n_dims, n_features]: the feature directions (columns)."""
    codes: torch.Tensor
    """float32 [N, n_features]: each sample's feature values, rows in store order."""
    params: dict[str, Any]
    """The generator settings the store was written with."""


def load_ground_truth(store: str | Path | ActivationStore) -> GroundTruth:
    """The ground truth beside a synthetic store (``ground_truth.npz``)."""
    root = store.root if isinstance(store, ActivationStore) else Path(store)
    path = root / GROUND_TRUTH
    if not path.is_file():
        raise StoreError(f"{root} has no {GROUND_TRUTH}; it was not written by monosemantic.synthetic")
    try:
        with np.load(path, allow_pickle=False) as z:
            n, f = (int(v) for v in z["shape"])
            indptr, indices, values = z["indptr"], z["indices"], z["values"]
            codes = torch.zeros(n, f)
            rows = np.repeat(np.arange(n), np.diff(indptr))
            codes[torch.from_numpy(rows), torch.from_numpy(indices.astype(np.int64))] = torch.from_numpy(values)
            return GroundTruth(w_p=torch.from_numpy(z["w_p"]), codes=codes, params=json.loads(str(z["params"])))
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"{path} is damaged ({exc}); write the synthetic store again") from None

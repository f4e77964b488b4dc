"""The largest |inner product| among each sample's co-active unit vectors, without the dense N x N matrix.

For 10^6 samples with K = 64 active atoms each, a per-sample K x K Gram of H-dim vectors costs K²·H (4.7 MFLOP at
H = 576): several hundred seconds on two cores. Here the atoms are taken in blocks of ``block``; one block's inner
products with the atoms at or after it, a [N, block] slab (8 MB at N = 16,384), are computed once, and every
(sample, atom in the block) entry looks up its K partners there. That is K lookups per entry instead of K·H
multiply-adds; the slabs together compute each inner product once (N²·H/2 in all), and only one exists at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from monosemantic.errors import UserError

MAX_PARTS = 4
"""Rows of K > 8 atoms are split into up to this many position ranges, each reading only its rows' tails."""


def support_csr(codes: Any, n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr [Ns + 1] int64, indices int64, sorted and unique within each row) of the non-zero entries.

    codes: a dense [Ns, N] tensor or array, a torch sparse (COO / CSR) tensor, a scipy sparse matrix, or a pair
    (indices [Ns, K], values [Ns, K]) as a TopK encoder returns them, where a zero value or a negative index marks
    an unused slot.
    """
    if isinstance(codes, tuple | list) and len(codes) == 2:
        return _topk_csr(codes[0], codes[1], n_atoms)
    if sp.issparse(codes):
        mat = sp.csr_matrix(codes)
    elif isinstance(codes, torch.Tensor) and codes.layout != torch.strided:
        coo = codes.to_sparse_coo().coalesce()
        if coo.ndim != 2:
            raise UserError(f"codes must be [samples, atoms]; got shape {tuple(coo.shape)}")
        ij = coo.indices().numpy()
        v = coo.values().to(torch.float64).numpy()
        mat = sp.csr_matrix((v, (ij[0], ij[1])), shape=tuple(coo.shape))
    else:
        t = torch.as_tensor(codes)
        if t.ndim != 2:
            raise UserError(f"codes must be [samples, atoms]; got shape {tuple(t.shape)}")
        rows, cols = (a.numpy() for a in torch.nonzero(t, as_tuple=True))
        mat = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=tuple(t.shape))
    n_samples, n_cols = mat.get_shape()
    if mat.ndim != 2 or n_cols != n_atoms:
        raise UserError(f"codes have {n_cols} atom columns but the dictionary has {n_atoms} atoms")
    if n_samples == 0:
        raise UserError("codes hold no sample; give at least one")
    mat.sum_duplicates()
    mat.eliminate_zeros()
    mat.sort_indices()
    return mat.indptr.astype(np.int64), mat.indices.astype(np.int64)


def _topk_csr(indices: Any, values: Any, n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR support of TopK-style (indices [Ns, K], values [Ns, K]) by sorting each row, without a COO detour: an
    atom listed twice in a row is active once."""
    idx = torch.as_tensor(indices)
    val = torch.as_tensor(values)
    if idx.ndim != 2 or idx.shape != val.shape or idx.dtype.is_floating_point:
        raise UserError("codes as (indices, values) must be two [Ns, K] arrays, the indices integer")
    if idx.shape[0] == 0:
        raise UserError("codes hold no sample; give at least one")
    if idx.numel() and int(idx.max()) >= n_atoms:
        raise UserError(f"codes index atom {int(idx.max())} but the dictionary has {n_atoms} atoms")
    # unused slots sort to the end of their row as the sentinel n_atoms
    kind = torch.int32 if n_atoms < (1 << 31) - 1 else torch.int64
    srt = torch.where((val != 0) & (idx >= 0), idx.to(kind), n_atoms).sort(dim=1).values
    if srt.shape[1] > 1:
        dup = srt[:, 1:] == srt[:, :-1]
        if bool(dup.any()):
            srt[:, 1:][dup] = n_atoms
            srt = srt.sort(dim=1).values
    valid = srt < n_atoms
    indptr = np.zeros(idx.shape[0] + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(valid.sum(1).numpy())
    flat = srt.reshape(-1) if bool(valid.all()) else srt[valid]
    return indptr, flat.numpy().astype(np.int64)


def _padded(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, width: int, pad: int) -> torch.Tensor:
    """[len(rows), width] int32 atom ids of the given CSR rows, left-aligned, filled with `pad`."""
    k = indptr[rows + 1] - indptr[rows]
    if len(rows) and (k == width).all() and rows[-1] - rows[0] == len(rows) - 1:
        # consecutive full rows (TopK codes): the CSR indices already are the matrix
        flat = indices[indptr[rows[0]] : indptr[rows[-1] + 1]]
        return torch.from_numpy(flat.astype(np.int32).reshape(len(rows), width))
    out = np.full((len(rows), width), pad, dtype=np.int32)
    local = np.repeat(np.arange(len(rows)), k)
    start = np.repeat(indptr[rows], k)
    pos = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
    out[local, pos] = indices[start + pos]
    return torch.from_numpy(out)


def coactive_max(
    atoms: torch.Tensor, indptr: np.ndarray, indices: np.ndarray, *, block: int = 128, chunk: int = 1 << 17
) -> torch.Tensor:
    """μ_i = max_{a ≠ b ∈ T_i} |u_a · u_b| for every sample i (0 when fewer than two atoms are active).

    atoms: [N, H] float32 rows (unit vectors, or 0 for an atom with no direction). Returns float32 [Ns]; the caller
    refines values near a decision threshold in float64 (`exact_max`).
    """
    n, h = atoms.shape
    n_samples = len(indptr) - 1
    k = np.diff(indptr)
    mu = torch.zeros(n_samples, dtype=torch.float32)
    groups = []
    width = 2
    # samples are grouped by K (widths 2, 4, 8, ...) so a few dense samples do not pad every row to their K
    while width // 2 < int(k.max(initial=0)):
        rows = np.flatnonzero((k > width // 2) & (k <= width))
        if len(rows):
            idx = _padded(indptr, indices, rows, width, n)
            if block * (n + 2) >= 1 << 31:  # slab offsets past int32
                idx = idx.to(torch.int64)
            flat = idx.reshape(-1).numpy()
            key = flat.astype(np.int16) if n < (1 << 15) else flat  # numpy radix-sorts 16-bit keys
            order = np.argsort(key, kind="stable")
            del key
            order = order[: int(k[rows].sum())]  # the pads (id n) sort last
            # an entry's partners are the atoms after it in its (sorted) row, so an entry in the last quarter of
            # the row reads only that quarter: ~5/8 of the full-width work, on tables of the rows' tails
            parts = max(1, min(MAX_PARTS, width // 8))
            pos = order % width
            for p in range(parts):
                start, stop = p * width // parts, (p + 1) * width // parts
                sel = order[(pos >= start) & (pos < stop)]  # still sorted by atom
                atom_sorted = flat[sel].astype(np.int32)
                bounds = np.searchsorted(atom_sorted, np.arange(0, n + block, block, dtype=np.int32))
                table = idx[:, start:].contiguous() if start else idx
                groups.append((torch.from_numpy(rows), table, torch.from_numpy((sel // width).astype(np.int32)),
                               torch.from_numpy(atom_sorted), bounds, width - start))
            del order, pos
        width *= 2
    if not groups:
        return mu
    # rows [0, atoms, 0]: for the block at s, row s (atom s - 1) is zeroed in place, so padded[s:] is [0, atoms s.., 0]
    padded = torch.cat([atoms.new_zeros(1, h), atoms, atoms.new_zeros(1, h)])
    for b, s in enumerate(range(0, n, block)):
        # each pair is read from its smaller atom, so only partners >= s are needed: slab row 0 is a zero pad
        # that every partner below s is clamped onto, row 1 + (c - s) is partner c, the last row the pad id n.
        # Partners x block atoms (not the transpose) is the faster GEMM shape for MKL here.
        nb = min(block, n - s)
        kept = padded[s].clone()
        padded[s] = 0.0
        slab = (padded[s:] @ atoms[s : s + nb].T).abs_()
        padded[s] = kept
        slab[torch.arange(1, nb + 1), torch.arange(nb)] = 0.0  # an atom's product with itself is not a pair
        flat_slab = slab.reshape(-1)
        for rows, idx, entry_row, atom_sorted, bounds, width in groups:
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            step = max(1, chunk // width)
            for c in range(lo, hi, step):
                er = entry_row[c : min(hi, c + step)]
                lin = idx.index_select(0, er).add_(1 - s).clamp_min_(0).mul_(nb)
                lin.add_((atom_sorted[c : min(hi, c + step)] - s).to(idx.dtype)[:, None])
                best = flat_slab.index_select(0, lin.reshape(-1)).reshape(len(er), width).amax(1)
                mu.scatter_reduce_(0, rows.index_select(0, er), best, "amax")
    return mu


def exact_max(atoms64: torch.Tensor, indptr: np.ndarray, indices: np.ndarray, samples: np.ndarray) -> torch.Tensor:
    """μ_i in float64 for the listed samples, from their own K x K Gram (for the few near a threshold)."""
    out = torch.zeros(len(samples), dtype=torch.float64)
    for j, i in enumerate(samples.tolist()):
        t = torch.from_numpy(indices[indptr[i] : indptr[i + 1]])
        if len(t) < 2:
            continue
        u = atoms64.index_select(0, t)
        g = (u @ u.T).abs_()
        g.fill_diagonal_(0.0)
        out[j] = g.max()
    return out

"""Pair the features of two SAEs by the Pearson correlation of their activations on the same tokens.

Lan et al., "Sparse Autoencoders Reveal Universal Feature Spaces Across LLMs" (arXiv 2410.06981, §3): for each
feature of model B, its partner in model A is the A feature whose activations correlate best with it over a shared
set of tokens. The correlation matrix is ``C = Z_Aᵀ Z_B / T`` with column z-scores (epsilon 1e-8 in the std).

``CrossMoments`` streams over tokens and keeps only first and second moments: the sums per feature and the cross
moment ``S = Σ_t a_t b_tᵀ`` ``[F_A, F_B]``. For TopK-style activations the cross moment is accumulated from the
nonzero entries of each chunk (every pair of features active on the same token), so a dense ``[T, F]`` matrix is
never formed; C itself is produced in row blocks when pairs are chosen.
"""

from __future__ import annotations

import itertools
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from monosemantic.compare.matching import assign
from monosemantic.errors import UserError, unknown_choice

PairingMode = Literal["many_to_one", "one_to_one_first", "one_to_one_best", "hungarian"]
PAIRINGS: tuple[str, ...] = ("many_to_one", "one_to_one_first", "one_to_one_best", "hungarian")
"""The pairing modes of ``pair_features``."""
EPS = 1e-8
# a chunk whose share of nonzero entries is below this is accumulated from its nonzeros
SPARSE_DENSITY = 0.05
# the dense Hungarian matching is used up to this many correlation entries, a sparse candidate graph above it
DENSE_HUNGARIAN_MAX = 1 << 24
FLOAT64_MAX_ENTRIES = 1 << 24


@dataclass(frozen=True)
class TopKActs:
    """Sparse activations as ``indices [T, k]`` and ``values [T, k]`` over ``width`` features (zeros allowed)."""

    indices: torch.Tensor
    values: torch.Tensor
    width: int

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def slice(self, a: int, b: int) -> TopKActs:
        """Rows ``a:b`` (tokens) of these activations."""
        return TopKActs(self.indices[a:b], self.values[a:b], self.width)

    @staticmethod
    def from_dense(x: torch.Tensor, k: int) -> TopKActs:
        """The ``k`` largest entries of each row of a dense chunk (exact for TopK outputs with at most k nonzeros)."""
        vals, idx = torch.topk(x, min(k, x.shape[1]), dim=1)
        return TopKActs(idx, vals, int(x.shape[1]))


@dataclass
class Pairing:
    """Per B feature j: ``a_index[j]`` (its paired A feature, -1 when dropped) and ``corr[j]`` (their Pearson
    correlation over the tokens; NaN when dropped)."""

    a_index: np.ndarray
    corr: np.ndarray
    mode: str
    n_tokens: int

    @property
    def kept(self) -> np.ndarray:
        return self.a_index >= 0

    @property
    def n_pairs(self) -> int:
        return int(self.kept.sum())

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(A indices, B indices) of the kept pairs, in B order."""
        b = np.flatnonzero(self.kept)
        return self.a_index[b], b

    def mean_corr(self) -> float | None:
        """Mean correlation of the kept pairs (None when none is kept)."""
        c = self.corr[self.kept]
        return float(c.mean()) if len(c) else None

    def keep(self, mask: np.ndarray, mode: str | None = None) -> Pairing:
        """A copy with only the pairs where ``mask`` is true still kept."""
        mask = np.asarray(mask, dtype=bool) & self.kept
        a = np.where(mask, self.a_index, -1)
        c = np.where(mask, self.corr, np.nan)
        return Pairing(a, c, mode or self.mode, self.n_tokens)


class CrossMoments:
    """Streamed moments of two activation sets on the same tokens; ``add`` chunks, then ``correlation``."""

    def __init__(self, width_a: int, width_b: int, *, dtype: torch.dtype | None = None) -> None:
        self.fa, self.fb = int(width_a), int(width_b)
        self.n = 0
        self.sum_a = torch.zeros(self.fa, dtype=torch.float64)
        self.sum_b = torch.zeros(self.fb, dtype=torch.float64)
        self.sq_a = torch.zeros(self.fa, dtype=torch.float64)
        self.sq_b = torch.zeros(self.fb, dtype=torch.float64)
        if dtype is None:
            # float64 while small; wide SAEs accumulate in float32, which halves the memory and the scatter time
            # (each entry sums at most a few thousand co-activations, far from float32's precision limit)
            dtype = torch.float64 if self.fa * self.fb <= FLOAT64_MAX_ENTRIES else torch.float32
        self.cross = torch.zeros(self.fa, self.fb, dtype=dtype)
        # dense inputs are shifted by their first chunk's mean, which keeps the raw-moment formula precise for
        # neurons with large means; sparse inputs keep a zero shift so that zeros stay zeros
        self.shift_a: torch.Tensor | None = None
        self.shift_b: torch.Tensor | None = None

    def add(self, a: torch.Tensor | np.ndarray | TopKActs, b: torch.Tensor | np.ndarray | TopKActs) -> None:
        """Add a chunk of the same tokens from both sides: dense ``[c, F]`` arrays or ``TopKActs``."""
        a, b = _as_input(a), _as_input(b)
        rows_a, rows_b = len(a), len(b)
        if rows_a != rows_b:
            raise UserError(f"the two activation chunks cover {rows_a} and {rows_b} tokens; pair the same tokens")
        for x, width, side in ((a, self.fa, "A"), (b, self.fb, "B")):
            w = x.width if isinstance(x, TopKActs) else int(x.shape[1])
            if w != width:
                raise UserError(f"side {side} has {w} features in this chunk but {width} were declared")
        if rows_a == 0:
            return
        if self.shift_a is None:
            dense = not (is_sparse(a) or is_sparse(b))
            self.shift_a = _first_mean(a) if dense else torch.zeros(self.fa, dtype=torch.float64)
            self.shift_b = _first_mean(b) if dense else torch.zeros(self.fb, dtype=torch.float64)
        assert self.shift_b is not None
        shifted = bool(self.shift_a.any() or self.shift_b.any())
        if not shifted and is_sparse(a) and is_sparse(b):
            ka, kb = as_topk(a), as_topk(b)
            self._add_sparse(ka, kb)
        else:
            da = as_dense(a).double() - self.shift_a
            db = as_dense(b).double() - self.shift_b
            self.sum_a += da.sum(0)
            self.sum_b += db.sum(0)
            self.sq_a += (da * da).sum(0)
            self.sq_b += (db * db).sum(0)
            self.cross += (da.T @ db).to(self.cross.dtype)
        self.n += rows_a

    def _add_sparse(self, a: TopKActs, b: TopKActs) -> None:
        va, vb = a.values.double(), b.values.double()
        self.sum_a.index_add_(0, a.indices.reshape(-1), va.reshape(-1))
        self.sum_b.index_add_(0, b.indices.reshape(-1), vb.reshape(-1))
        self.sq_a.index_add_(0, a.indices.reshape(-1), (va * va).reshape(-1))
        self.sq_b.index_add_(0, b.indices.reshape(-1), (vb * vb).reshape(-1))
        # drop explicit zeros first: every nonzero of A meets every nonzero of B on its token
        fa = a.indices.reshape(-1)
        tok = torch.arange(len(a)).repeat_interleave(a.indices.shape[1])
        val = a.values.reshape(-1)
        nz = val != 0
        fa, tok, val = fa[nz], tok[nz], val[nz]
        # sorted by A feature, the scatter writes one row of the cross moment at a time (cache-friendly), and
        # threads given disjoint row ranges never write the same entry
        order = torch.argsort(fa)
        fa, tok, val = fa[order], tok[order], val[order]
        n_threads = max(1, min(torch.get_num_threads(), 8, len(fa) // 65536))
        cuts = [0, *(int(torch.searchsorted(fa, self.fa * q // n_threads)) for q in range(1, n_threads)), len(fa)]
        flat_cross = self.cross.view(-1)

        def scatter(lo: int, hi: int) -> None:
            t = tok[lo:hi]
            flat = (fa[lo:hi, None] * self.fb + b.indices[t]).reshape(-1)
            prod = (val[lo:hi, None].to(self.cross.dtype) * b.values[t].to(self.cross.dtype)).reshape(-1)
            flat_cross.scatter_add_(0, flat, prod)

        if n_threads == 1:
            scatter(0, len(fa))
            return
        with ThreadPoolExecutor(n_threads) as pool:  # torch releases the GIL inside each scatter
            list(pool.map(lambda r: scatter(*r), itertools.pairwise(cuts)))

    # ------------------------------------------------------------------ results
    def stats(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean_a, std_a, mean_b, std_b) of the shifted activations (population std)."""
        if self.n == 0:
            raise UserError("no tokens were added, so there is nothing to correlate")
        ma, mb = self.sum_a / self.n, self.sum_b / self.n
        sa = (self.sq_a / self.n - ma * ma).clamp_min(0).sqrt()
        sb = (self.sq_b / self.n - mb * mb).clamp_min(0).sqrt()
        return ma, sa, mb, sb

    def correlation_block(self, rows: slice | torch.Tensor | np.ndarray,
                          cols: slice | torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """Pearson correlation ``C[rows, cols]``, as z-scores with epsilon 1e-8 in the std would give."""
        ma, sa, mb, sb = self.stats()
        rows = torch.as_tensor(rows) if isinstance(rows, np.ndarray) else rows
        cols = slice(None) if cols is None else (torch.as_tensor(cols) if isinstance(cols, np.ndarray) else cols)
        # in the cross moment's dtype: float64 for small widths, float32 (ample for choosing partners) for wide ones
        dt = self.cross.dtype
        ma, sa, mb, sb = ma.to(dt), sa.to(dt), mb.to(dt), sb.to(dt)
        block = self.cross[rows][:, cols] / self.n - ma[rows, None] * mb[None, cols]
        return block / ((sa[rows, None] + EPS) * (sb[None, cols] + EPS))

    def correlation(self) -> torch.Tensor:
        """The whole ``[F_A, F_B]`` correlation matrix (small widths only)."""
        return self.correlation_block(slice(None))

    def best_a(self, block_rows: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """For every B feature its best A feature (first on ties) and that correlation, in row blocks of C."""
        best = torch.full((self.fb,), -np.inf, dtype=torch.float64)
        arg = torch.zeros(self.fb, dtype=torch.int64)
        for lo in range(0, self.fa, block_rows):
            c = self.correlation_block(slice(lo, min(lo + block_rows, self.fa)))
            v, i = c.max(0)
            better = v > best  # strict: an earlier block wins ties, like argmax over the whole column
            best = torch.where(better, v, best)
            arg = torch.where(better, i + lo, arg)
        return arg.numpy(), best.numpy()

    def top_a(self, m: int, block_rows: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` best A features of every B feature: indices and correlations ``[F_B, m]``."""
        m = min(m, self.fa)
        vals = torch.full((m, self.fb), -np.inf, dtype=torch.float64)
        idx = torch.zeros(m, self.fb, dtype=torch.int64)
        for lo in range(0, self.fa, block_rows):
            c = self.correlation_block(slice(lo, min(lo + block_rows, self.fa)))
            rows = torch.arange(lo, lo + c.shape[0])[:, None].expand_as(c)
            v, j = torch.topk(torch.cat([vals, c]), m, dim=0)
            idx = torch.gather(torch.cat([idx, rows]), 0, j)
            vals = v
        return idx.T.numpy(), vals.T.numpy()

    def pairing(self, mode: str = "many_to_one") -> Pairing:
        """Choose the pairs (see ``pair_features``)."""
        if mode not in PAIRINGS:
            raise unknown_choice("pairing", mode, PAIRINGS)
        if mode == "hungarian":
            return _hungarian(self)
        a, c = self.best_a()
        p = Pairing(a.astype(np.int64), c.astype(np.float64), "many_to_one", self.n)
        return one_to_one(p, "first" if mode == "one_to_one_first" else "best") if mode != "many_to_one" else p


def one_to_one(p: Pairing, how: Literal["first", "best"]) -> Pairing:
    """Keep each A feature in one pair only: its first kept pair in B order (the reference code's filter) or the
    pair with the highest correlation (ties: the first)."""
    a, b = p.pairs()
    keep = np.zeros(len(p.a_index), dtype=bool)
    if how == "first":
        _, first = np.unique(a, return_index=True)
        keep[b[first]] = True
    else:
        order = np.lexsort((b, -p.corr[b], a))  # by A, then highest correlation, then earliest B
        a_sorted = a[order]
        lead = np.r_[True, a_sorted[1:] != a_sorted[:-1]]
        keep[b[order[lead]]] = True
    return p.keep(keep, mode=f"one_to_one_{how}")


def _hungarian(mom: CrossMoments) -> Pairing:
    """Maximise the summed correlation over a one-to-one matching (dense, or a top-m candidate graph if large)."""
    if mom.fa * mom.fb <= DENSE_HUNGARIAN_MAX:
        a_index, corr = assign(mom.correlation().numpy())
    else:
        idx, val = mom.top_a(16)
        a_index, corr = assign(idx=idx, val=val, rows=mom.fa,
                               hint="use --pairing one_to_one_best for SAEs this wide")
    return Pairing(a_index, corr, "hungarian", mom.n)


def pair_features(
    acts_a: torch.Tensor | np.ndarray | TopKActs,
    acts_b: torch.Tensor | np.ndarray | TopKActs,
    pairing: str = "many_to_one",
    *,
    chunk_rows: int = 8192,
) -> Pairing:
    """Pair every B feature with an A feature by activation correlation over the same ``T`` tokens.

    ``acts_a [T, F_A]`` and ``acts_b [T, F_B]`` are dense arrays, torch sparse tensors or ``TopKActs``; they are
    read in chunks of ``chunk_rows`` tokens, and sparse chunks are accumulated from their nonzeros only.
    ``pairing``: ``many_to_one`` (each B feature's best A feature), ``one_to_one_first`` (an A feature keeps
    only its first pair in B order), ``one_to_one_best`` (its best pair) or ``hungarian`` (the one-to-one
    matching of largest summed correlation). Lan et al., arXiv 2410.06981 §3.
    """
    if pairing not in PAIRINGS:
        raise unknown_choice("pairing", pairing, PAIRINGS)
    a, b = _as_input(acts_a), _as_input(acts_b)
    if len(a) != len(b):
        raise UserError(f"A has activations on {len(a)} tokens and B on {len(b)}; pair activations of the same tokens")
    if len(a) < 2:
        raise UserError(f"correlations need at least 2 tokens; got {len(a)}")
    wa = a.width if isinstance(a, TopKActs) else int(a.shape[1])
    wb = b.width if isinstance(b, TopKActs) else int(b.shape[1])
    mom = CrossMoments(wa, wb)
    for lo in range(0, len(a), chunk_rows):
        mom.add(_rows(a, lo, lo + chunk_rows), _rows(b, lo, lo + chunk_rows))
    return mom.pairing(pairing)


# --------------------------------------------------------------------------------------------- inputs


def _as_input(x: torch.Tensor | np.ndarray | TopKActs) -> torch.Tensor | TopKActs:
    if isinstance(x, TopKActs):
        return x
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise UserError(f"activations must be a 2-D [tokens, features] array; got {type(x).__name__} "
                        f"of shape {list(getattr(x, 'shape', []))}")
    if x.is_sparse or x.layout == torch.sparse_csr:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return x.to_sparse_csr()
    return x


def _rows(x: torch.Tensor | TopKActs, a: int, b: int) -> torch.Tensor | TopKActs:
    if isinstance(x, TopKActs):
        return x.slice(a, b)
    if x.layout == torch.sparse_csr:
        b = min(b, x.shape[0])
        ptr = x.crow_indices()
        lo, hi = int(ptr[a]), int(ptr[b])
        with warnings.catch_warnings():  # torch calls CSR tensors beta; the slice here is valid by construction
            warnings.simplefilter("ignore")
            return torch.sparse_csr_tensor(ptr[a : b + 1] - lo, x.col_indices()[lo:hi], x.values()[lo:hi],
                                           size=(b - a, x.shape[1]))
    return x[a:b]


def is_sparse(x: torch.Tensor | TopKActs) -> bool:
    """Whether a chunk is accumulated from its nonzeros: TopK or CSR activations, or a dense chunk with under 5 %
    nonzero entries."""
    if isinstance(x, TopKActs) or x.layout == torch.sparse_csr:
        return True
    return bool((x != 0).float().mean() < SPARSE_DENSITY)


def _first_mean(x: torch.Tensor | TopKActs) -> torch.Tensor:
    return as_dense(x).double().mean(0)


def as_dense(x: torch.Tensor | TopKActs) -> torch.Tensor:
    """A chunk as a dense ``[T, F]`` tensor."""
    if isinstance(x, TopKActs):
        out = torch.zeros(len(x), x.width, dtype=x.values.dtype)
        return out.scatter_add_(1, x.indices, x.values)
    return x.to_dense() if x.layout == torch.sparse_csr else x


def as_topk(x: torch.Tensor | TopKActs) -> TopKActs:
    """A chunk's nonzero entries as ``TopKActs``, rows padded to the largest nonzero count of the chunk (padding
    has value 0 and adds nothing)."""
    if isinstance(x, TopKActs):
        return x
    if x.layout == torch.sparse_csr:
        counts = x.crow_indices().diff()
        cols, values = x.col_indices(), x.values()
    else:
        r, cols = x.nonzero(as_tuple=True)  # row-major, so each row's entries are contiguous
        counts = torch.bincount(r, minlength=len(x))
        values = x[r, cols]
    k = max(int(counts.max()) if len(counts) else 0, 1)
    rows = torch.arange(len(counts)).repeat_interleave(counts)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(rows)) - starts.repeat_interleave(counts)
    idx = torch.zeros(len(counts), k, dtype=torch.int64)
    val = torch.zeros(len(counts), k, dtype=values.dtype)
    idx[rows, slot] = cols
    val[rows, slot] = values
    return TopKActs(idx, val, int(x.shape[1]))


def compact(x: torch.Tensor | TopKActs) -> torch.Tensor | TopKActs:
    """A chunk in the form it is cheapest to accumulate in: its nonzeros as ``TopKActs`` when it is sparse (see
    ``is_sparse``), else as it is. Convert once when one chunk meets several others."""
    return as_topk(x) if is_sparse(x) else x

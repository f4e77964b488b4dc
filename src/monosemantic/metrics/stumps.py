"""Exact, vectorised search for the best single-latent Gini split: what a depth-1
``sklearn.tree.DecisionTreeClassifier(criterion="gini", random_state=seed)`` picks, without fitting one tree per
latent.

Every column is sorted once (for sparse latents only its non-zero entries, its zeros forming one block);
cumulative class counts then give the Gini proxy of every split position of every column in one pass. Zeroing
a latent (the FMS removal step) does not change any other column's best split, so removals only re-pick the
winner (`pick_root`). The arithmetic mirrors scikit-learn's splitter (checked against scikit-learn 1.9's
``_splitter.pyx`` / ``_criterion.pyx`` / ``_partitioner.pyx``) so that results match bit for bit, ties included:

- values are float32; a split position p needs ``x[p] > x[p-1] + 1e-7`` in float32 (FEATURE_THRESHOLD), and a
  column is constant when ``max <= min + 1e-7``;
- proxy = -n_R·(1 - (neg_R² + pos_R²)/n_R²) - n_L·(1 - (neg_L² + pos_L²)/n_L²) in float64;
- within a column the first position with the largest proxy wins; across columns the first column *visited*
  wins, and scikit-learn visits columns in a random order drawn from its own xorshift generator, seeded by
  ``RandomState(seed).randint(0, 2**31 - 1)``. `visit_ranks` replays that order (constant columns included,
  since they consume draws), so ties between columns break as in scikit-learn;
- threshold = x[p-1]/2 + x[p]/2 in float64; a sample goes left when ``float(x) <= threshold``; each child
  predicts its majority class, ties going to the negative class (``argmax`` over classes sorted [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

FEATURE_THRESHOLD = torch.tensor(1e-7, dtype=torch.float32)
RAND_R_MAX = 0x7FFFFFFF
_MASK32 = 0xFFFFFFFF


def sklearn_rand_state(seed: int) -> int:
    """The splitter's initial xorshift state for ``random_state=seed`` (Splitter.init draws it first)."""
    return int(np.random.RandomState(seed).randint(0, RAND_R_MAX))


def visit_ranks(constant: np.ndarray, state: int) -> np.ndarray:
    """Rank at which scikit-learn's best splitter evaluates each non-constant column at the root (-1: constant).

    Replays ``node_split_best``'s Fisher-Yates draw with max_features = n_features and no known constants.
    """
    const = np.asarray(constant, dtype=bool).tolist()
    n = len(const)
    features = list(range(n))
    ranks = np.full(n, -1, dtype=np.int64)
    f_i, n_found, n_total, rank = n, 0, 0, 0
    s = state
    while f_i > n_total:
        if s == 0:
            s = 1
        s ^= (s << 13) & _MASK32
        s ^= s >> 17
        s ^= (s << 5) & _MASK32
        f_j = (s % (RAND_R_MAX + 1)) % (f_i - n_found) + n_found
        feat = features[f_j]
        if const[feat]:
            features[f_j], features[n_total] = features[n_total], features[f_j]
            n_found += 1
            n_total += 1
            continue
        f_i -= 1
        features[f_i], features[f_j] = features[f_j], features[f_i]
        ranks[feat] = rank
        rank += 1
    return ranks


@dataclass
class ColumnSplits:
    """Best Gini split of every column on the training rows, for each concept."""

    proxy: np.ndarray
    """[C, K] float64 Gini proxy of the column's best split; -inf where the column has no valid split."""
    threshold: np.ndarray
    """[C, K] float64 split threshold (go left when x <= threshold)."""
    left_positive: np.ndarray
    """[C, K] bool: the left child predicts the concept."""
    right_positive: np.ndarray
    """[C, K] bool: the right child predicts the concept."""
    constant: np.ndarray
    """[K] bool: scikit-learn treats the column as constant on these rows."""


SPARSE_SEARCH_BELOW = 0.25
"""Search over the non-zero entries (plus one block of zeros per column) when fewer than this fraction of the
values are non-zero; sort every full column otherwise. Both give the same splits."""


def best_column_splits(x: torch.Tensor, y: torch.Tensor, *, sparse: bool | None = None) -> ColumnSplits:
    """Best split of each column of x [n, K] (float32) for each binary concept column of y [n, C] (bool)."""
    if sparse is None:
        sparse = int(torch.count_nonzero(x)) < SPARSE_SEARCH_BELOW * x.numel()
    if not sparse:
        return _dense_splits(x, y)
    # many small 1-D ops: with intra-op threads each one waits at a barrier, which on a busy machine costs
    # more than the op itself (measured 5-15x slower with 2 threads than with 1 under load)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _sparse_splits(x, y)
    finally:
        torch.set_num_threads(threads)


def _gini_proxy(n_left: torch.Tensor, pos_left: torch.Tensor, n: int, pos_total: torch.Tensor) -> torch.Tensor:
    """scikit-learn's proxy_impurity_improvement for Gini, bit for bit (float64):
    -n_R·(1 - sq_R/n_R²) - n_L·(1 - sq_L/n_L²). The class counts and their squares are exact integers, so only
    the division, subtraction, products and final difference round, and they are done one at a time here."""
    n_right = float(n) - n_left
    term_l = n_left - pos_left
    pos_right = pos_total - pos_left
    term_r = n_right - pos_right
    term_l.mul_(term_l).add_(pos_left * pos_left).div_(n_left * n_left).neg_().add_(1.0).mul_(n_left)
    term_r.mul_(term_r).add_(pos_right.mul_(pos_right)).div_(n_right * n_right).neg_().add_(1.0).mul_(-n_right)
    return term_r.sub_(term_l)


def _children(n_left: torch.Tensor, pos_left: torch.Tensor, n: int, pos_total: torch.Tensor) -> tuple[
        np.ndarray, np.ndarray]:
    """Whether the left / right child predicts the concept (majority; a tie predicts the negative class)."""
    pos_right = pos_total - pos_left
    return (pos_left > n_left - pos_left).numpy(), (pos_right > (float(n) - n_left) - pos_right).numpy()


def _empty(c: int, k: int) -> ColumnSplits:
    return ColumnSplits(np.full((c, k), -np.inf), np.zeros((c, k)), np.zeros((c, k), dtype=bool),
                        np.zeros((c, k), dtype=bool), np.zeros(k, dtype=bool))


def _dense_splits(x: torch.Tensor, y: torch.Tensor, block_elems: int = 1 << 22) -> ColumnSplits:
    n, k = x.shape
    c = y.shape[1]
    yf = y.to(torch.float64)
    pos_total = yf.sum(0)
    n_left = torch.arange(1, n, dtype=torch.float64)
    out = _empty(c, k)
    step = max(1, block_elems // max(n, 1))
    for j in range(0, k, step):
        cols = slice(j, min(k, j + step))
        block = x[:, cols].T.contiguous().numpy()
        order_np = np.argsort(block, axis=1)  # numpy's SIMD sort: several times faster than torch.sort here
        vals = torch.from_numpy(np.take_along_axis(block, order_np, axis=1))
        order = torch.from_numpy(order_np)
        out.constant[cols] = (vals[:, -1] <= vals[:, 0] + FEATURE_THRESHOLD).numpy()
        invalid = ~(vals[:, 1:] > vals[:, :-1] + FEATURE_THRESHOLD)
        for ci in range(c):
            pl = torch.cumsum(yf[:, ci][order], dim=1)[:, :-1]
            gain = _gini_proxy(n_left, pl, n, pos_total[ci]).masked_fill_(invalid, -np.inf)
            best = torch.argmax(gain, dim=1, keepdim=True)  # first position among equals, as sklearn
            out.proxy[ci, cols] = gain.gather(1, best).squeeze(1).numpy()
            lo = vals.gather(1, best).squeeze(1).to(torch.float64)
            hi = vals.gather(1, best + 1).squeeze(1).to(torch.float64)
            out.threshold[ci, cols] = (lo / 2.0 + hi / 2.0).numpy()
            nl_b = n_left[best.squeeze(1)]
            out.left_positive[ci, cols], out.right_positive[ci, cols] = _children(
                nl_b, pl.gather(1, best).squeeze(1), n, pos_total[ci])
    out.proxy[:, out.constant] = -np.inf
    return out


def _sparse_splits(x: torch.Tensor, y: torch.Tensor) -> ColumnSplits:
    """The same search over a column-sorted list of the non-zero entries, where each column's zeros form one
    entry of weight n_zero between its negative and positive values: O(nnz log nnz) instead of O(N K log N)."""
    n, k = x.shape
    c = y.shape[1]
    rows, cols = x.nonzero(as_tuple=True)
    n_zero = n - torch.bincount(cols, minlength=k)
    zcols = torch.nonzero(n_zero > 0).squeeze(1)
    rows = torch.cat([rows, torch.full_like(zcols, -1)])
    vals = torch.cat([x[rows[: len(cols)], cols], torch.zeros(len(zcols), dtype=x.dtype)])
    cols = torch.cat([cols, zcols])
    weight = torch.cat([torch.ones(len(cols) - len(zcols), dtype=torch.float64), n_zero[zcols].to(torch.float64)])
    by_value = torch.argsort(vals, stable=True)
    order = by_value[torch.argsort(cols[by_value], stable=True)]  # by column, then by value
    rows, cols, vals, weight = rows[order], cols[order], vals[order], weight[order]
    length = len(cols)
    last = torch.ones(length, dtype=torch.bool)
    last[:-1] = cols[1:] != cols[:-1]
    first = torch.ones(length, dtype=torch.bool)
    first[1:] = last[:-1]
    out = _empty(c, k)
    out.constant[:] = (vals[last] <= vals[first] + FEATURE_THRESHOLD).numpy()  # every column has entries
    valid = ~last
    valid[:-1] &= vals[1:] > vals[:-1] + FEATURE_THRESHOLD
    seg_start = torch.nonzero(first).squeeze(1)
    cum_w = torch.cumsum(weight, 0)
    n_left = cum_w - (cum_w - weight)[seg_start][cols]
    real = rows >= 0
    vals64 = vals.to(torch.float64)
    index = torch.arange(length)
    for ci in range(c):
        yc = y[:, ci].to(torch.float64)
        pos = torch.zeros(length, dtype=torch.float64)
        pos[real] = yc[rows[real]]
        pos_nz = torch.zeros(k, dtype=torch.float64).index_add_(0, cols[real], pos[real])
        pos_total = yc.sum()
        pos[~real] = pos_total - pos_nz[cols[~real]]
        cum_p = torch.cumsum(pos, 0)
        pos_left = cum_p - (cum_p - pos)[seg_start][cols]
        gain = _gini_proxy(n_left, pos_left, n, pos_total).masked_fill_(~valid, -np.inf)
        col_max = torch.full((k,), -np.inf, dtype=torch.float64).scatter_reduce(0, cols, gain, "amax")
        hit = valid & (gain == col_max[cols])
        best = torch.full((k,), length, dtype=torch.int64).scatter_reduce(0, cols[hit], index[hit], "amin")
        found = best < length
        b = best[found]
        fcols = torch.nonzero(found).squeeze(1).numpy()
        out.proxy[ci, fcols] = gain[b].numpy()
        out.threshold[ci, fcols] = (vals64[b] / 2.0 + vals64[b + 1] / 2.0).numpy()
        out.left_positive[ci, fcols], out.right_positive[ci, fcols] = _children(n_left[b], pos_left[b], n, pos_total)
    out.proxy[:, out.constant] = -np.inf
    return out


def pick_root(proxy: np.ndarray, unusable: np.ndarray, state: int) -> int:
    """The column scikit-learn's stump splits on, given one concept's proxies [K] and the columns it cannot use
    (constant or zeroed); -1 when no column has a valid split (the root stays a leaf)."""
    usable = ~unusable & np.isfinite(proxy)
    if not usable.any():
        return -1
    best = proxy[usable].max()
    tied = np.flatnonzero(usable & (proxy == best))
    if tied.size == 1:
        return int(tied[0])
    ranks = visit_ranks(unusable, state)
    return int(tied[np.argmin(ranks[tied])])

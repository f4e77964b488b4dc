"""Exact, vectorised search for the best single-latent Gini split: what a depth-1
``sklearn.tree.DecisionTreeClassifier(criterion="gini", random_state=seed)`` picks, without fitting one tree per
latent.

Every column is sorted once; cumulative class counts give the Gini proxy of every split position of every column
in one pass. The arithmetic mirrors scikit-learn's splitter (checked against scikit-learn 1.9's
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


def best_column_splits(x: torch.Tensor, y: torch.Tensor, *, block_elems: int = 1 << 22) -> ColumnSplits:
    """Best split of each column of x [n, K] (float32) for each binary concept column of y [n, C] (bool)."""
    n, k = x.shape
    c = y.shape[1]
    yf = y.to(torch.float64)
    pos_total = yf.sum(0)
    n_left = torch.arange(1, n, dtype=torch.float64)
    n_right = float(n) - n_left
    nl2, nr2 = n_left * n_left, n_right * n_right
    proxy = np.full((c, k), -np.inf)
    thresh = np.zeros((c, k))
    left_pos = np.zeros((c, k), dtype=bool)
    right_pos = np.zeros((c, k), dtype=bool)
    constant = np.zeros(k, dtype=bool)
    step = max(1, block_elems // max(n, 1))
    for j in range(0, k, step):
        cols = slice(j, min(k, j + step))
        vals, order = torch.sort(x[:, cols].T.contiguous(), dim=1)
        constant[cols] = (vals[:, -1] <= vals[:, 0] + FEATURE_THRESHOLD).numpy()
        invalid = ~(vals[:, 1:] > vals[:, :-1] + FEATURE_THRESHOLD)
        vals64 = vals.to(torch.float64)
        for ci in range(c):
            pl = torch.cumsum(yf[:, ci][order], dim=1)[:, :-1]
            nl_neg = n_left - pl
            pr = pos_total[ci] - pl
            nr_neg = n_right - pr
            imp_l = 1.0 - (nl_neg * nl_neg + pl * pl) / nl2
            imp_r = 1.0 - (nr_neg * nr_neg + pr * pr) / nr2
            gain = (-n_right) * imp_r - n_left * imp_l
            gain.masked_fill_(invalid, -np.inf)
            best = torch.argmax(gain, dim=1, keepdim=True)
            proxy[ci, cols] = gain.gather(1, best).squeeze(1).numpy()
            thresh[ci, cols] = (vals64.gather(1, best) / 2.0 + vals64.gather(1, best + 1) / 2.0).squeeze(1).numpy()
            pl_b = pl.gather(1, best).squeeze(1)
            pr_b = pr.gather(1, best).squeeze(1)
            left_pos[ci, cols] = (pl_b > nl_neg.gather(1, best).squeeze(1)).numpy()
            right_pos[ci, cols] = (pr_b > nr_neg.gather(1, best).squeeze(1)).numpy()
    proxy[:, constant] = -np.inf
    return ColumnSplits(proxy, thresh, left_pos, right_pos, constant)


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

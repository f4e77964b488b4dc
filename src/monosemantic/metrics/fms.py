"""Feature Monosemanticity Score (FMS; Härle et al. 2025, "Measuring and Guiding Monosemanticity",
arXiv:2506.19382, the section that defines FMS from feature capacity, local and global disentanglement).

Per concept c (one-vs-rest), with X the latents and Gini decision trees (random_state = seed):

    acc0      accuracy of the best single-latent split (a depth-1 tree, "capacity")
    acc[p]    the same after zeroing the top p latents one by one (zero the root latent, refit, repeat)
    local[p]  = 2 (acc0 - acc[p])
    global    = 1 - Σ_{i=1..D} (acc_cum_i - acc0) / D, acc_cum_i = accuracy of the full tree truncated to depth i
    fms[p]    = acc0 (local[p] + global) / 2;  FMS@p = mean over concepts

Which items a concept is scored on (``balance``):
  balanced    (default) the concept's positives and as many negatives drawn at random without replacement
              (``numpy.random.default_rng([seed, concept index])``: reproducible, and a different draw per
              concept); when the negatives are the fewer, all negatives and as many drawn positives. The paper's
              concepts are balanced binary tasks: its factor 2 in local[p] maps the accuracy drop from a perfect
              latent to chance, 1 - 0.5, onto [0, 1], and its per-token protocol samples as many negatives as
              positives with a fixed seed. The holdout split below applies to each concept's own subset.
  unbalanced  every concept on all items. With C balanced classes the rest is a fraction (C-1)/C of the items,
              so acc0 starts near (C-1)/C whatever the latents and local[p] is at most 2/C in-sample (0.2 for 10
              classes; about that on a holdout): FMS then mostly reflects the global term.

The depth-1 trees are not fitted one by one: `stumps.best_column_splits` scores every split of every latent at
once and replays scikit-learn's tie-breaking exactly, and zeroing a latent only removes it from the candidates
(its own best split does not depend on the others). Unbalanced, one search serves every concept; balanced, each
concept has its own rows, so each gets its own search on its subset. The unrestricted tree is scikit-learn's,
fitted on all latents (sparse CSC input when the latents are sparse: the same tree, far faster).

compat="paper" (default) vs "reference_code" (the authors' pipeline) differ in:
  holdout      paper: fit on a 70/30 split of the items, accuracies on the 30%; reference: in-sample (train)
  global rows  paper: depths 1..D; reference: the rows with Nodes != 1 of its table, i.e. depths 0, 2..D (the
               depth-0 row is the majority-class accuracy), still divided by D
  truncation   paper: samples take the majority class of the deepest node at depth <= i on their path;
               reference: samples that end in a leaf above depth i count as correct ("pure" leaves)
  clipping     paper: local and global clipped to [0, 1]; reference: none
The reference fits its local trees with max_depth=3 and reads their root split: with a fixed random_state that
root is the stump's, so both modes use the stump.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from monosemantic.errors import UserError
from monosemantic.metrics._common import as_matrix, check_choice, check_same_items
from monosemantic.metrics.stumps import ColumnSplits, best_column_splits, pick_root, sklearn_rand_state

Compat = Literal["paper", "reference_code"]
TEST_FRACTION = 0.3
SPARSE_BELOW = 0.1
"""Fit the full tree on a CSC matrix when fewer than this fraction of the latents are non-zero."""


class FMSResult(dict):
    """The FMS result: a dict (JSON-friendly keys) whose keys are also attributes (``global`` is ``global_``).

    Per concept (arrays of length C, in the order of ``concepts``): ``acc0``, ``root`` (latent of the best
    split, -1 when none), ``removed`` [C, max p] (latents zeroed in order, -1 when none was left), ``acc`` {p: ...}
    (stump accuracy after zeroing the top p), ``local`` {p: ...}, ``global``, ``depth`` (D of the full tree),
    ``acc_by_depth`` (list of [D+1] arrays: accuracy of the full tree truncated to depth 0..D under the active
    truncation rule), ``fms`` {p: ...}. Means over concepts: ``acc0_mean``, ``local_mean`` {p}, ``global_mean``,
    ``fms_mean`` {p}. Settings: ``concepts``, ``compat``, ``holdout``, ``seed``, ``p``, ``balance``; ``n_rows``
    [C] (items each concept was scored on: 2·min(positives, negatives) balanced, N unbalanced); ``train_rows``,
    ``test_rows`` (the items the trees are fitted on / accuracies are computed on: one array for all concepts
    unbalanced, a list of one array per concept balanced).
    """

    def __getattr__(self, name: str) -> Any:
        key = "global" if name == "global_" else name
        try:
            return self[key]
        except KeyError as err:
            raise AttributeError(name) from err


def fms_split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The paper's 70/30 holdout: ``sklearn.model_selection.train_test_split(arange(n), test_size=0.3,
    random_state=seed)`` (shuffled, not stratified). Returns (train_rows, test_rows)."""
    if n < 3:
        raise UserError(f"FMS with a holdout split needs at least 3 items; got {n}")
    # scikit-learn takes about a second to import: loaded here, so importing the metrics package stays quick
    from sklearn.model_selection import train_test_split

    tr, te = train_test_split(np.arange(n), test_size=TEST_FRACTION, random_state=seed)
    return np.asarray(tr), np.asarray(te)


def _concepts(labels: Any, n: int) -> tuple[np.ndarray, list[int]]:
    y = torch.as_tensor(labels)
    if y.numel() == 0:
        raise UserError("labels are empty; give one label per item")
    check_same_items(n, y.shape[0], "the latents", "labels")
    if y.ndim == 1:
        if y.dtype.is_floating_point and not bool((y == y.round()).all()):
            raise UserError("labels [N] must be integer class ids")
        ids = y.long().numpy()
        classes = np.unique(ids)
        if classes.size < 2:
            raise UserError(f"labels hold a single class ({classes[0]}); FMS needs at least two")
        return ids[:, None] == classes[None, :], [int(c) for c in classes]
    if y.ndim == 2:
        yf = y.to(torch.float64).numpy()
        if not np.isin(yf, (0.0, 1.0)).all():
            raise UserError("labels [N, C] must be binary (0/1 or bool), one column per concept")
        single = np.flatnonzero(yf.min(0) == yf.max(0))
        if single.size:
            raise UserError(f"concept column(s) {single.tolist()} of labels hold a single class; drop them")
        return yf.astype(bool), list(range(yf.shape[1]))
    raise UserError(f"labels must be [N] class ids or [N, C] binary columns; got shape {tuple(y.shape)}")


def _truncated_accuracy(clf: Any, x_eval: Any, y_eval: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy of the fitted tree truncated to depth 0..D on the eval rows: (paper rule, reference rule)."""
    tree = clf.tree_
    depth_max = int(tree.max_depth)
    left, right = tree.children_left, tree.children_right
    depth = np.zeros(tree.node_count, dtype=np.int64)
    for node in range(tree.node_count):  # children always get larger ids than their parent
        if left[node] >= 0:
            depth[left[node]] = depth[right[node]] = depth[node] + 1
    positive = np.asarray(clf.classes_)[tree.value[:, 0, :].argmax(1)].astype(bool)
    rows, nodes = clf.decision_path(x_eval).nonzero()
    correct = positive[nodes] == y_eval[rows]
    at_depth = np.bincount(depth[nodes], weights=correct, minlength=depth_max + 1)
    leaf = clf.apply(x_eval)
    leaf_depth = depth[leaf]
    leaf_correct = positive[leaf] == y_eval
    above = np.concatenate(([0.0], np.cumsum(np.bincount(leaf_depth, weights=leaf_correct, minlength=depth_max + 1))))
    above_all = np.concatenate(([0.0], np.cumsum(np.bincount(leaf_depth, minlength=depth_max + 1))))
    n = len(y_eval)
    return (at_depth + above[: depth_max + 1]) / n, (at_depth + above_all[: depth_max + 1]) / n


def fms(
    latents: Any,
    labels: Any,
    p: int | tuple[int, ...] = (1, 5),
    *,
    holdout: bool | None = None,
    seed: int = 0,
    compat: Compat = "paper",
    balance: bool = True,
    root: Any = None,
) -> FMSResult:
    """FMS of latents [N, K] for labels [N] (class ids: one concept per class present, one-vs-rest) or [N, C]
    (binary columns: one concept per column). For a single binary concept pass labels as [N, 1].

    p: the FMS@p to compute (top-p latents removed). holdout: fit on 70% of the items and measure on the other
    30% (`fms_split`); default True for compat="paper", False (in-sample) for "reference_code". seed: the split,
    the balanced draw and every tree's random_state. balance: score each concept on its positives and as many
    seeded random negatives (`balanced_rows`; the split then applies to that subset), or on all items (False).
    root: the latent each concept's score starts from, one per concept (a G-SAE's reserved latents: the paper
    scores the latent tied to the concept); None lets the stump pick the best single latent. Latents are cast to
    float32, as scikit-learn does. Returns an `FMSResult`.
    """
    check_choice("compat", compat, ("paper", "reference_code"))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise UserError(f"seed must be a whole number in [0, 2**32); got {seed!r}")  # sklearn's random_state range
    x = as_matrix(latents, "latents").detach().to("cpu", torch.float32).contiguous()
    n = x.shape[0]
    y_all, concepts = _concepts(labels, n)
    ps = (int(p),) if isinstance(p, int | np.integer) else tuple(sorted({int(q) for q in p}))
    if not ps or min(ps) < 1:
        raise UserError(f"p must be one or more positive integers (latents to remove); got {p!r}")
    use_holdout = (compat == "paper") if holdout is None else bool(holdout)
    x_np = x.numpy()
    state = sklearn_rand_state(seed)
    max_p = max(ps)
    n_c = len(concepts)
    out = _Scores(n_c, max_p)
    n_rows = np.full(n_c, n, dtype=np.int64)
    forced = _forced_roots(root, n_c, x.shape[1])
    if balance:
        split_rows: list[tuple[np.ndarray, np.ndarray]] = []
        for ci, concept in enumerate(concepts):
            rows = balanced_rows(y_all[:, ci], seed, ci)
            if use_holdout and len(rows) < 4:
                raise UserError(f"concept {concept} has 1 positive or 1 negative item; a balanced FMS with a holdout "
                                "needs 2 of each: drop it or score unbalanced (balance=False, score --no-fms-balance)")
            train_rows, test_rows = _train_test(rows, use_holdout, seed)
            split_rows.append((train_rows, test_rows))
            n_rows[ci] = len(rows)
            x_tr = x_np[train_rows]  # fancy indexing copies: C-contiguous, as the search wants
            x_te = x_tr if test_rows is train_rows else x_np[test_rows]
            y_tr, y_te = y_all[train_rows, ci : ci + 1], y_all[test_rows, ci]
            splits = best_column_splits(torch.from_numpy(x_tr), torch.from_numpy(y_tr))
            out.concept(ci, splits, 0, x_tr, x_te, y_tr[:, 0], y_te, state, seed, compat, forced=forced[ci])
        train_out: Any = [tr for tr, _ in split_rows]
        test_out: Any = [te for _, te in split_rows]
    else:
        train_out, test_out = _train_test(np.arange(n), use_holdout, seed)
        x_tr = np.ascontiguousarray(x_np[train_out]) if use_holdout else x_np
        x_te = x_np[test_out] if use_holdout else x_np
        y_tr, y_te = y_all[train_out], y_all[test_out]
        splits = best_column_splits(torch.from_numpy(x_tr), torch.from_numpy(y_tr))  # every concept in one search
        x_fit, x_eval = _tree_inputs(x_tr, x_te)  # shared by every concept's full tree
        for ci in range(n_c):
            out.concept(ci, splits, ci, x_tr, x_te, y_tr[:, ci], y_te[:, ci], state, seed, compat,
                        tree_inputs=(x_fit, x_eval), forced=forced[ci])

    acc0, acc_after, glob = out.acc0, out.acc_after, out.glob
    local = {q: 2.0 * (acc0 - acc_after[:, q - 1]) for q in ps}
    if compat == "paper":
        local = {q: np.clip(v, 0.0, 1.0) for q, v in local.items()}
        glob = np.clip(glob, 0.0, 1.0)
    scores = {q: acc0 * (local[q] + glob) / 2.0 for q in ps}
    return FMSResult(
        concepts=concepts, acc0=acc0, root=out.root, removed=out.removed,
        acc={q: acc_after[:, q - 1].copy() for q in ps}, local=local, **{"global": glob}, depth=out.depth,
        acc_by_depth=out.by_depth, fms=scores,
        acc0_mean=float(acc0.mean()), local_mean={q: float(v.mean()) for q, v in local.items()},
        global_mean=float(glob.mean()), fms_mean={q: float(v.mean()) for q, v in scores.items()},
        compat=compat, holdout=use_holdout, seed=seed, p=ps, balance=bool(balance), n_rows=n_rows,
        train_rows=train_out, test_rows=test_out,
    )


def _forced_roots(root: Any, n_c: int, k: int) -> list[int | None]:
    if root is None:
        return [None] * n_c
    roots = [int(r) for r in np.asarray(root).reshape(-1)]
    if len(roots) != n_c or any(not 0 <= r < k for r in roots):
        raise UserError(f"root must give one latent in [0, {k}) per concept ({n_c}); got {roots}")
    return list(roots)


def balanced_rows(positive: np.ndarray, seed: int, concept_index: int) -> np.ndarray:
    """The items a balanced FMS scores one concept on (sorted): every item of its smaller side (positives or
    negatives) and as many of the other side, drawn without replacement by
    ``numpy.random.default_rng([seed, concept_index])``, so the draw is reproducible and differs per concept."""
    pos = np.flatnonzero(positive)
    neg = np.flatnonzero(~np.asarray(positive, dtype=bool))
    small, large = (pos, neg) if len(pos) <= len(neg) else (neg, pos)
    if len(large) > len(small):
        large = np.random.default_rng([seed, concept_index]).choice(large, size=len(small), replace=False)
    return np.sort(np.concatenate([small, large]))


def _train_test(rows: np.ndarray, use_holdout: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not use_holdout:
        if len(rows) < 2:
            raise UserError(f"FMS needs at least 2 items; got {len(rows)}")
        return rows, rows
    tr, te = fms_split(len(rows), seed)
    return rows[tr], rows[te]


class _Scores:
    """Per-concept results, filled one concept at a time."""

    def __init__(self, n_c: int, max_p: int) -> None:
        self.max_p = max_p
        self.acc0 = np.zeros(n_c)
        self.root = np.full(n_c, -1, dtype=np.int64)
        self.removed = np.full((n_c, max_p), -1, dtype=np.int64)
        self.acc_after = np.zeros((n_c, max_p))
        self.glob = np.ones(n_c)
        self.depth = np.zeros(n_c, dtype=np.int64)
        self.by_depth: list[np.ndarray] = []

    def concept(
        self, ci: int, splits: ColumnSplits, si: int, x_tr: np.ndarray, x_te: np.ndarray, yt: np.ndarray,
        ye: np.ndarray, state: int, seed: int, compat: Compat, tree_inputs: tuple[Any, Any] | None = None,
        forced: int | None = None,
    ) -> None:
        """Score concept ci from row si of `splits` (its stump search on x_tr) and a full tree on x_tr; ``forced``
        is the latent acc0 is measured on (the best one when None)."""
        max_p = self.max_p
        majority = bool(yt.sum() * 2 > len(yt))  # ties go to the negative class, as sklearn's argmax does
        pure = bool(yt.all() or not yt.any())
        unusable = splits.constant.copy()
        for step in range(max_p + 1):
            col = -1 if pure else pick_root(splits.proxy[si], unusable, state)
            if step == 0 and forced is not None:
                col = forced
            if col < 0 or (step == 0 and unusable[col]):  # a constant forced latent predicts the majority class
                acc = float(np.mean(ye == majority))
            else:
                go_left = x_te[:, col].astype(np.float64) <= splits.threshold[si, col]
                pred = np.where(go_left, splits.left_positive[si, col], splits.right_positive[si, col])
                acc = float(np.mean(pred == ye))
            if step == 0:
                self.acc0[ci], self.root[ci] = acc, col
            else:
                self.acc_after[ci, step - 1] = acc
            if step < max_p and col >= 0:
                self.removed[ci, step] = col
                unusable[col] = True
        x_fit, x_eval = tree_inputs if tree_inputs is not None else _tree_inputs(x_tr, x_te)
        paper_rows, ref_rows = _full_tree_rows(x_fit, x_eval, yt, ye, seed, pure)
        d = len(paper_rows) - 1
        self.depth[ci] = d
        rows = paper_rows if compat == "paper" else ref_rows
        self.by_depth.append(rows)
        if d >= 1:
            keep = np.arange(1, d + 1) if compat == "paper" else np.r_[0, np.arange(2, d + 1)]
            self.glob[ci] = 1.0 - float(np.sum(rows[keep] - self.acc0[ci])) / d


def _tree_inputs(x_tr: np.ndarray, x_te: np.ndarray) -> tuple[Any, Any]:
    """Sparse latents go to scikit-learn as CSC (fit) / CSR (predict); dense ones column-major for the fit."""
    density = np.count_nonzero(x_tr) / max(x_tr.size, 1)
    if density < SPARSE_BELOW:
        return sp.csc_matrix(x_tr), sp.csr_matrix(x_te)
    return np.asfortranarray(x_tr), np.ascontiguousarray(x_te)


def _full_tree_rows(
    x_fit: Any, x_eval: Any, yt: np.ndarray, ye: np.ndarray, seed: int, pure: bool
) -> tuple[np.ndarray, np.ndarray]:
    if pure:  # the tree is its root: the majority class everywhere
        acc = np.array([float(np.mean(ye == bool(yt[0])))])
        return acc, acc
    from sklearn.tree import DecisionTreeClassifier  # see fms_split: loaded on first use

    clf = DecisionTreeClassifier(criterion="gini", random_state=seed).fit(x_fit, yt)
    return _truncated_accuracy(clf, x_eval, ye)

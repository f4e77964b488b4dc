"""One-to-one matchings that maximise a summed similarity (the Hungarian algorithm), and the decoder matching of
two SAEs in one space.

Lan et al. (arXiv 2410.06981) pair features by activation correlation; matching two dictionaries by the absolute
cosine of their decoder vectors is the usual activation-free check that two SAEs of one layer learned the same
directions (e.g. across seeds). Both use ``assign``: exact on the dense score matrix while it is small, and on a
graph of each column's best candidates above that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from monosemantic.errors import UserError

# dense scores up to this many entries (float64: 268 MB), a top-candidate graph above it
DENSE_MAX = 1 << 25
CANDIDATES = 16


def assign(
    dense: np.ndarray | None = None,
    *,
    idx: np.ndarray | None = None,
    val: np.ndarray | None = None,
    rows: int = 0,
    hint: str = "the sets are too wide for a Hungarian matching",
) -> tuple[np.ndarray, np.ndarray]:
    """For every column j, the row matched to it (-1: none) and the score of that match, maximising the summed
    score over a one-to-one matching. Give either ``dense [R, C]`` or each column's candidates ``idx, val [C, m]``
    (row indices and scores, with ``rows`` rows in all; ``hint`` ends the error when no full matching exists among
    them); scores must lie in [-1, 1]."""
    if dense is not None:
        from scipy.optimize import linear_sum_assignment

        r, c = linear_sum_assignment(-dense)
        match = np.full(dense.shape[1], -1, dtype=np.int64)
        score = np.full(dense.shape[1], np.nan)
        match[c], score[c] = r, dense[r, c]
        return match, score
    assert idx is not None and val is not None
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    cols = len(idx)
    # weights 2 - s are positive, so no candidate edge is mistaken for a missing one
    graph = csr_matrix(((2.0 - val).ravel(), (np.repeat(np.arange(cols), idx.shape[1]), idx.ravel())),
                       shape=(cols, rows))
    try:
        matched, partner = min_weight_full_bipartite_matching(graph)
    except ValueError:
        raise UserError(f"no one-to-one matching covers every feature among the {idx.shape[1]} best candidates of "
                        f"each; {hint}") from None
    match = np.full(cols, -1, dtype=np.int64)
    match[matched] = partner
    score = np.full(cols, np.nan)
    ok = np.flatnonzero(match >= 0)
    pos = (idx[ok] == match[ok, None]).argmax(1)  # every match is one of its column's candidates
    score[ok] = val[ok, pos]
    return match, score


@dataclass(frozen=True)
class DecoderMatch:
    """A one-to-one matching of B's decoder vectors to A's by absolute cosine."""

    a_index: np.ndarray
    """``[F_B]``: the A feature matched to each B feature (-1 where A has fewer features)."""
    abs_cos: np.ndarray
    """``[F_B]``: |cos| of each match (NaN where unmatched)."""
    random_mean: float
    """The mean |cos| of the same matching against as many random unit directions (the chance level in d dims)."""

    @property
    def mean_abs_cos(self) -> float:
        """Mean |cos| over the matched pairs."""
        return float(np.nanmean(self.abs_cos))


def _abs_cos_match(wa: torch.Tensor, wb: torch.Tensor, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    a = torch.nn.functional.normalize(wa.double(), dim=1)
    b = torch.nn.functional.normalize(wb.double(), dim=1)
    if len(a) * len(b) <= DENSE_MAX:
        return assign((a @ b.T).abs().numpy())
    m = min(CANDIDATES, len(a))
    idx = torch.empty(len(b), m, dtype=torch.int64)
    val = torch.empty(len(b), m, dtype=torch.float64)
    for lo in range(0, len(b), block):
        v, i = (b[lo : lo + block] @ a.T).abs().topk(m, dim=1)
        idx[lo : lo + block], val[lo : lo + block] = i, v
    return assign(idx=idx.numpy(), val=val.numpy(), rows=len(a))


def decoder_matching(w_a: np.ndarray | torch.Tensor, w_b: np.ndarray | torch.Tensor, seed: int = 0) -> DecoderMatch:
    """Hungarian matching of the decoder rows ``w_a [F_A, d]`` and ``w_b [F_B, d]`` by |cos| (both SAEs must write
    into the same d-dimensional space: one model, one hook or one residual stream), with the chance level from
    matching ``w_a`` against as many random Gaussian directions."""
    wa, wb = (torch.as_tensor(np.asarray(w.detach().cpu() if isinstance(w, torch.Tensor) else w)) for w in (w_a, w_b))
    if wa.ndim != 2 or wb.ndim != 2 or wa.shape[1] != wb.shape[1]:
        raise UserError(f"decoder matching needs two [features, d] matrices of one width d; got {list(wa.shape)} and "
                        f"{list(wb.shape)} (SAEs of different models or hooks live in different spaces)")
    if not (torch.isfinite(wa).all() and torch.isfinite(wb).all()):
        raise UserError("the decoder matrices hold NaN or infinite values")
    a_index, abs_cos = _abs_cos_match(wa, wb)
    rand = torch.randn(len(wb), wb.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    _, rand_cos = _abs_cos_match(wa, rand)
    return DecoderMatch(a_index, abs_cos, float(np.nanmean(rand_cos)))

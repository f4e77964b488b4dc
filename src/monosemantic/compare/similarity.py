"""Representational similarity of paired rows ``X [n, d_A]`` and ``Y [n, d_B]`` (paired decoder vectors), with nulls.

SVCCA and RSA as used by Lan et al. (arXiv 2410.06981, §3.2-3.3; SVCCA after Raghu et al., arXiv 1706.05806);
linear CKA after Kornblith et al. (arXiv 1905.00414); orthogonal Procrustes (Schönemann 1966) as a distance.
Row ``i`` of X and of Y are the two features of pair ``i``; ``d_A`` may differ from ``d_B``.

The permutation null shuffles the rows of Y (breaking the pairing, keeping each space's geometry). Each score
here has a ``prepare`` step that does the permutation-invariant work once (SVDs, whitening, similarity ranks), so
a thousand shuffles cost a thousand cheap products, not a thousand full scores.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from monosemantic.errors import UserError, unknown_choice

SVCCA_MODES = ("variance_99", "reference_k1")
CCA_EPS = 1e-10

Score = Callable[[np.ndarray, np.ndarray], float]


def _check(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, need: int = 3) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise UserError(f"paired rows must be 2-D [n, d] arrays; got shapes {list(x.shape)} and {list(y.shape)}")
    if len(x) != len(y):
        raise UserError(f"X has {len(x)} rows and Y {len(y)}; row i of each must be the two features of pair i")
    if len(x) < need:
        raise UserError(f"only {len(x)} pairs; similarity scores need at least {need} (no score is given for fewer)")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise UserError("the paired rows hold NaN or infinite values")
    return x, y


# --------------------------------------------------------------------------------------------- SVCCA


def _svd_reduce(x: np.ndarray, mode: str) -> np.ndarray:
    """Centre each dimension over the paired features, keep the top-k principal directions: ``[n, k]`` scores."""
    xc = x - x.mean(0)
    # the principal directions from the d x d second moment (eigh), not an SVD of the n x d rows: the same scores
    # x_c V, several times faster for n >> d (float64 keeps the squared condition number harmless here)
    w, v = np.linalg.eigh(xc.T @ xc)
    order = np.argsort(w)[::-1]
    s, v = np.sqrt(np.clip(w[order], 0.0, None)), v[:, order]
    if mode == "reference_k1":
        # the reference code compares a normalised cumulative variance with 0.99 × the unnormalised total, which
        # never holds for n >= 2 unit-norm rows, so it keeps one component
        k = 1
    else:
        var = s * s
        total = var.sum()
        k = 1 if total <= 0 else int(np.searchsorted(np.cumsum(var) / total, 0.99 - 1e-12) + 1)
    return xc @ v[:, :k]


def _whiten(r: np.ndarray) -> np.ndarray:
    """Columns of ``r [n, k]`` turned into an orthonormal basis of its span, by the inverse square root of the
    covariance (ε = 1e-10 on the diagonal, as in the SVCCA reference)."""
    r = r - r.mean(0)
    cov = r.T @ r + CCA_EPS * np.eye(r.shape[1])
    w, v = np.linalg.eigh(cov)
    inv_sqrt = (v / np.sqrt(np.clip(w, CCA_EPS, None))) @ v.T
    return r @ inv_sqrt


def svcca_prepare(x: np.ndarray, mode: str) -> np.ndarray:
    if mode not in SVCCA_MODES:
        raise unknown_choice("SVCCA mode", mode, SVCCA_MODES)
    return _whiten(_svd_reduce(x, mode))


def _mean_canonical(qx: np.ndarray, qy: np.ndarray) -> float:
    sv = np.linalg.svd(qx.T @ qy, compute_uv=False)
    return float(np.clip(sv, 0.0, 1.0).mean())


def svcca(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, mode: str = "variance_99") -> float:
    """SVCCA: mean canonical correlation between the top principal directions of X and of Y, treating the n pairs
    as data points. ``variance_99`` keeps the fewest components explaining 99% of each side's variance;
    ``reference_k1`` keeps one (what the reference code does), which makes the score the |Pearson correlation|
    of the two first principal-component projections."""
    x, y = _check(x, y)
    return _mean_canonical(svcca_prepare(x, mode), svcca_prepare(y, mode))


# --------------------------------------------------------------------------------------------- RSA


def _ranks(v: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (Spearman's); one argsort when, as usual for similarities, nothing ties."""
    order = np.argsort(v, kind="stable")
    if not np.any(np.diff(v[order]) == 0):
        ranks = np.empty(len(v))
        ranks[order] = np.arange(1, len(v) + 1)
        return ranks
    from scipy.stats import rankdata

    return rankdata(v)


def _upper_ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred ranks of the upper triangle of the row-wise Pearson similarity matrix: as a vector (in
    ``triu_indices`` order) and as a symmetric [n, n] matrix, so that a shuffle of the rows is a gather."""
    xc = x - x.mean(1, keepdims=True)
    norms = np.linalg.norm(xc, axis=1, keepdims=True)
    xn = xc / np.where(norms > 0, norms, 1.0)
    sim = xn @ xn.T
    iu = np.triu_indices(len(x), 1)
    ranks = _ranks(sim[iu])
    ranks -= ranks.mean()
    full = np.zeros_like(sim)
    full[iu] = ranks
    return ranks, full + full.T


def _corr0(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two centred vectors."""
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float(a @ b / den) if den > 0 else 0.0


def rsa(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """RSA: Spearman correlation between the upper triangles of the two n×n similarity matrices, each the Pearson
    correlation between rows (rows mean-centred, then cosine). Works across different d_A and d_B."""
    x, y = _check(x, y)
    return _corr0(_upper_ranks(x)[0], _upper_ranks(y)[0])


# --------------------------------------------------------------------------------------------- CKA, Procrustes


def linear_cka(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Linear CKA of the column-centred X and Y: ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)."""
    x, y = _check(x, y)
    x, y = x - x.mean(0), y - y.mean(0)
    den = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(np.linalg.norm(y.T @ x) ** 2 / den) if den > 0 else 0.0


def procrustes_residual(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Orthogonal Procrustes residual ``min_R ‖X̂ − ŶR‖²_F`` for column-centred X̂, Ŷ scaled to unit Frobenius norm
    and zero-padded to a common width; 0 when one is a rotation of the other, at most 2."""
    xa, ya = _check(x, y)
    xa, ya = xa - xa.mean(0), ya - ya.mean(0)
    nx, ny = np.linalg.norm(xa), np.linalg.norm(ya)
    if nx == 0 or ny == 0:
        return 2.0
    nuclear = np.linalg.svd((ya / ny).T @ (xa / nx), compute_uv=False).sum()
    return float(max(0.0, 2.0 - 2.0 * nuclear))


# --------------------------------------------------------------------------------------------- nulls


@functools.cache
def _fast_bf16_cpu() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 products are emulated and
    slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# bf16 products only pay where a shuffle is a big product (5,000 x 502 x 749 is 1.9e9 multiply-adds); below this
# the float32 path is fast enough and its rounding is smaller
BF16_MIN_WORK = 2e8
NULL_DTYPES = ("auto", "float32", "bfloat16")


class SvccaNull:
    """SVCCA of shuffled pairings from the prepared bases ``Q_X [n, k_X]`` and ``Q_Y [n, k_Y]``.

    A shuffle only needs the singular values of ``Q_Xᵀ P Q_Y``. Permuting Y's rows by p equals permuting X's rows
    by p⁻¹, so the narrower basis is the one gathered, and a batch of shuffles is one product
    ``[b·k_small, n] @ [n, k_big]``; the singular values come from the eigenvalues of the smaller Gram matrix
    (float32, within ~1e-7 of an SVD in float64). With ``dtype="bfloat16"`` that product runs on bf16 inputs
    (about 2x faster on CPUs with native bf16); its error is measured on the first batch against float32, and any
    shuffle that lands within 10x that error of the observed score is recomputed in float32, so the p-value is the
    float32 one and only the null mean carries the rounding (measured: ~1e-6 at 5,000 pairs)."""

    def __init__(self, qx: np.ndarray, qy: np.ndarray, dtype: str = "auto") -> None:
        if dtype not in NULL_DTYPES:
            raise unknown_choice("null dtype", dtype, NULL_DTYPES)
        self.gather_y = qy.shape[1] <= qx.shape[1]
        small, big = (qy, qx) if self.gather_y else (qx, qy)
        self.n, self.k_small, self.k_big = len(small), small.shape[1], big.shape[1]
        self.small, self.big = torch.from_numpy(small).float(), torch.from_numpy(big).float()
        if dtype == "auto":
            big_enough = self.n * self.k_small * self.k_big >= BF16_MIN_WORK
            dtype = "bfloat16" if big_enough and _fast_bf16_cpu() else "float32"
        self.dtype = dtype
        self.margin = 0.0

    def _values(self, perms: np.ndarray, dtype: torch.dtype) -> np.ndarray:
        idx = perms if self.gather_y else np.argsort(perms, axis=1)
        small, big = self.small.to(dtype), self.big.to(dtype)
        b = len(idx)
        m = (small[torch.from_numpy(idx.T)].reshape(self.n, -1).T @ big).float().reshape(b, self.k_small, -1)
        ev = torch.linalg.eigvalsh(m @ m.transpose(1, 2)).clamp(0.0, 1.0).sqrt()
        return (ev.sum(1) / self.k_small).double().numpy()

    def __call__(self, perms: np.ndarray, observed: float) -> np.ndarray:
        """The shuffled SVCCA of each row of ``perms [n_perm, n]``."""
        step = max(1, (1 << 25) // (self.n * self.k_small))  # about 32 M gathered entries per product
        batches = [perms[i : i + step] for i in range(0, len(perms), step)]
        if self.dtype == "float32":
            return np.concatenate([self._values(p, torch.float32) for p in batches])
        first = self._values(batches[0], torch.float32)
        self.margin = 10 * float(np.abs(self._values(batches[0], torch.bfloat16) - first).max()) + 1e-7
        null = np.concatenate([first, *(self._values(p, torch.bfloat16) for p in batches[1:])])
        near = np.flatnonzero(np.abs(null - observed) <= self.margin)
        if near.size:
            null[near] = np.concatenate([self._values(perms[near[i : i + step]], torch.float32)
                                         for i in range(0, near.size, step)])
        return null


def _fast_score(name: str, x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray | None], float]:
    """A function of a row permutation of Y (None: the identity) computing the named score."""
    if name == "rsa":
        (rx, rx_full), (ry, ry_full) = _upper_ranks(x), _upper_ranks(y)
        fx, fy = rx_full.astype(np.float32), ry_full.astype(np.float32)
        den = float(np.sqrt((rx * rx).sum() * (ry * ry).sum())) or 1.0

        def shuffled(p: np.ndarray | None) -> float:
            if p is None:
                return _corr0(rx, ry)
            # shuffling Y's rows permutes its similarity entries but not their ranks; with zero diagonals and
            # symmetric matrices the upper-triangle sum is half the full one, and np.take of whole rows then
            # columns in float32 is several times faster than gathering the triangle (accurate to ~1e-6)
            shuffled_y = np.take(np.take(fy, p, axis=0), p, axis=1)
            return float(np.vdot(fx, shuffled_y)) / 2 / den

        return shuffled
    fn = SCORES[name]
    return lambda p: fn(x, y if p is None else y[p])


SCORES: dict[str, Score] = {
    "svcca": svcca,
    "svcca:variance_99": lambda x, y: svcca(x, y, "variance_99"),
    "svcca:reference_k1": lambda x, y: svcca(x, y, "reference_k1"),
    "rsa": rsa,
    "cka": linear_cka,
    "procrustes": procrustes_residual,
}


def permutation_test(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    score: str | Score = "svcca",
    n_perm: int = 1000,
    seed: int = 0,
    *,
    higher_is_more_similar: bool = True,
    null_dtype: str = "auto",
) -> tuple[float, float, float]:
    """(observed, null mean, p): the score of the true pairing against ``n_perm`` shuffles of Y's rows;
    ``p = (#{null ≥ observed} + 1) / (n_perm + 1)`` (``≤`` for a distance, with ``higher_is_more_similar=False``).
    ``score`` is a function ``(X, Y) -> float`` or one of: svcca, svcca:variance_99, svcca:reference_k1, rsa, cka,
    procrustes (the named ones reuse their permutation-invariant work across shuffles). ``null_dtype`` sets the
    precision of SVCCA's shuffled products: ``auto`` takes bfloat16 for large products on CPUs that have it (the
    p-value stays the float32 one, see ``SvccaNull``), ``float32`` always, ``bfloat16`` wherever."""
    x, y = _check(x, y)
    if isinstance(n_perm, bool) or not isinstance(n_perm, int) or n_perm < 1:
        raise UserError(f"n_perm must be a positive number of shuffles; got {n_perm!r}")
    if null_dtype not in NULL_DTYPES:
        raise unknown_choice("null dtype", null_dtype, NULL_DTYPES)
    if isinstance(score, str) and score not in SCORES:
        raise unknown_choice("score", score, SCORES)
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(len(y)) for _ in range(n_perm)])
    if isinstance(score, str) and score.startswith("svcca"):
        mode = score.partition(":")[2] or "variance_99"
        qx, qy = svcca_prepare(x, mode), svcca_prepare(y, mode)
        observed = _mean_canonical(qx, qy)
        null = SvccaNull(qx, qy, null_dtype)(perms, observed)
    else:
        if score == "procrustes":
            higher_is_more_similar = False
        if isinstance(score, str):
            fn = _fast_score(score, x, y)
        else:
            func = score
            fn = lambda p: func(x, y if p is None else y[p])  # noqa: E731
        observed = float(fn(None))
        null = np.array([fn(p) for p in perms])
    # a null equal to the observation up to rounding is a tie (SVCCA is exactly 1 for any pairing when there are
    # no more pairs than dimensions, and float noise must not turn that into a significant p; shuffled SVCCA is
    # computed in float32, good to about 1e-6)
    tol = 1e-5 * max(1.0, abs(observed))
    hits = (null >= observed - tol) if higher_is_more_similar else (null <= observed + tol)
    return float(observed), float(null.mean()), float((hits.sum() + 1) / (n_perm + 1))


def random_subset_baseline(
    x_all: np.ndarray | torch.Tensor,
    y_all: np.ndarray | torch.Tensor,
    n: int,
    score: str | Score = "svcca",
    *,
    n_draws: int = 100,
    seed: int = 0,
    partners: np.ndarray | None = None,
    kind: Literal["uniform", "max_corr"] = "uniform",
) -> tuple[float, float]:
    """(mean, std) of the score of ``n`` randomly drawn features, ``n_draws`` times: whether subspace size alone
    explains a similarity. ``uniform`` draws n rows of each space independently (A's with replacement when n
    exceeds A's features); ``max_corr`` draws n B features
    with their max-correlation A partners (``partners[j]`` is B feature j's A feature)."""
    x_all, y_all = (np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64)
                    for v in (x_all, y_all))
    if n < 3 or n > len(y_all):
        raise UserError(f"a random subset needs 3 to {len(y_all)} features (B's count); got {n}")
    fn = SCORES[score] if isinstance(score, str) else score
    rng = np.random.default_rng(seed)
    # many B features may share one A partner, so the kept pairs can outnumber A's features: A's side is then drawn
    # with replacement, as the pairing itself repeats A features
    a_repeats = n > len(x_all)
    values = []
    for _ in range(n_draws):
        if kind == "max_corr":
            if partners is None:
                raise UserError("the max_corr random subset needs each B feature's A partner")
            b = rng.choice(len(y_all), n, replace=False)
            values.append(fn(x_all[partners[b]], y_all[b]))
        else:
            values.append(fn(x_all[rng.choice(len(x_all), n, replace=a_repeats)],
                             y_all[rng.choice(len(y_all), n, replace=False)]))
    return float(np.mean(values)), float(np.std(values))

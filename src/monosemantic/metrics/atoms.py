"""The atomic inner product and the atoms metrics of "Towards Atoms of Large Language Models" (Hu, Cao, Chen, Liu,
Zhao; arXiv 2509.20784): the atomic inner product and whitening, coherence, uniqueness (Donoho-Elad) and the
stability q*, the faithfulness R², and the representation-shift angle histograms.

The AIP metric is S̃ = (E[m mᵀ] + ε·tr/H·I)⁻¹, the inverse uncentred second moment of the activations with a ridge;
AIP(u, v) = uᵀS̃v / √(uᵀS̃u · vᵀS̃v) = cos(W u, W v) with the whitening W = S̃^{1/2}. A dictionary is D [H, N]
(one atom per column): D = I for neurons, W_decᵀ for SAE features. ``S=None`` anywhere means the Euclidean
geometry (S̃ = I). A code matrix is [samples, N] (dense, sparse, or TopK's (indices, values)); its support T_i,
K_i = |T_i| and μ_i = max_{a≠b ∈ T_i} |AIP(d_a, d_b)| decide uniqueness: μ_i < 1/(2K_i − 1).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError
from monosemantic.metrics._coactive import coactive_max, exact_max, support_csr
from monosemantic.metrics._common import as_matrix, auto_chunk, check_choice, check_same_items

PAIRS = ("co_active", "all")
REFINE_MARGIN = 1e-4
"""fp32 μ_i within this of a decision threshold are recomputed in fp64 (fp32 error is ~1e-6 for unit vectors)."""


class SingularMomentWarning(UserWarning):
    """The activations' second moment is singular: the AIP metric is defined only through its ridge."""


def second_moment(acts: Any) -> torch.Tensor:
    """E[m mᵀ] over the rows of acts [N, H]: float64 [H, H] (uncentred)."""
    a = as_matrix(acts, "acts [N, H]")
    m = torch.zeros(a.shape[1], a.shape[1], dtype=torch.float64)
    step = auto_chunk(a.shape[1])
    for i in range(0, a.shape[0], step):
        blk = a[i : i + step].to(torch.float64).cpu()
        m += blk.T @ blk
    return m / a.shape[0]


def aip_metric(acts: Any, ridge: float = 1e-4) -> torch.Tensor:
    """S̃ = (E[m mᵀ] + ridge · tr(E[m mᵀ])/H · I)⁻¹: float64 [H, H] (arXiv 2509.20784, the AIP).

    A singular second moment (fewer independent rows than H, or a direction the activations never take) is
    invertible only through the ridge: a SingularMomentWarning says so, and ridge=0 is then a UserError.
    """
    if not (isinstance(ridge, int | float) and math.isfinite(ridge) and ridge >= 0):
        raise UserError(f"ridge must be a finite number >= 0; got {ridge!r}")
    m = second_moment(acts)
    h = m.shape[0]
    trace = float(torch.trace(m))
    if trace == 0.0:
        raise UserError("the activations are all zero; their second moment defines no metric")
    evals, evecs = torch.linalg.eigh(m)
    tol = h * torch.finfo(torch.float64).eps * float(evals[-1])
    rank = int((evals > tol).sum())
    if rank < h:
        if ridge == 0:
            raise UserError(
                f"the second moment of the activations is singular (rank {rank} of {h}); give ridge > 0 "
                "(default 1e-4) or more, non-degenerate activations"
            )
        warnings.warn(
            f"the second moment of the activations is singular (rank {rank} of {h}); the AIP metric there is set by "
            f"the ridge {ridge:g}·tr/H = {ridge * trace / h:.3g}",
            SingularMomentWarning,
            stacklevel=2,
        )
    inv = 1.0 / (evals.clamp_min(0.0) + ridge * trace / h)
    return (evecs * inv) @ evecs.T


def _metric(s: Any, h: int) -> torch.Tensor:
    t = as_matrix(s, "S [H, H]", dtype=torch.float64).cpu()
    if t.shape != (h, h):
        raise UserError(f"S is {tuple(t.shape)} but the vectors have H = {h}; S must be [H, H]")
    if not torch.allclose(t, t.T, rtol=1e-8, atol=1e-12 * float(t.abs().max())):
        raise UserError("S must be symmetric (an inverse second moment, as aip_metric returns)")
    return (t + t.T) / 2


def whitening(s: Any) -> torch.Tensor:
    """W = S^{1/2} (symmetric square root via eigh): float64 [H, H]; S must be positive semi-definite."""
    t = _metric(s, torch.as_tensor(s).shape[0])
    evals, evecs = torch.linalg.eigh(t)
    if float(evals[0]) < -1e-10 * max(float(evals[-1]), 0.0):
        raise UserError(f"S has a negative eigenvalue ({float(evals[0]):.3g}); it must be positive semi-definite")
    return (evecs * evals.clamp_min(0.0).sqrt()) @ evecs.T


def whiten(acts: Any, s: Any) -> torch.Tensor:
    """Rows m -> W m with W = S^{1/2}: [N, H], in the floating dtype of acts (float64 for integer input)."""
    a = as_matrix(acts, "acts [N, H]")
    w = whitening(_metric(s, a.shape[1]))
    dtype = a.dtype if a.dtype.is_floating_point else torch.float64
    out = torch.empty(a.shape, dtype=dtype)
    step = auto_chunk(a.shape[1])
    for i in range(0, a.shape[0], step):
        out[i : i + step] = (a[i : i + step].to(torch.float64).cpu() @ w).to(dtype)
    return out


def aip(u: Any, v: Any, s: Any = None) -> float | torch.Tensor:
    """AIP(u, v) = uᵀSv / √(uᵀSu · vᵀSv) (S=None: cosine). Vectors [H] give a float; [A, H] and [B, H] give the
    float64 [A, B] matrix. A vector of zero S-norm has no direction: NaN."""
    a, b = torch.as_tensor(u).to(torch.float64).cpu(), torch.as_tensor(v).to(torch.float64).cpu()
    single = a.ndim == 1 and b.ndim == 1
    a, b = a.reshape(-1, a.shape[-1]) if a.ndim else a, b.reshape(-1, b.shape[-1]) if b.ndim else b
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.numel() == 0 or b.numel() == 0:
        raise UserError(f"u and v must be [H] or [A, H] / [B, H] with the same H; got {tuple(a.shape)}, "
                        f"{tuple(b.shape)}")
    m = torch.eye(a.shape[1], dtype=torch.float64) if s is None else _metric(s, a.shape[1])
    sa, sb = a @ m, b @ m
    na = (sa * a).sum(1).clamp_min(0.0).sqrt()
    nb = (sb * b).sum(1).clamp_min(0.0).sqrt()
    out = (sa @ b.T) / (na[:, None] * nb[None, :])
    out = torch.where((na[:, None] > 0) & (nb[None, :] > 0), out.clamp(-1.0, 1.0), torch.nan)
    return float(out[0, 0]) if single else out


def unit_atoms(d: Any, s: Any = None) -> torch.Tensor:
    """The atoms as rows of unit length in the whitened space: float64 [N, H] (a zero atom stays 0)."""
    dd = as_matrix(d, "D [H, N]", dtype=torch.float64).cpu()
    if s is not None:
        dd = whitening(_metric(s, dd.shape[0])) @ dd
    norms = torch.linalg.vector_norm(dd, dim=0)
    return (dd / torch.where(norms > 0, norms, 1.0)).T.contiguous()


def coherence(d: Any, s: Any = None, *, block: int = 1024) -> float:
    """μ = max_{a≠b} |AIP(d_a, d_b)| over the N ≥ 2 columns of D [H, N], in float64, block by block (never the
    N x N matrix). A zero column has no direction and counts as AIP 0."""
    u = unit_atoms(d, s)
    n = u.shape[0]
    if n < 2:
        raise UserError(f"coherence needs at least two atoms; D has {n}")
    best = 0.0
    for i in range(0, n, block):
        g = (u[i : i + block] @ u.T).abs_()
        g[torch.arange(g.shape[0]), torch.arange(i, i + g.shape[0])] = 0.0
        best = max(best, float(g.max()))
    return min(best, 1.0)


def sample_coherence(
    codes: Any, d: Any, s: Any = None, *, refine_near: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ [Ns] float64, K [Ns] int64): per sample, the largest |AIP| between two of its active atoms (0 when
    K_i < 2) and the number of active atoms, from the active columns only.

    μ is computed in float32 and recomputed in float64 for the samples within REFINE_MARGIN of a value in
    `refine_near` (default: every 1/(2k − 1) for the K values present, the uniqueness thresholds).
    """
    u = unit_atoms(d, s)
    indptr, indices = support_csr(codes, u.shape[0])
    mu = coactive_max(u.float(), indptr, indices).to(torch.float64)
    k = torch.from_numpy(np.diff(indptr))
    if refine_near is None:
        ks = torch.unique(k[k >= 1]).to(torch.float64)
        refine_near = 1.0 / (2 * ks - 1)
    close = torch.zeros(len(mu), dtype=torch.bool)
    for t in torch.as_tensor(refine_near, dtype=torch.float64).reshape(-1).tolist():
        close |= (mu - t).abs() <= REFINE_MARGIN
    rows = torch.nonzero(close & (k >= 2)).reshape(-1).numpy()
    if len(rows):
        mu[torch.from_numpy(rows)] = exact_max(u, indptr, indices, rows)
    return mu, k


def _unique(mu: torch.Tensor | float, k: torch.Tensor) -> torch.Tensor:
    # Donoho-Elad: ||δ||₀ < (1 + 1/μ)/2 ⟺ μ(2K - 1) < 1, which also holds for K = 0 and for μ = 0
    return torch.as_tensor(mu, dtype=torch.float64) * (2 * k.to(torch.float64) - 1) < 1


def unique_fraction(codes: Any, d: Any, s: Any = None, pairs: str = "co_active") -> float:
    """Fraction of samples whose code is provably unique: μ_i < 1/(2K_i − 1) (arXiv 2509.20784, uniqueness).

    pairs: ``co_active`` (μ_i over the sample's own active atoms) or ``all`` (μ_i = the dictionary's coherence).
    """
    check_choice("pairs", pairs, PAIRS)
    if pairs == "co_active":
        mu, k = sample_coherence(codes, d, s)
        return float(_unique(mu, k).to(torch.float64).mean())
    u = unit_atoms(d, s)
    indptr, _ = support_csr(codes, u.shape[0])
    k = torch.from_numpy(np.diff(indptr))
    return float(_unique(coherence(d, s), k).to(torch.float64).mean())


def _pair_quantile(u: torch.Tensor, bins: int = 1 << 20, block: int = 1024) -> torch.Tensor:
    """CDF of the off-diagonal |AIP| over all pairs a < b on `bins` equal bins of [0, 1] (exact to 1/bins)."""
    counts = torch.zeros(bins, dtype=torch.float64)
    n = u.shape[0]
    for i in range(0, n, block):
        g = (u[i : i + block] @ u.T).abs_()
        upper = torch.arange(n)[None, :] > torch.arange(i, i + g.shape[0])[:, None]
        vals = g[upper].clamp_max(1.0)
        counts += torch.bincount((vals * (bins - 1)).round().long(), minlength=bins).to(torch.float64)
    return torch.cumsum(counts, 0) / counts.sum()


def q_star(codes: Any, d: Any, s: Any = None, pairs: str = "co_active") -> float:
    """q* = sup{q : μ_q < 1/(2K_q − 1)} with K_q the q-quantile of the K_i (arXiv 2509.20784, stability q*).

    pairs ``co_active``: μ_q is the q-quantile of the per-sample μ_i; ``all``: of the |AIP| of all atom pairs
    (resolved to 2^-20). Quantiles are the lower empirical ones (inverted CDF), so q* is a multiple of 1/Ns: the
    largest share of samples, taken from the bottom of both distributions, that still satisfies the bound.
    """
    check_choice("pairs", pairs, PAIRS)
    if pairs == "co_active":
        mu, k = sample_coherence(codes, d, s)
        mu_sorted = torch.sort(mu).values
    else:
        u = unit_atoms(d, s)
        if u.shape[0] < 2:
            raise UserError(f"q* over all pairs needs at least two atoms; D has {u.shape[0]}")
        indptr, _ = support_csr(codes, u.shape[0])
        k = torch.from_numpy(np.diff(indptr))
        cdf = _pair_quantile(u)
        q = torch.arange(1, len(k) + 1, dtype=torch.float64) / len(k)
        mu_sorted = torch.searchsorted(cdf, q - 1e-12).clamp_max(len(cdf) - 1).to(torch.float64) / (len(cdf) - 1)
    ok = _unique(mu_sorted, torch.sort(k).values)
    # both sorted sequences grow with q, so the bound holds on a prefix; q* is that prefix's share
    bad = torch.nonzero(~ok).reshape(-1)
    return (int(bad[0]) if bad.numel() else len(k)) / len(k)


def r2(acts: Any, recon: Any, s: Any = None) -> float:
    """Faithfulness R² = 1 − Σ_i ||m_i − m̂_i||² / Σ_i ||m_i − m̄||² (arXiv 2509.20784), fp64; with S, in the
    whitened space (W m against W m̂). Not FVE: the residual is not centred, so a constant offset in m̂ costs."""
    a = as_matrix(acts, "acts [N, H]")
    b = as_matrix(recon, "recon [N, H]")
    check_same_items(a.shape[0], b.shape[0], "acts", "recon")
    if a.shape != b.shape:
        raise UserError(f"acts are {tuple(a.shape)} but recon is {tuple(b.shape)}; they must match")
    w = None if s is None else whitening(_metric(s, a.shape[1]))
    step = auto_chunk(a.shape[1])

    def rows(t: torch.Tensor, i: int) -> torch.Tensor:
        blk = t[i : i + step].to(torch.float64).cpu()
        return blk if w is None else blk @ w

    mean = sum(rows(a, i).sum(0) for i in range(0, a.shape[0], step)) / a.shape[0]
    res = tot = 0.0
    for i in range(0, a.shape[0], step):
        x = rows(a, i)
        res += float(((x - rows(b, i)) ** 2).sum())
        tot += float(((x - mean) ** 2).sum())
    if tot == 0.0:
        raise UserError("the activations have zero variance; R² is undefined")
    return 1.0 - res / tot


def pairwise_angles(vectors: Any, s: Any = None, *, max_pairs: int = 200_000, seed: int = 0) -> torch.Tensor:
    """Angles in degrees, arccos AIP(v_a, v_b), between rows of vectors [M, H] (activations, or Dᵀ for a
    dictionary): all pairs a < b when there are at most `max_pairs`, else `max_pairs` random pairs a ≠ b (seeded).
    Zero rows (no direction) are left out. float64."""
    v = as_matrix(vectors, "vectors [M, H]", dtype=torch.float64).cpu()
    u = unit_atoms(v.T, s)
    u = u[torch.linalg.vector_norm(u, dim=1) > 0]
    m = u.shape[0]
    if m < 2:
        raise UserError(f"angles need at least two non-zero vectors; got {m}")
    if m * (m - 1) // 2 <= max_pairs:
        a, b = torch.triu_indices(m, m, offset=1)
    else:
        g = torch.Generator().manual_seed(int(seed))
        a = torch.randint(0, m, (max_pairs,), generator=g)
        b = (a + torch.randint(1, m, (max_pairs,), generator=g)) % m  # never a itself
    cos = torch.empty(len(a), dtype=torch.float64)
    step = 1 << 20
    for i in range(0, len(a), step):
        cos[i : i + step] = (u[a[i : i + step]] * u[b[i : i + step]]).sum(1)
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


@dataclass(frozen=True)
class AngleHistogram:
    """Histograms of pairwise angles over the same pairs, Euclidean and under the AIP (degrees)."""

    edges: list[float]
    """The bins + 1 bin edges, from 0° to 180°."""
    euclidean: list[int]
    """Pairs per bin, Euclidean angles."""
    euclidean_mean: float
    euclidean_median: float
    euclidean_std: float
    n_pairs: int
    """Number of pairs behind each histogram."""
    aip: list[int]
    """Pairs per bin, angles under the atomic inner product."""
    aip_mean: float
    aip_median: float
    aip_std: float


def angle_histograms(
    vectors: Any, s: Any, *, bins: int = 90, max_pairs: int = 200_000, seed: int = 0
) -> AngleHistogram:
    """The representation-shift check (arXiv 2509.20784): histograms of the pairwise angles between rows of
    vectors [M, H], Euclidean and under the AIP of S, over the same pairs and `bins` equal bins of [0°, 180°]."""
    if s is None:
        raise UserError("angle_histograms compares Euclidean with AIP angles: give S (from aip_metric)")
    if not isinstance(bins, int) or bins < 1:
        raise UserError(f"bins must be a whole number >= 1; got {bins!r}")
    stats: dict[str, Any] = {}
    for name, metric in (("euclidean", None), ("aip", s)):
        ang = pairwise_angles(vectors, metric, max_pairs=max_pairs, seed=seed)
        stats[name] = torch.histc(ang, bins=bins, min=0.0, max=180.0).long().tolist()
        stats[f"{name}_mean"] = float(ang.mean())
        stats[f"{name}_median"] = float(ang.median())
        stats[f"{name}_std"] = float(ang.std(correction=0))
        stats["n_pairs"] = len(ang)
    return AngleHistogram(edges=torch.linspace(0.0, 180.0, bins + 1, dtype=torch.float64).tolist(), **stats)

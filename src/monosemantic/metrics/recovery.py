"""Recovery of known ground-truth features by an SAE (synthetic superposition, arXiv 2506.15963).

The decoder-side scores compare directions: MMCS (mean max |cos|, Sharkey et al. 2022, "Taking features out of
superposition with sparse autoencoders", interim report), the fraction of features recovered above a |cos|
threshold, the MCC of the optimal one-to-one matching (O'Neill et al., arXiv 2411.13117) and the uniqueness of the
latents' best matches (SynthSAEBench). Given the SAE's latents on data with known codes, L_GT (arXiv 2506.15963,
eq. for the ground-truth loss, latents matched to features by the same one-to-one matching), gt_per_latent (how
many features a latent answers to, alone, at unit magnitude), FVE, L0 and the dead fraction follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from monosemantic.errors import UserError
from monosemantic.metrics._common import as_matrix, check_choice, check_same_items
from monosemantic.metrics.reconstruction import dead_fraction, explained_variance, l0

TAUS = (0.9, 0.99)
ETA = 0.1


def abs_cosines(w_dec: Any, w_p: Any) -> torch.Tensor:
    """|cos| between decoder rows and ground-truth columns: float64 [F, n_features]. A zero row or column has
    cosine 0 with everything (an all-zero decoder row points nowhere)."""
    dec = as_matrix(w_dec, "W_dec [F, n_dims]", dtype=torch.float64).cpu()
    gt = as_matrix(w_p, "W_p [n_dims, n_features]", dtype=torch.float64).cpu()
    if dec.shape[1] != gt.shape[0]:
        raise UserError(
            f"W_dec is [F={dec.shape[0]}, {dec.shape[1]}] but W_p is [{gt.shape[0]}, n_features={gt.shape[1]}]; "
            "the decoder rows and the ground-truth columns must live in the same n_dims"
        )
    dn = dec / torch.linalg.vector_norm(dec, dim=1, keepdim=True).clamp_min(1e-30)
    gn = gt / torch.linalg.vector_norm(gt, dim=0, keepdim=True).clamp_min(1e-30)
    return (dn @ gn).abs().clamp_max(1.0)


def hungarian(cos: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(latent ids, feature ids) of the one-to-one matching with the largest total |cos|; min(F, n) pairs."""
    rows, cols = linear_sum_assignment(cos.numpy(), maximize=True)
    return rows.astype(np.int64), cols.astype(np.int64)


@dataclass(frozen=True)
class Matching:
    """The optimal one-to-one (Hungarian) matching of latents to features: ``latent[k]`` ↔ ``feature[k]``."""

    latent: list[int]
    feature: list[int]


@dataclass(frozen=True)
class DecoderRecovery:
    """Direction-only recovery scores of a decoder against the ground truth (see `decoder_recovery`)."""

    mmcs_gt: float
    """(1/n) Σ_i max_j |cos(W_p[:, i], W_dec[j])|: is every feature found?"""
    mmcs_sae: float
    """(1/F) Σ_j max_i |cos|: is every latent a feature? (penalises junk latents)"""
    frac_recovered: dict[float, float]
    """τ -> the fraction of features with max_j |cos| ≥ τ."""
    mcc: float
    """Mean |cos| over the min(F, n) pairs of the optimal one-to-one (Hungarian) matching."""
    uniqueness: float
    """Distinct best-matched features over the latents / F."""
    matching: Matching
    """The matched pairs, for L_GT and for inspection."""
    n_latents: int
    """F."""
    n_features: int
    """n."""


@dataclass(frozen=True)
class Recovery(DecoderRecovery):
    """Every recovery score of an SAE against synthetic ground truth (see `recovery`); a score whose inputs were not
    given is None."""

    l0: float | None = None
    dead_fraction: float | None = None
    l_gt: float | None = None
    """E_N ||x - P f||² of the codes against the matched latents (see `l_gt`)."""
    precision: float | None = None
    """Mean over matched pairs of P(feature active | latent fires)."""
    recall: float | None = None
    """Mean over matched pairs of P(latent fires | feature active)."""
    fve: float | None = None
    """Fraction of the variance of x_p explained by the reconstruction."""
    gt_per_latent: float | None = None
    """Mean number of ground-truth features a responsive latent answers to (see `gt_per_latent`)."""
    n_responsive: int | None = None


def decoder_recovery(w_dec: Any, w_p: Any, taus: tuple[float, ...] = TAUS) -> DecoderRecovery:
    """Direction-only recovery scores of W_dec [F, n_dims] against W_p [n_dims, n_features]: MMCS both ways, the
    fraction recovered per τ, the MCC of the Hungarian matching and the uniqueness of the best matches (see
    `DecoderRecovery`)."""
    cos = abs_cosines(w_dec, w_p)
    best_per_feature = cos.max(0).values
    rows, cols = hungarian(cos)
    return DecoderRecovery(
        mmcs_gt=float(best_per_feature.mean()),
        mmcs_sae=float(cos.max(1).values.mean()),
        frac_recovered={float(t): float((best_per_feature >= t).to(torch.float64).mean()) for t in taus},
        mcc=float(cos[rows, cols].mean()),
        uniqueness=int(torch.unique(cos.argmax(1)).numel()) / cos.shape[0],
        matching=Matching(latent=rows.tolist(), feature=cols.tolist()),
        n_latents=int(cos.shape[0]),
        n_features=int(cos.shape[1]),
    )


def l_gt(latents: Any, codes: Any, latent_ids: Any, feature_ids: Any, scale: Any = None) -> float:
    """E_N ||x - P f||²: codes x [N, n_features] against the latents f [N, F] moved to their matched features
    (P: latent_ids[k] -> feature_ids[k]; an unmatched feature is predicted as 0), each latent first multiplied by
    scale[j] when given ([F], e.g. its decoder norm). fp64."""
    f = as_matrix(latents, "latents [N, F]")
    x = as_matrix(codes, "codes [N, n_features]")
    check_same_items(f.shape[0], x.shape[0], "latents", "codes")
    lat = torch.as_tensor(np.asarray(latent_ids, dtype=np.int64))
    feat = torch.as_tensor(np.asarray(feature_ids, dtype=np.int64))
    mult = None if scale is None else torch.as_tensor(scale).to(torch.float64).cpu().reshape(-1)[lat]
    total = 0.0
    step = max(1, (1 << 22) // max(x.shape[1], 1))
    for i in range(0, x.shape[0], step):
        pred = torch.zeros(min(step, x.shape[0] - i), x.shape[1], dtype=torch.float64)
        pred[:, feat] = f[i : i + step][:, lat].to(torch.float64).cpu() * (1.0 if mult is None else mult)
        total += float(((x[i : i + step].to(torch.float64).cpu() - pred) ** 2).sum())
    return total / x.shape[0]


@dataclass(frozen=True)
class GTPerLatent:
    """How many ground-truth features each latent answers to (see `gt_per_latent`)."""

    gt_per_latent: float
    """Mean count over the responsive latents (max_i R[i, j] > 0); NaN when none is."""
    n_responsive: int
    counts: list[int]
    """Per latent; 0 for an unresponsive one."""


def gt_per_latent(responses: Any, eta: float = ETA) -> GTPerLatent:
    """How many ground-truth features each latent answers to, from R [n_features, F] (R[i, j] = f_j(W_p e_i), the
    latent's response to feature i alone at value 1): count of i with R[i, j] > η · max_i R[i, j]."""
    r = as_matrix(responses, "responses [n_features, F]", dtype=torch.float64).cpu()
    if not 0.0 <= eta < 1.0:
        raise UserError(f"eta must lie in [0, 1); got {eta}")
    peak = r.max(0).values
    counts = (r > eta * peak.clamp_min(0.0)).sum(0)
    responsive = peak > 0
    counts = torch.where(responsive, counts, torch.zeros_like(counts))
    n_resp = int(responsive.sum())
    mean = float(counts[responsive].to(torch.float64).mean()) if n_resp else float("nan")
    return GTPerLatent(gt_per_latent=mean, n_responsive=n_resp, counts=counts.tolist())


def _finite_mean(v: torch.Tensor) -> float:
    ok = torch.isfinite(v)
    return float(v[ok].mean()) if bool(ok.any()) else float("nan")


def recovery(
    w_dec: Any,
    w_p: Any,
    *,
    latents: Any = None,
    codes: Any = None,
    x: Any = None,
    x_hat: Any = None,
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    responses: Any = None,
    taus: tuple[float, ...] = TAUS,
    eta: float = ETA,
    l_gt_scale: str = "decoder_norm",
) -> Recovery:
    """All recovery scores of an SAE against synthetic ground truth (those of `decoder_recovery`, plus):

    - with ``latents`` f [N, F] and ``codes`` [N, n_features] of the same samples: ``l_gt`` (see `l_gt`, matched by
      the Hungarian pairs; with l_gt_scale ``decoder_norm`` each latent counts as f_j·||W_dec[j]||, its magnitude
      along its unit direction, which is what a unit-norm column of W_p carries; ``none`` uses f_j as in the
      paper's tied SAE, whose optimum has unit rows anyway), and ``precision`` / ``recall``: the mean over
      matched pairs of P(feature active | latent fires) and P(latent fires | feature active) (NaN entries, e.g. a
      latent that never fires, are skipped);
    - with ``latents``: ``l0`` and ``dead_fraction``; with ``x`` and ``x_hat`` [N, n_dims]: ``fve`` of x_p;
    - with ``encode`` (the SAE encoder, [M, n_dims] -> [M, F]) or precomputed ``responses`` [n_features, F]:
      ``gt_per_latent`` and ``n_responsive`` (see `gt_per_latent`; encode is called on W_pᵀ, one feature at 1).
    """
    dec = decoder_recovery(w_dec, w_p, taus)
    out: dict[str, Any] = {f.name: getattr(dec, f.name) for f in fields(dec)}
    n_lat = torch.as_tensor(w_dec).shape[0]
    if latents is not None:
        f = as_matrix(latents, "latents [N, F]")
        if f.shape[1] != n_lat:
            raise UserError(f"latents have {f.shape[1]} columns but W_dec has {n_lat} rows; the SAE width must match")
        out["l0"] = l0(f)
        out["dead_fraction"] = dead_fraction(f)
        if codes is not None:
            out.update(_code_scores(f, codes, w_dec, w_p, dec.matching, l_gt_scale))
    elif codes is not None:
        raise UserError("codes need the SAE latents of the same samples (latents=...) to score L_GT")
    if (x is None) != (x_hat is None):
        raise UserError("give both x and x_hat (the SAE reconstruction) for FVE, or neither")
    if x is not None:
        out["fve"] = explained_variance(x, x_hat)
    if encode is not None and responses is None:
        gt = torch.as_tensor(w_p)
        with torch.no_grad():
            responses = encode(gt.T.contiguous())
    if responses is not None:
        r = as_matrix(responses, "responses [n_features, F]")
        if r.shape[1] != n_lat:
            raise UserError(f"responses have {r.shape[1]} latents but W_dec has {n_lat} rows; the SAE width must match")
        g = gt_per_latent(r, eta)
        out["gt_per_latent"], out["n_responsive"] = g.gt_per_latent, g.n_responsive
    return Recovery(**out)


def _code_scores(f: torch.Tensor, codes: Any, w_dec: Any, w_p: Any, matching: Matching,
                 l_gt_scale: str) -> dict[str, float]:
    """L_GT, precision and recall of the matched latents against the true codes."""
    c = as_matrix(codes, "codes [N, n_features]")
    if c.shape[1] != torch.as_tensor(w_p).shape[1]:
        raise UserError(f"codes have {c.shape[1]} features but W_p has {torch.as_tensor(w_p).shape[1]}")
    lat, feat = matching.latent, matching.feature
    check_choice("l_gt_scale", l_gt_scale, ("decoder_norm", "none"))
    norms = torch.linalg.vector_norm(torch.as_tensor(w_dec).to(torch.float64).cpu(), dim=1)
    loss = l_gt(f, c, lat, feat, norms if l_gt_scale == "decoder_norm" else None)
    fires = f[:, lat] != 0
    active = c[:, feat] != 0
    both = (fires & active).sum(0).to(torch.float64)
    prec = both / fires.sum(0).to(torch.float64)
    rec = both / active.sum(0).to(torch.float64)
    return {"l_gt": loss, "precision": _finite_mean(prec), "recall": _finite_mean(rec)}

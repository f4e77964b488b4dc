"""The knowledge metrics as pure functions on tensors and arrays (Chen et al., "The Knowledge Microscope",
arXiv 2502.12483): ΔProb of an ablation (§3.2), the related-vs-unrelated test of one unit (Welch t-test and
Cohen's d, §4) and the scores of an edit (reliability, generalisation, locality, ΔPPL; §5)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def delta_prob(logp: Tensor, logp_ablated: Tensor) -> Tensor:
    """ΔProb = (P − P_ablated) / P per row, from log-probabilities (P of the first answer token, or of the whole
    answer as a product). Negative when the ablation makes the answer more likely."""
    logp, logp_ablated = logp.double(), logp_ablated.double()
    return (1.0 - torch.exp(logp_ablated - logp)).float()


def mean_se(values: Sequence[float] | np.ndarray | Tensor) -> tuple[float, float]:
    """Mean and its standard error (NaN for fewer than two values)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return float(x.mean()), se


def cohens_d(related: np.ndarray, unrelated: np.ndarray) -> float:
    """Cohen's d = (μ_rel − μ_unrel) / s_pooled, s_pooled² = ((n₁−1)s₁² + (n₂−1)s₂²) / (n₁ + n₂ − 2).
    0 when both groups are constant and equal; ±inf when they are constant and differ."""
    a, b = np.asarray(related, np.float64), np.asarray(unrelated, np.float64)
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        return math.nan
    pooled = ((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2)
    diff = a.mean() - b.mean()
    if pooled <= 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return float(diff / math.sqrt(pooled))


def welch_t(related: np.ndarray, unrelated: np.ndarray) -> tuple[float, float]:
    """Welch's two-sample t statistic and its two-sided p-value (unequal variances, Welch–Satterthwaite degrees
    of freedom). (0, 1) when both groups are constant and equal."""
    from scipy import stats

    a, b = np.asarray(related, np.float64), np.asarray(unrelated, np.float64)
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff = a.mean() - b.mean()
    if va + vb == 0:
        return (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return float(t), float(2 * stats.t.sf(abs(t), df))


def passes(related: np.ndarray, unrelated: np.ndarray, *, p_max: float = 1e-3, d_min: float = 0.8) -> bool:
    """The unit separates related from unrelated inputs: Welch p < p_max and Cohen's d > d_min (related higher)."""
    t, p = welch_t(related, unrelated)
    d = cohens_d(related, unrelated)
    return bool(p < p_max and d > d_min and t > 0)


def erased(top1: Tensor, answer_first: Tensor) -> Tensor:
    """[N] bool: the greedy next token is no longer the answer's first token."""
    return top1 != answer_first


def reliability(top1_edit: Tensor, answer_first: Tensor) -> float:
    """Share of the edit prompts whose answer is no longer produced (top-1 mismatch)."""
    return float(erased(top1_edit, answer_first).float().mean()) if len(top1_edit) else math.nan


def locality(top1_before: Tensor, top1_after: Tensor) -> float:
    """Share of unrelated prompts whose greedy next token the edit leaves unchanged."""
    return float((top1_before == top1_after).float().mean()) if len(top1_before) else math.nan


def perplexity(nll_sum: float, n_tokens: int) -> float:
    """exp(mean negative log-likelihood per token)."""
    return math.exp(nll_sum / max(1, n_tokens))


def delta_ppl(ppl_before: float, ppl_after: float) -> float:
    """Relative perplexity change on general text, (PPL_after − PPL_before) / PPL_before (lower is better)."""
    return (ppl_after - ppl_before) / ppl_before

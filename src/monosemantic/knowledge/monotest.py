"""The related-vs-unrelated test of localised units (Chen et al., "The Knowledge Microscope", arXiv 2502.12483, §4).

For each unit localised to a fact (its top-n features or neurons), the unit's activation on *related* prompts
(other facts of the same relation, or the same subject) is compared with its activation on *unrelated* prompts
(other relations, other subjects): Welch t-test (p < 0.001) and Cohen's d (> 0.8), and the share of units that
pass both. A unit's activation on a prompt is its maximum over the prompt's sites (subject tokens and last token);
for a neuron it is taken in the direction it fired on the fact itself (max, or −min for a neuron that fired
negative), so both kinds of units read "how much it fires as it did for the fact". Input sets with a controlled
share of related prompts (0 %, 25 %, ..., 100 %) show how the units' mean activation follows that share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from monosemantic.knowledge.metrics import cohens_d, welch_t
from monosemantic.sources.datasets.facts import Fact

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class SharePoint:
    """The localised units on input sets with a share ``share`` of related prompts."""

    share: float
    mean_rel_activation: float
    """Mean over units of the set's mean activation relative to the unit's activation on its own fact."""
    sd_rel_activation: float
    """Their standard deviation over units."""
    fire_rate: float
    """Mean share of the set's prompts a unit fires on (activation > 0)."""


@dataclass(frozen=True)
class ActivationHistogram:
    """Pooled histograms (shares of values per bin) of the units' activations relative to their own fact's."""

    edges: list[float]
    related: list[float]
    unrelated: list[float]


@dataclass
class UnitTest:
    """One localised unit's related-vs-unrelated test: Welch t, p and Cohen's d of its activations."""

    units: str
    """SAE id or "neurons"."""
    fact: int
    """Index of the fact the unit is localised to."""
    unit: int
    """Latent or neuron index."""
    rank: int
    """Its rank among the fact's units (0 = top)."""
    d: float
    """Cohen's d, related vs unrelated."""
    t: float
    """Welch's t."""
    p: float
    """Welch's two-sided p-value."""
    passed: bool
    """p < p_max, d > d_min and related higher."""
    own: float
    """The unit's activation on the fact's own prompt."""
    related_mean: float
    unrelated_mean: float


def unit_activations(acts_max: Tensor, acts_min: Tensor | None, unit: int, own_row: int) -> np.ndarray:
    """[N] one unit's activation on every prompt; neurons (``acts_min`` given) in the direction of the fact."""
    if acts_min is None:
        return acts_max[:, unit].double().numpy()
    up = float(acts_max[own_row, unit]) >= -float(acts_min[own_row, unit])
    return (acts_max[:, unit] if up else -acts_min[:, unit]).double().numpy()


def related_tests(units: str, acts_max: Tensor, acts_min: Tensor | None, top: Tensor, own_rows: Sequence[int],
                  related: Sequence[np.ndarray], unrelated: np.ndarray, *, p_max: float = 1e-3,
                  d_min: float = 0.8) -> list[UnitTest]:
    """Test the top units of each fact. ``acts_*`` [N_all, U] cover every prompt; ``top`` [n_facts, n] the units of
    each fact (-1 = none); ``own_rows[i]`` the fact's own prompt; ``related[i]`` the row indices related to fact i;
    ``unrelated`` the unrelated row indices."""
    out = []
    for i, row in enumerate(own_rows):
        for rank, u in enumerate(top[i].tolist()):
            if u < 0:
                continue
            a = unit_activations(acts_max, acts_min, u, row)
            rel, unrel = a[related[i]], a[unrelated]
            t, p = welch_t(rel, unrel)
            d = cohens_d(rel, unrel)
            ok = bool(p < p_max and d > d_min and t > 0)
            out.append(UnitTest(units, i, u, rank, d, t, p, ok, float(a[row]), float(rel.mean()),
                                float(unrel.mean())))
    return out


def share_curve(acts_max: Tensor, acts_min: Tensor | None, top: Tensor, own_rows: Sequence[int],
                related: Sequence[np.ndarray], unrelated: np.ndarray, *, set_size: int = 20, seed: int = 0,
                shares: Sequence[float] = SHARES) -> list[SharePoint]:
    """For each related share s: sets of ``set_size`` prompts, a share s of them related; per unit the set's mean
    activation relative to the unit's activation on its own fact, and the share of the set's prompts it fires on
    (activation > 0). Mean and standard deviation over units."""
    rng = np.random.default_rng(seed)
    out = []
    for s in shares:
        n_rel = round(s * set_size)
        rel_means, fire = [], []
        for i, row in enumerate(own_rows):
            if len(related[i]) == 0:
                continue
            for u in top[i].tolist():
                if u < 0:
                    continue
                a = unit_activations(acts_max, acts_min, u, row)
                own = a[row]
                pick = np.concatenate([rng.choice(related[i], n_rel, replace=len(related[i]) < n_rel),
                                       rng.choice(unrelated, set_size - n_rel, replace=len(unrelated) < set_size)])
                vals = a[pick.astype(int)]
                rel_means.append(vals.mean() / own if own > 0 else np.nan)
                fire.append(float((vals > 0).mean()))
        rm = np.asarray(rel_means, np.float64)
        out.append(SharePoint(s, float(np.nanmean(rm)) if rm.size else float("nan"),
                              float(np.nanstd(rm)) if rm.size else float("nan"),
                              float(np.mean(fire)) if fire else float("nan")))
    return out


def histograms(acts_max: Tensor, acts_min: Tensor | None, top: Tensor, own_rows: Sequence[int],
               related: Sequence[np.ndarray], unrelated: np.ndarray, bins: int = 24) -> ActivationHistogram:
    """Pooled histograms of the units' activations relative to their activation on their own fact, on related
    and unrelated prompts (clipped to [−0.5, 1.5])."""
    rel_vals, unrel_vals = [], []
    for i, row in enumerate(own_rows):
        for u in top[i].tolist():
            if u < 0:
                continue
            a = unit_activations(acts_max, acts_min, u, row)
            if a[row] <= 0:
                continue
            rel_vals.append(a[related[i]] / a[row])
            unrel_vals.append(a[unrelated] / a[row])
    edges = np.linspace(-0.5, 1.5, bins + 1)

    def hist(parts: list[np.ndarray]) -> list[float]:
        if not parts:
            return [0.0] * bins
        x = np.clip(np.concatenate(parts), -0.5, 1.5)
        h, _ = np.histogram(x, edges)
        return (h / max(1, h.sum())).tolist()

    return ActivationHistogram(edges.tolist(), hist(rel_vals), hist(unrel_vals))


def prompt_groups(row_facts: Sequence[int], facts: Sequence[Fact],
                  pool: Sequence[Fact]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per fact j, the prompts related and unrelated to it. ``row_facts[r]`` is the fact (an index into ``facts``)
    of prompt row r; ``pool`` the facts of extra unrelated prompts, which follow the rows (index ``len(rows) + u``).
    Related: other facts sharing exactly one of relation and subject with fact j; unrelated: facts sharing
    neither, and the pool's prompts of other subjects."""
    n_rows = len(row_facts)
    related, unrelated = [], []
    for j, f in enumerate(facts):
        related.append(np.array([r for r, k in enumerate(row_facts) if k != j and (
            (facts[k].relation == f.relation) != (facts[k].subject == f.subject))], dtype=int))
        unrelated.append(np.array(
            [r for r, k in enumerate(row_facts) if facts[k].relation != f.relation and facts[k].subject != f.subject]
            + [n_rows + u for u, g in enumerate(pool) if g.subject != f.subject], dtype=int))
    return related, unrelated

"""Does a score agree with people? The user-study check of the MS paper (Pach et al., arXiv 2504.02821).

Participants see two units (their top inputs) and say which is more coherent: ``R_user`` > 0 prefers x, < 0 prefers
y, 0 is "can't tell". A score agrees on a pair when ``sign(score_x − score_y) == sign(R_user)``; the agreement is
the share of agreeing pairs among those where both signs are defined, overall and binned by |Δscore| (pairs far
apart in score should be easier). A simulated participant whose choices follow the dataset's labels checks that
this harness measures what it says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError

BIN_WIDTH = 0.1


@dataclass(frozen=True)
class AgreementBin:
    """The pairs whose |Δscore| lies in [lo, hi)."""

    lo: float
    hi: float
    agreement: float
    n: int


@dataclass(frozen=True)
class Agreement:
    """How often a score sides with the participants' preferences."""

    overall: float
    """Share of agreeing pairs among the pairs with a verdict (NaN when there is none)."""
    n: int
    """Pairs with a verdict: both signs defined."""
    ties: int
    """Pairs left out: equal scores, "can't tell", or a missing score."""
    bins: list[AgreementBin]
    """The same per |Δscore| bin, smallest first (empty bins left out)."""


def agreement(score_x: Any, score_y: Any, r_user: Any, *, bin_width: float = BIN_WIDTH,
              lower_is_better: bool = False) -> Agreement:
    """Agreement of a score with the preferences ``r_user`` (all ``[P]``), overall and per |Δscore| bin of
    ``bin_width``. ``lower_is_better`` flips the score (e.g. entropy)."""
    x, y, r = (np.asarray(v, dtype=np.float64).ravel() for v in (score_x, score_y, r_user))
    if not len(x) == len(y) == len(r):
        raise UserError(f"score_x, score_y and r_user must have one value per pair; got {len(x)}, {len(y)}, {len(r)}")
    if not bin_width > 0:
        raise UserError(f"bin_width must be positive; got {bin_width}")
    delta = (y - x) if lower_is_better else (x - y)
    used = np.isfinite(delta) & np.isfinite(r) & (np.sign(delta) != 0) & (np.sign(r) != 0)
    hit = np.sign(delta) == np.sign(r)
    bins = []
    if used.any():
        which = np.floor(np.abs(delta[used]) / bin_width).astype(np.int64)
        for b in range(int(which.max()) + 1):
            in_bin = which == b
            if in_bin.any():
                bins.append(AgreementBin(lo=round(b * bin_width, 10), hi=round((b + 1) * bin_width, 10),
                                         agreement=float(hit[used][in_bin].mean()), n=int(in_bin.sum())))
    return Agreement(overall=float(hit[used].mean()) if used.any() else math.nan, n=int(used.sum()),
                     ties=int((~used).sum()), bins=bins)


def label_purity(top_labels: Any) -> torch.Tensor:
    """``[U]``: per unit, the share of its top items (``top_labels [U, n]``, -1 for a missing item) that carry the
    unit's most common label."""
    lab = torch.as_tensor(top_labels, dtype=torch.int64)
    if lab.ndim != 2:
        raise UserError(f"top_labels must be [units, items]; got shape {list(lab.shape)}")
    out = torch.full((len(lab),), math.nan, dtype=torch.float64)
    for u, row in enumerate(lab):
        row = row[row >= 0]
        if len(row):
            out[u] = torch.bincount(row).max().item() / len(row)
    return out


def simulated_preferences(purity_x: Any, purity_y: Any, *, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """``[P]`` answers of a participant who prefers the unit whose top items share one label more often: the sign of
    ``purity_x − purity_y`` plus Gaussian noise of std ``noise`` (0 where that is exactly 0)."""
    px, py = np.asarray(purity_x, dtype=np.float64), np.asarray(purity_y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return np.sign(px - py + noise * rng.standard_normal(len(px)))

"""Scoring names (Renzulli et al., "MedSAE", arXiv 2510.26411, Sec. 3): the judge's decisions on held-out
activating and non-activating inputs against the truth (the latent fires on the input), as precision, recall and
F1 per latent (scikit-learn semantics: 0 where undefined) and their means; and the name-shuffled control, where
every latent is judged with the name of another latent, the same way."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monosemantic.naming.base import Judge, Naming
from monosemantic.naming.select import LatentExamples
from monosemantic.naming.text import auc
from monosemantic.results import JSONDict, to_json


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 of binary decisions against the truth (0 where undefined)."""

    precision: float
    recall: float
    f1: float

    def rounded(self, digits: int = 4) -> PRF:
        return PRF(round(self.precision, digits), round(self.recall, digits), round(self.f1, digits))


def precision_recall_f1(pred: Sequence[int], truth: Sequence[int]) -> PRF:
    """Precision, recall and F1 of binary predictions against the truth (0 where undefined)."""
    tp = sum(1 for p, y in zip(pred, truth, strict=True) if p and y)
    fp = sum(1 for p, y in zip(pred, truth, strict=True) if p and not y)
    fn = sum(1 for p, y in zip(pred, truth, strict=True) if not p and y)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision, recall, f1)


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point (every latent gets another latent's name); identity for n < 2."""
    if n < 2:
        return list(range(n))
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return [int(i) for i in perm]


@dataclass(frozen=True)
class Verdict:
    """One judge's verdicts on one named latent's held-out examples, scored against the truth."""

    precision: float
    recall: float
    f1: float
    auc: float | None
    """Of the judge's raw scores (None for an unparsed name, or without both classes)."""
    threshold: float | None
    """The cut-off used (None when nothing can match: an unparsed name, or no cut-off beats chance)."""
    n_judged: int
    natural: PRF | None = None
    """P, R and F1 at a calibrated judge's own cut-off (its P(Yes) = P(No)), where it has one."""

    def to_json(self) -> JSONDict:
        out = to_json(self)
        if self.natural is None:
            del out["natural"]
        return out


def judge_one(judge: Judge, naming: Naming, ex: LatentExamples) -> Verdict:
    """One judge's verdicts on one named latent's held-out examples: P, R, F1 and AUC."""
    pred, scores, threshold = judge.classify(naming.concept, naming.description, ex.judged,
                                             (ex.calib, ex.calib_truth))
    prf = precision_recall_f1(pred, ex.truth).rounded()
    a = auc(scores, ex.truth) if naming.concept else None
    natural = None
    if judge.natural_threshold is not None and naming.concept:
        natural = precision_recall_f1([int(v > judge.natural_threshold) for v in scores], ex.truth).rounded()
    return Verdict(prf.precision, prf.recall, prf.f1, None if a is None else round(a, 4),
                   round(threshold, 5) if math.isfinite(threshold) else None, len(pred), natural)


@dataclass(frozen=True)
class Judgement:
    """One judge on one latent: the verdict on the latent's own name and, for the name-shuffled control, on the
    name of another latent."""

    verdict: Verdict
    control: Verdict | None = None
    control_name: str = ""
    """The other latent's name."""
    control_from: str = ""
    """Which latent it comes from (``set#latent``)."""

    def to_json(self) -> JSONDict:
        out = self.verdict.to_json()
        if self.control is not None:
            out["control"] = {**self.control.to_json(), "name": self.control_name, "name_from": self.control_from}
        return out


@dataclass(frozen=True)
class Means:
    """Means of P, R, F1 and AUC over judged latents (None where no latent has a value), with their count."""

    n: int
    precision: float | None
    recall: float | None
    f1: float | None
    auc: float | None


def mean_of(rows: Sequence[Verdict]) -> Means:
    """Means of P, R, F1 and AUC over judged latents, with their count."""
    def mean(key: str) -> float | None:
        vals = [getattr(r, key) for r in rows if getattr(r, key) is not None]
        return round(float(np.mean(vals)), 4) if vals else None

    return Means(len(rows), mean("precision"), mean("recall"), mean("f1"), mean("auc"))

"""Scoring names (Renzulli et al., "MedSAE", arXiv 2510.26411, Sec. 3): the judge's decisions on held-out
activating and non-activating inputs against the truth (the latent fires on the input), as precision, recall and
F1 per latent (scikit-learn semantics: 0 where undefined) and their means; and the name-shuffled control, where
every latent is judged with the name of another latent, the same way."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from monosemantic.naming.base import Judge, Naming
from monosemantic.naming.select import LatentExamples
from monosemantic.naming.text import auc


def precision_recall_f1(pred: Sequence[int], truth: Sequence[int]) -> dict[str, float]:
    """Precision, recall and F1 of binary predictions against the truth (0 where undefined)."""
    tp = sum(1 for p, y in zip(pred, truth, strict=True) if p and y)
    fp = sum(1 for p, y in zip(pred, truth, strict=True) if p and not y)
    fn = sum(1 for p, y in zip(pred, truth, strict=True) if not p and y)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point (every latent gets another latent's name); identity for n < 2."""
    if n < 2:
        return list(range(n))
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return [int(i) for i in perm]


def judge_one(judge: Judge, naming: Naming, ex: LatentExamples) -> dict[str, Any]:
    """One judge's verdicts on one named latent's held-out examples: P, R, F1 and AUC."""
    pred, scores, threshold = judge.classify(naming.concept, naming.description, ex.judged,
                                             (ex.calib, ex.calib_truth))
    out: dict[str, Any] = {k: round(v, 4) for k, v in precision_recall_f1(pred, ex.truth).items()}
    a = auc(scores, ex.truth) if naming.concept else None
    out["auc"] = None if a is None else round(a, 4)
    out["threshold"] = round(threshold, 5) if math.isfinite(threshold) else None
    out["n_judged"] = len(pred)
    if judge.natural_threshold is not None and naming.concept:
        natural = [int(v > judge.natural_threshold) for v in scores]
        out["natural"] = {k: round(v, 4) for k, v in precision_recall_f1(natural, ex.truth).items()}
    return out


def mean_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of P, R, F1 and AUC over judged latents, with their count."""
    out: dict[str, Any] = {"n": len(rows)}
    for key in ("precision", "recall", "f1", "auc"):
        vals = [r[key] for r in rows if r.get(key) is not None]
        out[key] = round(float(np.mean(vals)), 4) if vals else None
    return out

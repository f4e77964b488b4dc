"""Automated naming of latents and its evaluation (Renzulli et al., "MedSAE", arXiv 2510.26411, Sec. 3).

A stage after metrics and steer: it imports only stages to its left. ``Namer`` and ``Judge`` are the two
interfaces; offline defaults back them with the bundled SmolLM2-Instruct and MiniLM, and dataset labels give a
baseline. ``monosemantic.naming.select`` chooses the latents and the inputs each role sees,
``monosemantic.naming.evaluate`` scores the judges' verdicts. The command ``monosemantic name`` runs them on a
score folder (``monosemantic.experiments.name``).
"""

from monosemantic.naming.base import Example, Judge, Namer, Naming, RoleInfo, fit_threshold, parse_naming
from monosemantic.naming.cache import AnswerCache
from monosemantic.naming.evaluate import (
    PRF,
    Judgement,
    Means,
    Verdict,
    derangement,
    judge_one,
    mean_of,
    precision_recall_f1,
)

__all__ = ["PRF", "AnswerCache", "Example", "Judge", "Judgement", "Means", "Namer", "Naming", "RoleInfo", "Verdict",
           "derangement", "fit_threshold", "judge_one", "mean_of", "parse_naming", "precision_recall_f1"]

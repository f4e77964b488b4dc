"""Automated naming of latents and its evaluation (Renzulli et al., "MedSAE", arXiv 2510.26411, Sec. 3).

A stage after metrics and steer: it reads a score folder, the store and the SAEs, and imports only stages to its
left. ``Namer`` and ``Judge`` are the two interfaces; offline defaults back them with the bundled SmolLM2-Instruct
and MiniLM, and dataset labels give a baseline.
"""

from monosemantic.naming.base import Example, Judge, Namer, Naming, fit_threshold, parse_naming
from monosemantic.naming.cache import AnswerCache
from monosemantic.naming.evaluate import derangement, precision_recall_f1
from monosemantic.naming.run import NAMES_NAME, NameConfig, name_latents

__all__ = ["NAMES_NAME", "AnswerCache", "Example", "Judge", "NameConfig", "Namer", "Naming", "derangement",
           "fit_threshold", "name_latents", "parse_naming", "precision_recall_f1"]

"""knowledge stage: SAE features vs MLP neurons as units of factual knowledge, and FeatureEdit (Chen et al., "The
Knowledge Microscope", arXiv 2502.12483).

``run_knowledge(KnowledgeConfig(...))`` filters the facts a causal LM knows, localises each in SAE features and
MLP neurons, ablates the top units (ΔProb, with random controls), tests them on related vs unrelated facts, and
erases facts by editing the MLP output matrix through features (``feature_edit``) or neurons (``neuron_edit``),
as ``WeightPatch`` objects that apply, revert exactly and save. The metrics are pure functions in
``monosemantic.knowledge.metrics``.
"""

from __future__ import annotations

from monosemantic.knowledge.edit import WeightPatch, feature_edit, neuron_edit
from monosemantic.knowledge.run import KnowledgeConfig, run_knowledge

__all__ = ["KnowledgeConfig", "WeightPatch", "feature_edit", "neuron_edit", "run_knowledge"]

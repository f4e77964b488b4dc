"""knowledge stage: SAE features vs MLP neurons as units of factual knowledge, and FeatureEdit (Chen et al., "The
Knowledge Microscope", arXiv 2502.12483).

The science as functions on a causal LM and its SAEs: ``profile`` localises each fact prompt's units (SAE features
by activation, MLP neurons by activation × gradient), ``unit_choices`` and ``ablated_logprobs`` ablate the top units
against random controls, ``related_tests`` tests the units on related vs unrelated facts, and ``feature_edit`` /
``neuron_edit`` erase facts by editing the MLP output matrix through features or neurons, as ``WeightPatch``
objects that apply, revert exactly and save; ``score_edit`` measures one. The metrics are pure functions in
``monosemantic.knowledge.metrics``. The command ``monosemantic knowledge`` runs them all
(``monosemantic.experiments.knowledge``).
"""

from __future__ import annotations

from monosemantic.knowledge.ablate import Condition, ablated_logprobs, unit_choices
from monosemantic.knowledge.edit import EditScore, WeightPatch, feature_edit, neuron_edit, score_edit
from monosemantic.knowledge.localise import Profile, profile, top_units
from monosemantic.knowledge.monotest import UnitTest, related_tests
from monosemantic.knowledge.sites import default_neuron_hook, fit_saes, site_kind

__all__ = ["Condition", "EditScore", "Profile", "UnitTest", "WeightPatch", "ablated_logprobs", "default_neuron_hook",
           "feature_edit", "fit_saes", "neuron_edit", "profile", "related_tests", "score_edit", "site_kind",
           "top_units", "unit_choices"]

"""compare stage: pair two SAEs' features by activation correlation and measure how much their geometry agrees.

Lan et al., "Sparse Autoencoders Reveal Universal Feature Spaces Across LLMs" (arXiv 2410.06981). Imports
sources, store, sae and metrics, never report; writes no files. The command ``monosemantic compare`` runs these
functions over a grid of unit sets (``monosemantic.experiments.compare``).
"""

from monosemantic.compare.concepts import CONCEPTS, load_concepts, members
from monosemantic.compare.filters import apply_filters, junk_filter, low_corr_filter, shared_token_filter
from monosemantic.compare.matching import DecoderMatch, assign, decoder_matching
from monosemantic.compare.pairing import (
    PAIRINGS,
    CrossMoments,
    Pairing,
    TopKActs,
    as_dense,
    as_topk,
    compact,
    is_sparse,
    one_to_one,
    pair_features,
)
from monosemantic.compare.similarity import (
    linear_cka,
    permutation_test,
    procrustes_residual,
    random_subset_baseline,
    rsa,
    svcca,
)
from monosemantic.compare.tops import TopTexts, TopUnits

__all__ = [
    "CONCEPTS",
    "PAIRINGS",
    "CrossMoments",
    "DecoderMatch",
    "Pairing",
    "TopKActs",
    "TopTexts",
    "TopUnits",
    "apply_filters",
    "as_dense",
    "as_topk",
    "assign",
    "compact",
    "decoder_matching",
    "is_sparse",
    "junk_filter",
    "linear_cka",
    "load_concepts",
    "low_corr_filter",
    "members",
    "one_to_one",
    "pair_features",
    "permutation_test",
    "procrustes_residual",
    "random_subset_baseline",
    "rsa",
    "shared_token_filter",
    "svcca",
]

"""metrics stage: pure functions on tensors (items x units activations, labels, embeddings).

- MonoSemanticity score (spec B.2-B.3): `monosemanticity_score`, `monosemanticity_score_chunks`, `summarize`
- FMS (spec C.2-C.3): `fms`, `fms_split`, `FMSResult`
- MedSAE label metrics (spec D.2-D.5): `label_correlation`, `correlation_entropy`, `best_unit_per_class`,
  `precision_recall_f1`
- Top-activating items and Jaccard uniqueness (spec B.7): `top_activating`, `jaccard_uniqueness`
- Reconstruction (spec §0.2): `mse`, `fvu`, `explained_variance`, `cosine_similarity`, `l0`, `dead_fraction`,
  `dense_fraction`, `firing_frequency`, `ce_recovered`

Item-level pooling of token rows is `monosemantic.store.pool_by_item`; these functions take item-level tensors.
"""

from monosemantic.metrics._common import summarize
from monosemantic.metrics.fms import FMSResult, fms, fms_split
from monosemantic.metrics.labels import (
    best_unit_per_class,
    correlation_entropy,
    label_correlation,
    precision_recall_f1,
)
from monosemantic.metrics.monosemanticity import monosemanticity_score, monosemanticity_score_chunks
from monosemantic.metrics.reconstruction import (
    DENSE_THRESHOLD,
    ce_recovered,
    cosine_similarity,
    dead_fraction,
    dense_fraction,
    explained_variance,
    firing_frequency,
    fvu,
    l0,
    mse,
)
from monosemantic.metrics.uniqueness import JaccardResult, jaccard_uniqueness, top_activating

__all__ = [
    "DENSE_THRESHOLD",
    "FMSResult",
    "JaccardResult",
    "best_unit_per_class",
    "ce_recovered",
    "correlation_entropy",
    "cosine_similarity",
    "dead_fraction",
    "dense_fraction",
    "explained_variance",
    "firing_frequency",
    "fms",
    "fms_split",
    "fvu",
    "jaccard_uniqueness",
    "l0",
    "label_correlation",
    "monosemanticity_score",
    "monosemanticity_score_chunks",
    "mse",
    "precision_recall_f1",
    "summarize",
    "top_activating",
]

"""metrics stage: pure functions on tensors (items x units activations, labels, embeddings).

- MonoSemanticity score (Pach et al., arXiv 2504.02821): `monosemanticity_score`, `monosemanticity_score_chunks`,
  `summarize` (-> `ScoreSummary`)
- FMS (Härle et al., arXiv 2506.19382): `fms`, `fms_split`, `FMSResult`
- MedSAE label metrics (Renzulli et al., arXiv 2510.26411): `label_correlation`, `correlation_entropy`,
  `best_unit_per_class` (-> `BestUnits`), `precision_recall_f1` (-> `PrecisionRecall`)
- Top-activating items and Jaccard uniqueness (arXiv 2504.02821): `top_activating`, `jaccard_uniqueness`
- Atoms (arXiv 2509.20784): `aip_metric`, `whiten`, `aip`, `coherence`, `sample_coherence`, `unique_fraction`,
  `q_star`, `r2`, `pairwise_angles`, `angle_histograms`, `SingularMomentWarning`
- Recovery of synthetic ground truth (arXiv 2506.15963): `recovery` (-> `Recovery`), `decoder_recovery`
  (-> `DecoderRecovery`), `gt_per_latent` (-> `GTPerLatent`), `l_gt`
- Reconstruction (FVU, L0 and dead latents as Gao et al., arXiv 2406.04093, report them): `mse`, `fvu`,
  `explained_variance`, `cosine_similarity`, `l0`, `dead_fraction`,
  `dense_fraction`, `firing_frequency`, `ce_recovered`

Item-level pooling of token rows is `monosemantic.store.pool_by_item`; these functions take item-level tensors.
The user-study agreement is in `monosemantic.metrics.agreement`, the label-hierarchy depth of Matryoshka groups and
the rank-normalised comparison of SAEs in `monosemantic.metrics.hierarchy`. Nothing here reads or writes result
files: `monosemantic score` (``monosemantic.experiments.score``) does that.
"""

from monosemantic.metrics._common import ScoreSummary, summarize
from monosemantic.metrics.atoms import (
    SingularMomentWarning,
    aip,
    aip_metric,
    angle_histograms,
    coherence,
    pairwise_angles,
    q_star,
    r2,
    sample_coherence,
    unique_fraction,
    whiten,
)
from monosemantic.metrics.fms import FMSResult, fms, fms_split
from monosemantic.metrics.labels import (
    BestUnits,
    PrecisionRecall,
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
from monosemantic.metrics.recovery import (
    DecoderRecovery,
    GTPerLatent,
    Matching,
    Recovery,
    decoder_recovery,
    gt_per_latent,
    l_gt,
    recovery,
)
from monosemantic.metrics.uniqueness import JaccardResult, jaccard_uniqueness, top_activating

__all__ = [
    "DENSE_THRESHOLD",
    "BestUnits",
    "DecoderRecovery",
    "FMSResult",
    "GTPerLatent",
    "JaccardResult",
    "Matching",
    "PrecisionRecall",
    "Recovery",
    "ScoreSummary",
    "SingularMomentWarning",
    "aip",
    "aip_metric",
    "angle_histograms",
    "best_unit_per_class",
    "ce_recovered",
    "coherence",
    "correlation_entropy",
    "cosine_similarity",
    "dead_fraction",
    "decoder_recovery",
    "dense_fraction",
    "explained_variance",
    "firing_frequency",
    "fms",
    "fms_split",
    "fvu",
    "gt_per_latent",
    "jaccard_uniqueness",
    "l0",
    "l_gt",
    "label_correlation",
    "monosemanticity_score",
    "monosemanticity_score_chunks",
    "mse",
    "pairwise_angles",
    "precision_recall_f1",
    "q_star",
    "r2",
    "recovery",
    "sample_coherence",
    "summarize",
    "top_activating",
    "unique_fraction",
    "whiten",
]

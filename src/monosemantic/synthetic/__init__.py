"""Synthetic data with known ground truth: sparse features in superposition (arXiv 2506.15963, §3 and §6.1).

A source stage: it imports only ``monosemantic.errors`` and ``monosemantic.store``. Recovery of the ground truth
by an SAE is scored by ``monosemantic.metrics.recovery`` (a metric, to the right of the SAE stage).

- `make_superposition(n_features, n_dims, sparsity, n_samples, geometry, magnitude, seed)` -> (X, codes, W_p)
- `write_superposition` / `superposition_store`: the same as an activation store; `load_ground_truth` reads W_p
  and the codes back.
"""

from monosemantic.synthetic.generator import GEOMETRIES, MAGNITUDES, make_superposition
from monosemantic.synthetic.io import GROUND_TRUTH, load_ground_truth, superposition_store, write_superposition

__all__ = [
    "GEOMETRIES",
    "GROUND_TRUTH",
    "MAGNITUDES",
    "load_ground_truth",
    "make_superposition",
    "superposition_store",
    "write_superposition",
]

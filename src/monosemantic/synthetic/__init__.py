"""Synthetic data with known ground truth: sparse features in superposition, the generative model and synthetic
experiments of "On the Theoretical Understanding of Identifiable Sparse Autoencoders" (arXiv 2506.15963).

Its generator and store writer import only ``monosemantic.errors`` and ``monosemantic.store``. Recovery of the
ground truth by an SAE is scored by ``monosemantic.metrics.recovery`` (a metric, needing only tensors); it is
re-exported here as ``recovery``, where the identifiability benchmark's users look for the scorer.

- `make_superposition(n_features, n_dims, sparsity, n_samples, geometry, magnitude, seed)` -> (X, codes, W_p)
- `write_superposition` / `superposition_store`: the same as an activation store; `load_ground_truth` reads W_p
  and the codes back (a `GroundTruth`).
"""

from monosemantic.metrics.recovery import recovery
from monosemantic.synthetic.generator import GEOMETRIES, MAGNITUDES, make_superposition
from monosemantic.synthetic.io import (
    GROUND_TRUTH,
    GroundTruth,
    load_ground_truth,
    superposition_store,
    write_superposition,
)

__all__ = [
    "GEOMETRIES",
    "GROUND_TRUTH",
    "MAGNITUDES",
    "GroundTruth",
    "load_ground_truth",
    "make_superposition",
    "recovery",
    "superposition_store",
    "write_superposition",
]

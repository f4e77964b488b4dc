"""Synthetic data with known ground truth: sparse features in superposition, the generative model and synthetic
experiments of "On the Theoretical Understanding of Identifiable Sparse Autoencoders" (arXiv 2506.15963).

A source stage: it imports only ``monosemantic.errors`` and ``monosemantic.store``. Recovery of the ground truth
by an SAE is scored by ``monosemantic.metrics.recovery`` (a metric, to the right of the SAE stage).

- `make_superposition(n_features, n_dims, sparsity, n_samples, geometry, magnitude, seed)` -> (X, codes, W_p)
- `write_superposition` / `superposition_store`: the same as an activation store; `load_ground_truth` reads W_p
  and the codes back.
"""

from monosemantic.synthetic.generator import GEOMETRIES, MAGNITUDES, make_superposition
from monosemantic.synthetic.io import GROUND_TRUTH, load_ground_truth, superposition_store, write_superposition


def __getattr__(name: str) -> object:
    # `monosemantic.synthetic.recovery` is where the identifiability benchmark's users look for the scorer; it lives
    # in the metrics stage (it needs no SAE code, only tensors), so it is handed out lazily and never imported here
    if name == "recovery":
        from monosemantic.metrics.recovery import recovery

        return recovery
    raise AttributeError(f"module 'monosemantic.synthetic' has no attribute {name!r}")


__all__ = [
    "GEOMETRIES",
    "GROUND_TRUTH",
    "MAGNITUDES",
    "load_ground_truth",
    "make_superposition",
    "superposition_store",
    "write_superposition",
]

"""sae stage: sparse autoencoders (architectures, training, files).

``from monosemantic.sae import SAE, train, TrainConfig``: ``SAE.load(path)`` reads this project's, SAELens,
sparsify and dictionary_learning folders; ``train(config)`` trains one SAE or a sweep from one pass over a store.
"""

from __future__ import annotations

from typing import Any

# The subpackage first: importing it later would rebind `monosemantic.sae.architectures` from the function below
# to the package (the import system sets a parent's attribute when a subpackage first loads).
import monosemantic.sae.architectures  # noqa: F401
from monosemantic.sae.core import SAE, SAEConfig, StepContext, StepOutput, architectures, register
from monosemantic.sae.options import (
    ArchOptions,
    BatchTopKOptions,
    JumpReLUOptions,
    MatryoshkaOptions,
    ReLUOptions,
    TopKOptions,
)
from monosemantic.sae.trainconfig import TrainConfig, parse_count, train_config

__all__ = [
    "SAE", "ArchOptions", "BatchTopKOptions", "JumpReLUOptions", "MatryoshkaOptions", "ReLUOptions", "SAEConfig",
    "StepContext", "StepOutput", "TopKOptions", "TrainConfig", "architectures", "parse_count", "register", "train",
    "train_config",
]


def train(config: TrainConfig, store: Any = None, **kwargs: Any) -> Any:
    """Train the SAEs of ``config``; returns their folders (see ``monosemantic.sae.trainer.train``)."""
    from monosemantic.sae.trainer import train as _train

    return _train(config, store, **kwargs)

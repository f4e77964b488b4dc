"""sae stage: sparse autoencoders (architectures, training, files).

``from monosemantic.sae import SAE, train, TrainConfig``: ``SAE.load(path)`` reads this project's, SAELens,
sparsify and dictionary_learning folders; ``train(config)`` trains one SAE or a sweep from one pass over a store.
"""

from __future__ import annotations

from monosemantic.sae.architectures.batchtopk import BatchTopKOptions
from monosemantic.sae.architectures.gsae import GSAEOptions
from monosemantic.sae.architectures.jumprelu import JumpReLUOptions
from monosemantic.sae.architectures.matryoshka import MatryoshkaOptions
from monosemantic.sae.architectures.relu import ReLUOptions
from monosemantic.sae.architectures.tied import TiedOptions
from monosemantic.sae.architectures.topk import TopKOptions
from monosemantic.sae.core import SAE
from monosemantic.sae.registry import get_architecture, register, registered_architectures
from monosemantic.sae.trainconfig import TrainConfig, parse_count, train_config
from monosemantic.sae.trainer import train
from monosemantic.sae.types import ArchOptions, SAEConfig, StepContext, StepOutput

__all__ = [
    "SAE", "ArchOptions", "BatchTopKOptions", "GSAEOptions", "JumpReLUOptions", "MatryoshkaOptions", "ReLUOptions",
    "SAEConfig", "StepContext", "StepOutput", "TiedOptions", "TopKOptions", "TrainConfig", "get_architecture",
    "parse_count", "register", "registered_architectures", "train", "train_config",
]

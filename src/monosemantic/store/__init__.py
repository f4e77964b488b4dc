"""Store: activations on disk (sharded safetensors + a JSON manifest), read through memory maps."""

from monosemantic.store.manifest import Manifest, ShardInfo
from monosemantic.store.pool import pool_by_item
from monosemantic.store.reader import HOLDOUT, ActivationStore, nonfinite
from monosemantic.store.writer import StoreWriter, write_store

__all__ = ["HOLDOUT", "ActivationStore", "Manifest", "ShardInfo", "StoreWriter", "nonfinite", "pool_by_item",
           "write_store"]

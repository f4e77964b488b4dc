"""Sources: models (bundled, Hugging Face) and datasets (bundled, user files), plus hook points."""

from monosemantic.sources.base import Batch, Model
from monosemantic.sources.datasets import DATASETS, Dataset, image_ref, load_dataset, load_image
from monosemantic.sources.hooks import HookInfo, capture, list_hooks, resolve_hook, run_captured
from monosemantic.sources.models import MODELS, load_model, load_model_for

__all__ = [
    "DATASETS",
    "MODELS",
    "Batch",
    "Dataset",
    "HookInfo",
    "Model",
    "capture",
    "image_ref",
    "list_hooks",
    "load_dataset",
    "load_image",
    "load_model",
    "load_model_for",
    "resolve_hook",
    "run_captured",
]

"""One registry of named models and datasets; anything else is a Hugging Face id or a local path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from monosemantic.errors import unknown_choice
from monosemantic.sources import bundled
from monosemantic.sources.base import Model

MODELS: dict[str, tuple[str, Callable[..., Model]]] = {
    "minilm": ("all-MiniLM-L6-v2 sentence encoder, 6 layers, d=384 (text)", bundled.load_minilm),
    "smollm2": ("SmolLM2-135M-Instruct causal LM, 30 layers, d=576 (text)", bundled.load_smollm2),
    "mobilenet_v2": ("MobileNetV2, ImageNet weights (image)", bundled.load_mobilenet_v2),
    "efficientnet_lite0": ("EfficientNet-Lite0, ImageNet weights (image)", bundled.load_efficientnet_lite0),
}


def _looks_like_hf(spec: str) -> bool:
    return Path(spec).exists() or ("/" in spec and not spec.startswith("/"))


def load_model(spec: str, *, max_length: int = 128, image_size: int | None = None) -> Model:
    """Load a registered model by name, or any Hugging Face id (``org/name``) or local folder."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per weight file is noise next to our own progress
    if spec in MODELS:
        loader = MODELS[spec][1]
        if spec in ("minilm", "smollm2"):
            return loader(max_length=max_length)
        return loader(image_size=image_size or 224)
    if _looks_like_hf(spec):
        from monosemantic.sources.hf import load_hf

        return load_hf(spec, max_length=max_length, image_size=image_size)
    raise unknown_choice("model", spec, MODELS, "(or a Hugging Face id like org/name, or a local model folder)")

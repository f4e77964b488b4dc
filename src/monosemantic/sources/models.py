"""Models: the registry of named models that ship in packages; anything else is a Hugging Face id or a local path."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from monosemantic.errors import UserError, unknown_choice
from monosemantic.sources import bundled
from monosemantic.sources.base import Modality, Model
from monosemantic.sources.datasets import Dataset

SMALL_IMAGE = 64
"""Datasets of images this many pixels a side or fewer (MNIST's 28, digits' 8) are read at ``SMALL_IMAGE_SIZE``."""
SMALL_IMAGE_SIZE = 96
"""The side small images are enlarged to, instead of an image model's own input size (224 for the bundled CNNs)."""


@dataclass(frozen=True)
class ModelEntry:
    """A named model of the registry."""

    description: str
    """One line: architecture, layers, width and licence."""
    load: Callable[..., Model]
    size: Literal["max_length", "image_size"] | None
    """The size its loader takes: a text model truncates items to ``max_length`` tokens, an image model resizes
    images to ``image_size`` px; a static embedder takes neither."""

    def open(self, *, max_length: int, image_size: int | None) -> Model:
        """Load the model at the size that applies to it."""
        if self.size == "max_length":
            return self.load(max_length=max_length)
        if self.size == "image_size":
            return self.load(image_size=image_size or 224)
        return self.load()


MODELS: dict[str, ModelEntry] = {
    "minilm": ModelEntry("all-MiniLM-L6-v2 sentence encoder, 6 layers, d=384 (text)", bundled.load_minilm,
                         "max_length"),
    "smollm2": ModelEntry("SmolLM2-135M-Instruct causal LM, 30 layers, d=576 (text)", bundled.load_smollm2,
                          "max_length"),
    "gemma3-270m": ModelEntry("Gemma-3-270M causal LM, 18 layers, d=640 (text; Gemma Terms of Use)",
                              bundled.load_gemma3, "max_length"),
    "wordllama": ModelEntry("WordLlama static embeddings, 256-d (text encoder for MS only: no layers)",
                            bundled.load_wordllama, None),
    "mobilenet_v2": ModelEntry("MobileNetV2, ImageNet weights (image)", bundled.load_mobilenet_v2, "image_size"),
    "efficientnet_lite0": ModelEntry("EfficientNet-Lite0, ImageNet weights (image)", bundled.load_efficientnet_lite0,
                                     "image_size"),
}
"""Every bundled model by name."""


def _looks_like_hf(spec: str) -> bool:
    """A local folder, or anything the hub accepts as a repo id: ``org/name`` or a plain ``name`` like gpt2."""
    if Path(spec).exists():
        return True
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(spec)
    except HFValidationError:
        return False
    return True


def load_model(spec: str, *, max_length: int = 128, image_size: int | None = None) -> Model:
    """Load a registered model by name, or any Hugging Face id (``gpt2``, ``org/name``) or local folder."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per weight file is noise next to our own progress
    if spec in MODELS:
        return MODELS[spec].open(max_length=max_length, image_size=image_size)
    if _looks_like_hf(spec):
        from monosemantic.sources.hf import ModelNotLoadable, hf_home, load_hf

        try:
            return load_hf(spec, max_length=max_length, image_size=image_size)
        except ModelNotLoadable as exc:
            if "/" in spec or Path(spec).exists():
                raise
            # A bare name that loads nowhere is as likely a mistyped bundled name as a hub id.
            close = difflib.get_close_matches(spec, MODELS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise unknown_choice(
                "model",
                spec,
                MODELS,
                f"({hint}it is also no Hugging Face model that could be loaded: {exc.why}; a hub model must be "
                f"downloaded once with network access, or HF_HOME (now {hf_home()}) must point at a cache holding it)",
            ) from None
    if spec.startswith((".", "/", "~")) or os.sep in spec:
        raise UserError(
            f"model folder {spec!r} does not exist; give an existing folder, a bundled model name "
            f"({', '.join(sorted(MODELS))}) or a Hugging Face id like gpt2 or org/name"
        )
    raise unknown_choice("model", spec, MODELS, "(or a Hugging Face id like gpt2 or org/name, or a local model folder)")


def load_model_for(
    spec: str,
    dataset: Dataset,
    *,
    max_length: int = 128,
    image_size: int | None = None,
    mismatch: Callable[[Modality], str] | None = None,
) -> Model:
    """Load model ``spec`` to read ``dataset``; the one place that decides how data and model meet.

    Without an ``image_size``, images of ``SMALL_IMAGE`` px or less are read at ``SMALL_IMAGE_SIZE`` px, else at
    the model's own size. A model of another modality than the data is refused with ``mismatch(model modality)``
    (default: a message naming the model and ``dataset.name``).
    """
    small = dataset.native_size is not None and dataset.native_size <= SMALL_IMAGE
    if image_size is None and small:
        image_size = SMALL_IMAGE_SIZE
    model = load_model(spec, max_length=max_length, image_size=image_size)
    if model.modality != dataset.modality:
        reads = model.modality
        raise UserError(mismatch(reads) if mismatch is not None else
                        f"model {spec!r} reads {reads} but dataset {dataset.name!r} holds {dataset.modality}; "
                        f"pair a {reads} model with a {reads} dataset")
    return model

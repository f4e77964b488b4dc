"""One registry of named models and datasets; anything else is a Hugging Face id or a local path."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path

from monosemantic.errors import UserError, unknown_choice
from monosemantic.sources import bundled
from monosemantic.sources.base import Model

MODELS: dict[str, tuple[str, Callable[..., Model]]] = {
    "minilm": ("all-MiniLM-L6-v2 sentence encoder, 6 layers, d=384 (text)", bundled.load_minilm),
    "smollm2": ("SmolLM2-135M-Instruct causal LM, 30 layers, d=576 (text)", bundled.load_smollm2),
    "gemma3-270m": ("Gemma-3-270M causal LM, 18 layers, d=640 (text; Gemma Terms of Use)", bundled.load_gemma3),
    "wordllama": ("WordLlama static embeddings, 256-d (text encoder for MS only: no layers)", bundled.load_wordllama),
    "mobilenet_v2": ("MobileNetV2, ImageNet weights (image)", bundled.load_mobilenet_v2),
    "efficientnet_lite0": ("EfficientNet-Lite0, ImageNet weights (image)", bundled.load_efficientnet_lite0),
}


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
        loader = MODELS[spec][1]
        if spec in ("minilm", "smollm2", "gemma3-270m", "wordllama"):
            return loader(max_length=max_length)
        return loader(image_size=image_size or 224)
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

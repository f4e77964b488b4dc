"""Image-text models (LLaVA-style: a vision tower, a projector and a causal LM) from the user's Hugging Face cache.

Nothing is downloaded: a model that is not on disk fails with one line that says where it was looked for. The
vision-tower blocks are addressed by path suffix (``vision_tower.vision_model.encoder.layers.22`` in transformers
4.x is ``vision_tower.encoder.layers.22`` in 5.x; a unique suffix such as ``encoder.layers.22`` works in both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from monosemantic.errors import UserError
from monosemantic.sources.hf import hf_home

VISION_MARKERS = ("vision_tower", "vision_model", "visual")
"""Module-path parts that mark a vision tower inside an image-text model."""


@dataclass
class VisionLM:
    """An image-text generator: ``prepare(images, prompts)`` gives the inputs of ``module.generate``."""

    name: str
    module: nn.Module
    """The whole model (e.g. ``LlavaForConditionalGeneration``); hook paths are its ``named_modules()``."""
    prepare: Callable[[Sequence[np.ndarray], Sequence[str]], dict[str, torch.Tensor]]
    """One RGB uint8 image and one user prompt per row -> model inputs (input_ids, attention_mask, pixel_values)."""
    decode: Callable[[list[int]], str]
    """Token ids -> text, without special tokens."""
    eos_token_id: int | None = None
    pad_token_id: int | None = None


def vision_tower_paths(module: nn.Module) -> list[str]:
    """The module paths inside a vision tower (empty for a model without one)."""
    return [n for n, _ in module.named_modules() if any(m in n.split(".") for m in VISION_MARKERS)]


def check_vision_hook(module: nn.Module, path: str, model_name: str) -> None:
    """Refuse a hook outside the vision tower: the edit must reach the language model only through the image."""
    if not vision_tower_paths(module):
        raise no_vision_tower(model_name)
    if not any(m in path.split(".") for m in VISION_MARKERS):
        raise UserError(f"--vision-hook {path!r} is not inside the vision tower of {model_name}; give a block of the "
                        "tower such as vision_tower.vision_model.encoder.layers.22 (a unique suffix is enough)")


def no_vision_tower(model_name: str, what: str = "") -> UserError:
    tail = f" ({what})" if what else ""
    return UserError(f"model {model_name!r} has no vision tower{tail}; --vision-hook needs a LLaVA-style image-text "
                     "model from the Hugging Face cache or a bundled image model (mobilenet_v2, efficientnet_lite0)")


def load_vlm(model_id: str, *, dtype: torch.dtype = torch.float32) -> VisionLM:
    """A LLaVA-style model and its processor from the local Hugging Face cache (or a folder); never downloads."""
    import transformers as tf

    try:
        config = tf.AutoConfig.from_pretrained(model_id, local_files_only=True)
    except (OSError, ValueError) as exc:
        if Path(model_id).exists():
            raise UserError(f"cannot read a model config in {model_id} ({_first_line(exc)}); give a folder written "
                            "by save_pretrained") from None
        raise UserError(f"model {model_id!r} is not in the Hugging Face cache (HF_HOME={hf_home()}); image-text "
                        "models are never downloaded here: fetch it once with `hf download` on a machine with "
                        "network access, or point HF_HOME at a cache that holds it") from None
    if getattr(config, "vision_config", None) is None:
        raise no_vision_tower(model_id, f"its config is a {config.model_type!r} model without a vision_config")
    try:
        module = _image_text_class(config).from_pretrained(model_id, local_files_only=True, dtype=dtype).eval()
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load the weights of {model_id!r} from the cache ({_first_line(exc)})") from None
    if not vision_tower_paths(module):
        raise no_vision_tower(model_id)
    try:
        processor = tf.AutoProcessor.from_pretrained(model_id, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load the processor of {model_id!r} from the cache ({_first_line(exc)}); the model "
                        "folder needs its tokenizer and image-processor files") from None
    return processor_vlm(model_id, module, processor)


def _image_text_class(config: Any) -> Any:
    import transformers as tf

    for name in ("AutoModelForImageTextToText", "AutoModelForVision2Seq"):
        auto = getattr(tf, name, None)
        if auto is not None and type(config) in getattr(auto, "_model_mapping", {}):
            return auto
    return tf.LlavaForConditionalGeneration


def processor_vlm(name: str, module: nn.Module, processor: Any) -> VisionLM:
    """Wrap a model and its Hugging Face processor; prompts go through the chat template when there is one."""
    tok = getattr(processor, "tokenizer", processor)
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    image_token = getattr(processor, "image_token", None) or "<image>"

    def text_of(prompt: str) -> str:
        if getattr(processor, "chat_template", None):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            return str(processor.apply_chat_template(messages, add_generation_prompt=True))
        return f"USER: {image_token}\n{prompt} ASSISTANT:"

    def prepare(images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        from PIL import Image

        pil = [Image.fromarray(np.asarray(im)) for im in images]
        enc = processor(images=pil, text=[text_of(p) for p in prompts], return_tensors="pt", padding=True,
                        padding_side="left")
        return dict(enc)

    def decode(ids: list[int]) -> str:
        return str(tok.decode(ids, skip_special_tokens=True)).strip()

    return VisionLM(name, module, prepare, decode, tok.eos_token_id, tok.pad_token_id)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."

"""Hugging Face models: text encoders, causal LMs and the vision towers of CLIP, SigLIP, DINOv2 and ViT.

Loading honours ``HF_HUB_OFFLINE`` / ``local_files_only``; a model that is not on disk fails with a message that
names the model id and the variables to set, never with a long network traceback.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from monosemantic.errors import UserError
from monosemantic.sources.base import Batch, Model, file_sha256, mean_pool, to_pixels

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VISION_TYPES = {"clip", "clip_vision_model", "siglip", "siglip_vision_model", "dinov2", "vit"}


def text_model(
    name: str, module: nn.Module, tokenizer: Any, fingerprint: str, *, max_length: int, source: str
) -> Model:
    """Wrap a tokenizer and a text module (encoder or causal LM) as a ``Model``."""
    causal = bool(getattr(module.config, "is_decoder", False)) or any(
        a.endswith("ForCausalLM") for a in (getattr(module.config, "architectures", None) or [])
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    def prepare(texts: Sequence[str]) -> Batch:
        # right padding: a stored row's position is then its token's index in the text (per-token labels rely on it)
        enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt",
                        padding_side="right")
        return Batch(
            inputs={"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]},
            mask=enc["attention_mask"].bool(),
            token_ids=enc["input_ids"],
        )

    def forward(batch: Batch) -> Any:
        return module(**batch.inputs)

    def embed(batch: Batch) -> torch.Tensor:
        base: Any = module.base_model if causal else module  # a PreTrainedModel's base, an nn.Module to call
        hidden = base(**batch.inputs).last_hidden_state
        return torch.nn.functional.normalize(mean_pool(hidden, batch.mask), dim=-1)

    return Model(
        name=name,
        modality="text",
        module=module,
        prepare=prepare,
        forward=forward,
        embed=embed,
        has_cls=not causal and getattr(tokenizer, "cls_token", None) is not None,
        fingerprint=fingerprint,
        tokenizer=tokenizer,
        source=source,
    )


class ModelNotLoadable(UserError):
    """A Hugging Face id or folder that could not be loaded; ``why`` is the short reason, for callers that
    word the message differently (a bare name may be a mistyped bundled model rather than a hub id)."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


def hf_home() -> str:
    return os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")


def _missing(model_id: str, why: str) -> ModelNotLoadable:
    return ModelNotLoadable(
        f"cannot load Hugging Face model {model_id!r} ({why}). It is not bundled: download it once with network "
        f"access, or point HF_HOME (now {hf_home()}) at a cache that holds it (HF_HUB_OFFLINE=1 keeps loads "
        "local); bundled models: minilm, smollm2, gemma3-270m, mobilenet_v2, efficientnet_lite0",
        why,
    )


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub host answers a TCP connection within ``timeout`` seconds.

    Asked before any download, because huggingface_hub retries an unreachable host for half a minute with a
    warning per try. Behind a proxy a direct connection proves nothing, so the hub is then assumed reachable.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    if not url.hostname:
        return False
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((url.hostname, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # A thread, because a stuck DNS lookup ignores the socket timeout; a daemon, so it never delays exit.
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


def _local_only() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or os.environ.get(
        "TRANSFORMERS_OFFLINE", "0"
    ) not in ("0", "", "false")


def _fingerprint(model_id: str, module: nn.Module) -> str:
    path = Path(model_id)
    files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) if path.is_dir() else []
    if files:
        return file_sha256(*files)
    commit = getattr(module.config, "_commit_hash", None)
    return f"hf:{model_id}@{commit}" if commit else f"hf:{model_id}"


def load_hf(model_id: str, *, max_length: int = 128, image_size: int | None = None) -> Model:
    """Load any Hugging Face model id or local folder as a ``Model``: from the cache first, then the hub."""
    try:
        return _load(model_id, True, max_length, image_size)
    except (OSError, ValueError) as exc:
        if Path(model_id).exists():
            why = _first_line(exc)
            raise ModelNotLoadable(
                f"cannot load a model from the folder {model_id} ({why}); give a folder written by "
                "save_pretrained (config.json plus weights), a Hugging Face id or a bundled model name",
                why,
            ) from None
        if isinstance(exc, ValueError):  # the files were found but are not a model this code can build
            why = _first_line(exc)
            raise ModelNotLoadable(f"cannot load Hugging Face model {model_id!r} from the cache ({why})", why) from None
        if _local_only():
            raise _missing(model_id, "not in the cache, and HF_HUB_OFFLINE is set") from None
    if not _hub_reachable():
        from huggingface_hub import constants

        raise _missing(model_id, f"not in the cache, and {constants.ENDPOINT} cannot be reached") from None
    try:
        return _load(model_id, False, max_length, image_size)
    except (OSError, ValueError) as exc:
        raise _missing(model_id, f"not in the cache, and the hub refused it: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _load(model_id: str, local: bool, max_length: int, image_size: int | None) -> Model:
    import transformers as tf

    config = tf.AutoConfig.from_pretrained(model_id, local_files_only=local)
    if config.model_type in VISION_TYPES:
        return _vision(model_id, config, local, image_size)
    archs = getattr(config, "architectures", None) or []
    cls = tf.AutoModelForCausalLM if any(a.endswith("ForCausalLM") for a in archs) else tf.AutoModel
    module = cls.from_pretrained(model_id, local_files_only=local).eval()
    tokenizer = tf.AutoTokenizer.from_pretrained(model_id, local_files_only=local)
    return text_model(
        model_id, module, tokenizer, _fingerprint(model_id, module), max_length=max_length, source=model_id
    )


def _vision(model_id: str, config: Any, local: bool, image_size: int | None) -> Model:
    import transformers as tf

    mtype = config.model_type
    if mtype in ("clip", "clip_vision_model"):
        module = tf.CLIPVisionModelWithProjection.from_pretrained(model_id, local_files_only=local)
        vcfg, has_cls = module.config, True
    elif mtype in ("siglip", "siglip_vision_model"):
        module = tf.SiglipVisionModel.from_pretrained(model_id, local_files_only=local)
        vcfg, has_cls = module.config, False
    elif mtype == "dinov2":
        module = tf.Dinov2Model.from_pretrained(model_id, local_files_only=local)
        vcfg, has_cls = module.config, True
    else:
        module = tf.ViTModel.from_pretrained(model_id, local_files_only=local, add_pooling_layer=False)
        vcfg, has_cls = module.config, True
    module.eval()
    size = image_size or int(getattr(vcfg, "image_size", 224))
    mean, std = _normalisation(model_id, local, mtype)

    def prepare(images: Sequence[Any]) -> Batch:
        return Batch(inputs={"pixel_values": to_pixels(images, size, mean, std)})

    def forward(batch: Batch) -> Any:
        return module(**batch.inputs)

    def embed(batch: Batch) -> torch.Tensor:
        out = module(**batch.inputs)
        if hasattr(out, "image_embeds"):
            return out.image_embeds
        pooled = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else out.last_hidden_state[:, 0]

    return Model(
        name=model_id,
        modality="image",
        module=module,
        prepare=prepare,
        forward=forward,
        embed=embed,
        has_cls=has_cls,
        fingerprint=_fingerprint(model_id, module),
        image_size=size,
        source=model_id,
    )


def _normalisation(model_id: str, local: bool, mtype: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The model's own processor statistics when it ships one, else the family default."""
    import transformers as tf

    try:
        proc: Any = tf.AutoImageProcessor.from_pretrained(model_id, local_files_only=local)
        return tuple(proc.image_mean), tuple(proc.image_std)
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    if mtype.startswith("clip"):
        return CLIP_MEAN, CLIP_STD
    if mtype.startswith("siglip"):
        return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    return (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

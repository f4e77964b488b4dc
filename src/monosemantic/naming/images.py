"""A vision-language namer and judge for image latents, backed by any chat VLM in the user's Hugging Face cache
(``AutoModelForImageTextToText``: LLaVA, Qwen2-VL, Gemma-3, SmolVLM, ...). Nothing is downloaded: a model that
is not in the cache is a one-line error that says how to get it, or to use the label-statistics baseline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from monosemantic.errors import UserError
from monosemantic.naming.base import Example, Judge, Namer, Naming, RoleInfo, parse_naming
from monosemantic.naming.cache import AnswerCache, cache_key
from monosemantic.sources.hf import hf_home

VLM_NAMER_TASK = (
    "A feature of a neural network fires on each of these {n} images. What one visual concept do they share (an "
    "object, a part, a texture, a colour, a layout, an artefact)? Ignore outliers. Answer in exactly this format:\n"
    "Name: <2 to 6 words>\nDescription: <one sentence>"
)
VLM_JUDGE_TASK = "Concept: {concept}\nDescription: {description}\n\nDoes this image show the concept? Answer Yes or No."


def _digest(images: Sequence[Any]) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest()[:16] for im in images]


class VisionLM:
    """A chat VLM loaded from the Hugging Face cache on first use."""

    def __init__(self, model_id: str, max_images: int = 12) -> None:
        self.model_id, self.max_images = model_id, max_images

    @cached_property
    def loaded(self) -> tuple[Any, Any]:
        # transformers takes seconds to import; only a VLM namer or judge needs it, so every other run skips it
        import transformers as tf

        try:
            processor = tf.AutoProcessor.from_pretrained(self.model_id, local_files_only=True)
            model = tf.AutoModelForImageTextToText.from_pretrained(self.model_id, local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise UserError(
                f"vision-language model {self.model_id!r} cannot be loaded from the Hugging Face cache at {hf_home()} "
                f"({why}); download it once with network access (or set HF_HOME to a cache holding it), or use "
                "--namer labels for the offline label-statistics baseline"
            ) from None
        return processor, model

    def _inputs(self, images: Sequence[Any], text: str, prefill: str = "") -> Any:
        processor, _ = self.loaded
        pics = [Image.fromarray(np.asarray(im).astype(np.uint8)).convert("RGB") for im in images]
        msgs = [{"role": "user", "content": [*({"type": "image"} for _ in pics), {"type": "text", "text": text}]}]
        prompt = processor.apply_chat_template(msgs, add_generation_prompt=True) + prefill
        return processor(text=prompt, images=pics, return_tensors="pt")

    @torch.inference_mode()
    def complete(self, images: Sequence[Any], text: str, prefill: str, max_new_tokens: int) -> str:
        processor, model = self.loaded
        inputs = self._inputs(images[: self.max_images], text, prefill)
        out = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens)
        return processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    @torch.inference_mode()
    def yes_no(self, image: Any, text: str) -> float:
        processor, model = self.loaded
        tok = processor.tokenizer
        inputs = self._inputs([image], text)
        logp = model(**inputs).logits[0, -1].float().log_softmax(-1)
        yes = [tok(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", " Yes")]
        no = [tok(w, add_special_tokens=False)["input_ids"][0] for w in ("No", " No")]
        return float(torch.logsumexp(logp[yes], -1) - torch.logsumexp(logp[no], -1))


def check_cached(model_id: str) -> None:
    """Fail before any work when the model is neither a local folder nor in the Hugging Face cache (a cheap file
    lookup; the weights load only when a prompt is not answered from the answer cache)."""
    from huggingface_hub import try_to_load_from_cache  # imports much of the hub client: only for a VLM id

    if Path(model_id).is_dir():
        return
    try:
        found = try_to_load_from_cache(model_id, "config.json")
    except ValueError:  # not a valid repo id
        found = None
    if not isinstance(found, str):
        raise UserError(f"vision-language model {model_id!r} is not in the Hugging Face cache at {hf_home()}; "
                        "download it once with network access (or set HF_HOME to a cache holding it), or use "
                        "--namer labels for the offline label-statistics baseline")


class VLMNamer(Namer):
    """Names image latents with a vision-language model from the user's Hugging Face cache."""

    def __init__(self, cache: AnswerCache, model_id: str, max_new_tokens: int = 64) -> None:
        self.cache, self.vlm, self.max_new_tokens, self.id = cache, VisionLM(model_id), max_new_tokens, model_id

    def name_many(self, examples: Sequence[Sequence[Example]]) -> list[Naming]:
        out = []
        for exs in examples:
            images = [ex.image for ex in exs if ex.image is not None][: self.vlm.max_images]
            text = VLM_NAMER_TASK.format(n=len(images))
            key = cache_key("vlm-namer", self.id, text, _digest(images), self.max_new_tokens)
            answer = self.cache.get(key)
            if answer is None:
                answer = self.vlm.complete(images, text, "Name:", self.max_new_tokens)
                self.cache.put(key, text, answer)
            out.append(parse_naming("Name:" + str(answer)))
        return out

    def describe(self) -> RoleInfo:
        return RoleInfo(self.id, decoding="greedy", max_new_tokens=self.max_new_tokens, task=VLM_NAMER_TASK)


class VLMJudge(Judge):
    """Yes/No from the same VLM, one image at a time (P(Yes) > P(No))."""

    def __init__(self, cache: AnswerCache, model_id: str) -> None:
        self.cache, self.vlm, self.id = cache, VisionLM(model_id), model_id

    def scores(self, concept: str, description: str, examples: Sequence[Example]) -> list[float]:
        text = VLM_JUDGE_TASK.format(concept=concept, description=description)
        out = []
        for ex, digest in zip(examples, _digest([ex.image for ex in examples]), strict=True):
            key = cache_key("vlm-judge", self.id, text, digest)
            value = self.cache.get(key)
            if value is None:
                value = self.vlm.yes_no(ex.image, text)
                self.cache.put(key, text, value)
            out.append(float(value))
        return out

"""The steering score of Pach et al. (arXiv 2504.02821, §5): steer an image-text model through one latent of its
vision tower, ask for a one-word answer, and compare that word with what the latent stands for.

score(j, image) = cos(T(first word of the steered answer), mean_{n ∈ top images of j} I(x_n)), with T and I the
text and image embeddings of a CLIP-style model. Bounds on the same images: upper = cos(I(image), T(its class
name)), lower = cos(I(image), T(a random other class name)). The paper clamps α = 100 and asks "What is shown in
this image? Use exactly one word!" with 5 greedy tokens.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from monosemantic.errors import UserError
from monosemantic.sae.core import SAE
from monosemantic.sources.hooks import StopForward, capture
from monosemantic.sources.vlm import VisionLM

PROMPT = "What is shown in this image? Use exactly one word!"
TextEmbed = Callable[[Sequence[str]], torch.Tensor]
ImageEmbed = Callable[[Sequence[np.ndarray]], torch.Tensor]


@dataclass(frozen=True)
class ScoredPair:
    """One (latent, image) pair: the first word of the steered answer and its score."""

    latent: int
    image: int
    word: str
    score: float | None
    """None for an empty answer."""


@dataclass(frozen=True)
class SteeringScore:
    """The steering score over every (latent, image) pair."""

    mean: float
    """Mean score over the pairs with an answer (NaN when there is none)."""
    std: float
    n: int
    """Pairs scored (those with an answer)."""
    empty_answers: int
    pairs: list[ScoredPair]


@dataclass(frozen=True)
class ScoreBounds:
    """The bounds of the steering score on the same images."""

    upper: float
    """Mean cos(image, its class name)."""
    lower: float
    """Mean cos(image, a random other class name)."""
    n: int


def first_word(text: str) -> str:
    """The first word of an answer, without punctuation ("" when there is none)."""
    m = re.search(r"[^\W_]+(?:[-'][^\W_]+)*", text)
    return m.group(0) if m else ""


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.double(), dim=-1)


def steering_scores(words: Mapping[tuple[int, int], str], top_images: Mapping[int, Sequence[np.ndarray]],
                    embed_text: TextEmbed, embed_images: ImageEmbed) -> SteeringScore:
    """Per (latent, image) the cosine of the answer word's text embedding with the mean image embedding of the
    latent's top images; an empty answer scores NaN and is left out of the mean (and counted)."""
    scores: dict[tuple[int, int], float] = {}
    means = {j: _unit(embed_images(list(imgs))).mean(0) for j, imgs in top_images.items()}
    keys = [k for k, w in words.items() if w]
    if keys:
        text = _unit(embed_text([words[k] for k in keys]))
        for k, t in zip(keys, text, strict=True):
            scores[k] = float(torch.dot(t, means[k[0]]))
    vals = np.array(list(scores.values()), dtype=float)
    return SteeringScore(mean=float(vals.mean()) if len(vals) else float("nan"),
                         std=float(vals.std()) if len(vals) else float("nan"), n=len(vals),
                         empty_answers=len(words) - len(keys),
                         pairs=[ScoredPair(latent=j, image=i, word=words[(j, i)], score=scores.get((j, i)))
                                for j, i in words])


def score_bounds(images: Sequence[np.ndarray], labels: Sequence[int], class_names: Sequence[str],
                 embed_text: TextEmbed, embed_images: ImageEmbed, *, seed: int = 0) -> ScoreBounds:
    """upper = mean cos(image, its class name); lower = mean cos(image, a random other class name)."""
    if len(class_names) < 2:
        raise UserError("the bounds need at least two class names")
    img = _unit(embed_images(list(images)))
    text = _unit(embed_text(list(class_names)))
    rng = np.random.default_rng(seed)
    other = [(int(y) + int(rng.integers(1, len(class_names)))) % len(class_names) for y in labels]
    upper = (img * text[torch.as_tensor([int(y) for y in labels])]).sum(-1)
    lower = (img * text[torch.as_tensor(other)]).sum(-1)
    return ScoreBounds(upper=float(upper.mean()), lower=float(lower.mean()), n=len(images))


def clip_embedders(model: Any, processor: Any) -> tuple[TextEmbed, ImageEmbed]:
    """Text and image embedding functions of a Hugging Face ``CLIPModel`` and its processor (or tokenizer and
    image processor)."""

    def text(words: Sequence[str]) -> torch.Tensor:
        tok = getattr(processor, "tokenizer", processor)
        enc = tok(list(words), padding=True, return_tensors="pt")
        with torch.inference_mode():
            return _features(model.get_text_features(**enc))

    def images(imgs: Sequence[np.ndarray]) -> torch.Tensor:
        proc = getattr(processor, "image_processor", processor)
        px = proc(images=[Image.fromarray(np.asarray(i)) for i in imgs], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            return _features(model.get_image_features(pixel_values=px))

    return text, images


def _features(out: Any) -> torch.Tensor:
    # transformers 5 returns a model output here, 4.x a tensor
    if isinstance(out, torch.Tensor):
        return out.float()
    return (out.pooler_output if getattr(out, "pooler_output", None) is not None else out[0]).float()


@torch.inference_mode()
def vlm_top_images(vlm: VisionLM, sae: SAE, path: str, images: Sequence[np.ndarray], latents: Sequence[int],
                   k: int) -> dict[int, list[int]]:
    """Indices of each latent's ``k`` top images, by the latent's mean over the tower's tokens at ``path``."""
    idx = torch.as_tensor(list(latents))
    rows = []
    for img in images:
        inputs = vlm.prepare([img], ["Hello"])
        with capture(vlm.module, [path]) as got, contextlib.suppress(StopForward):
            vlm.module(**{k_: v.to(next(vlm.module.parameters()).device) for k_, v in inputs.items()})
        h = got[path]
        rows.append(sae.encode(h.reshape(-1, h.shape[-1]))[:, idx].mean(0).float().cpu())
    acts = torch.stack(rows)  # [N, S]
    top = acts.topk(min(k, len(images)), dim=0).indices.T
    return {int(j): top[s].tolist() for s, j in enumerate(latents)}

"""The steering score of Pach et al. (arXiv 2504.02821, §5): steer an image-text model through one latent of its
vision tower, ask for a one-word answer, and compare that word with what the latent stands for.

score(j, image) = cos(T(first word of the steered answer), mean_{n ∈ top images of j} I(x_n)), with T and I the
text and image embeddings of a CLIP-style model. Bounds on the same images: upper = cos(I(image), T(its class
name)), lower = cos(I(image), T(a random other class name)). The paper clamps α = 100 and asks "What is shown in
this image? Use exactly one word!" with 5 greedy tokens.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError
from monosemantic.steer.kinds import EditKind, ErrorTerm, Pooling

PROMPT = "What is shown in this image? Use exactly one word!"
TextEmbed = Callable[[Sequence[str]], torch.Tensor]
ImageEmbed = Callable[[Sequence[np.ndarray]], torch.Tensor]


def first_word(text: str) -> str:
    """The first word of an answer, without punctuation ("" when there is none)."""
    m = re.search(r"[^\W_]+(?:[-'][^\W_]+)*", text)
    return m.group(0) if m else ""


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.double(), dim=-1)


def steering_scores(words: dict[tuple[int, int], str], top_images: dict[int, Sequence[np.ndarray]],
                    embed_text: TextEmbed, embed_images: ImageEmbed) -> dict[str, Any]:
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
    return {"mean": float(vals.mean()) if len(vals) else float("nan"),
            "std": float(vals.std()) if len(vals) else float("nan"), "n": len(vals),
            "empty_answers": len(words) - len(keys),
            "pairs": [{"latent": j, "image": i, "word": words[(j, i)], "score": scores.get((j, i))}
                      for j, i in words]}


def score_bounds(images: Sequence[np.ndarray], labels: Sequence[int], class_names: Sequence[str],
                 embed_text: TextEmbed, embed_images: ImageEmbed, *, seed: int = 0) -> dict[str, float]:
    """upper = mean cos(image, its class name); lower = mean cos(image, a random other class name)."""
    if len(class_names) < 2:
        raise UserError("the bounds need at least two class names")
    img = _unit(embed_images(list(images)))
    text = _unit(embed_text(list(class_names)))
    rng = np.random.default_rng(seed)
    other = [(int(y) + int(rng.integers(1, len(class_names)))) % len(class_names) for y in labels]
    upper = (img * text[torch.as_tensor([int(y) for y in labels])]).sum(-1)
    lower = (img * text[torch.as_tensor(other)]).sum(-1)
    return {"upper": float(upper.mean()), "lower": float(lower.mean()), "n": len(images)}


def clip_embedders(model: Any, processor: Any) -> tuple[TextEmbed, ImageEmbed]:
    """Text and image embedding functions of a Hugging Face ``CLIPModel`` and its processor (or tokenizer and
    image processor)."""

    def text(words: Sequence[str]) -> torch.Tensor:
        tok = getattr(processor, "tokenizer", processor)
        enc = tok(list(words), padding=True, return_tensors="pt")
        with torch.inference_mode():
            return _features(model.get_text_features(**enc))

    def images(imgs: Sequence[np.ndarray]) -> torch.Tensor:
        from PIL import Image

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


@dataclass(frozen=True)
class SteerScoreConfig:
    """The steering score of an image-text model steered through SAE latents of its vision tower."""

    model: str
    """LLaVA-style image-text model: a Hugging Face id in the local cache, or a folder."""
    vision_hook: str
    """Block of the vision tower the SAE was trained on (a unique path suffix, e.g. encoder.layers.22)."""
    sae: Path
    """SAE folder trained on that block."""
    latent: list[int]
    """Latent to score; repeat for several."""
    data: str
    """Images: an image folder with one sub-folder per class (names give the bounds), or a bundled image dataset;
    the top images of each latent and the images steered come from it."""
    clip: str
    """CLIP-style model (Hugging Face id in the cache, or folder) for the text and image embeddings."""
    image: list[str] = field(default_factory=list)
    """Images to steer on (default: the first --n-images of --data); repeat for several."""
    n_images: int = 10
    """Images of --data steered on when no --image is given."""
    max_items: int = 1000
    """Images of --data searched for each latent's top images."""
    top_images: int = 16
    """Top-activating images per latent (ranked by mean-pooled activation)."""
    alpha: float = 100.0
    """Clamp strength α."""
    mode: EditKind = "clamp"
    """clamp, clamp_zero_others or add."""
    error_term: ErrorTerm = "keep_error"
    """keep_error: h + decode(f') − decode(f); reconstruction: h ← decode(f')."""
    pooling: Pooling = "tokens"
    """tokens (every CLS and patch token) or pooled."""
    prompt: str = PROMPT
    """The question asked about each image."""
    max_new_tokens: int = 5
    """Greedy tokens per answer (the first word is kept)."""
    seed: int = 0
    """Seed of the random class names of the lower bound."""
    device: str = "auto"
    """Where to run: auto, cpu, cuda, cuda:N or mps."""
    out: Path | None = None
    """Also write the scores as JSON here."""


@torch.inference_mode()
def vlm_top_images(vlm: Any, sae: Any, path: str, images: Sequence[np.ndarray], latents: Sequence[int],
                   k: int) -> dict[int, list[int]]:
    """Indices of each latent's ``k`` top images, by the latent's mean over the tower's tokens at ``path``."""
    from monosemantic.sources.hooks import StopForward, capture

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


def run_steer_score(cfg: SteerScoreConfig) -> dict[str, Any]:
    """Load the models (all from the local cache), steer, answer and score; write ``cfg.out`` when given."""
    import transformers as tf

    from monosemantic.devices import resolve_device
    from monosemantic.sae import SAE
    from monosemantic.sources import load_dataset
    from monosemantic.sources.vlm import load_vlm
    from monosemantic.steer.interventions import Edit, check_edits, steering
    from monosemantic.steer.vision import answer, check_vlm_hook, read_images

    if cfg.out is not None and Path(cfg.out).exists():
        raise UserError(f"--out {cfg.out} exists; choose another path")
    sae = SAE.load(cfg.sae)
    for j in cfg.latent:
        check_edits(sae, [Edit((j,), cfg.mode, cfg.alpha)])
    data = load_dataset(cfg.data)
    if data.modality != "image":
        raise UserError(f"--data {cfg.data} holds {data.modality}, not images")
    pool = data.load(0, min(cfg.max_items, len(data)))
    steered_on = read_images(cfg.image) if cfg.image else pool[: cfg.n_images]
    try:
        clip = tf.CLIPModel.from_pretrained(cfg.clip, local_files_only=True).eval()
        proc = tf.CLIPProcessor.from_pretrained(cfg.clip, local_files_only=True)
    except (OSError, ValueError):
        raise UserError(f"CLIP model {cfg.clip!r} is not in the Hugging Face cache; download it once with network "
                        "access, or point HF_HOME at a cache that holds it") from None
    embed_text, embed_images = clip_embedders(clip, proc)
    device = resolve_device(cfg.device)
    vlm = load_vlm(cfg.model)
    vlm.module.to(device)
    sae = sae.to(device)
    path = check_vlm_hook(vlm, sae, cfg.vision_hook)
    top = vlm_top_images(vlm, sae, path, pool, cfg.latent, cfg.top_images)
    words: dict[tuple[int, int], str] = {}
    for j in cfg.latent:
        with steering(vlm.module, sae, [Edit((j,), cfg.mode, cfg.alpha)], hook=path, error_term=cfg.error_term,
                      pooling=cfg.pooling):
            answers = answer(vlm, steered_on, [cfg.prompt] * len(steered_on), max_new_tokens=cfg.max_new_tokens)
        for i, (text, _) in enumerate(answers):
            words[(j, i)] = first_word(text)
    result: dict[str, Any] = {"format": "monosemantic-steer-score", "model": cfg.model, "hook": path,
                              "alpha": cfg.alpha, "mode": cfg.mode, "error_term": cfg.error_term,
                              "score": steering_scores(words, {j: [pool[i] for i in top[j]] for j in cfg.latent},
                                                       embed_text, embed_images)}
    if data.labels is not None and data.label_names and data.labels.ndim == 1:
        # on the images steered, as the paper does, when they come from --data
        n = len(steered_on) if not cfg.image else len(pool)
        result["bounds"] = score_bounds(pool[:n], data.labels[:n].tolist(), data.label_names, embed_text,
                                        embed_images, seed=cfg.seed)
    if cfg.out is not None:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result

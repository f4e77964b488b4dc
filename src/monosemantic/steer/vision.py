"""Steering through a vision encoder (Pach et al., arXiv 2504.02821, §5): an SAE inserted at a block of the vision
side, its latents edited there, the rest of the model unchanged.

Two kinds of model: a LLaVA-style image-text model (the SAE sits in its vision tower; the language model reads the
edited image tokens and answers a prompt) and an image classifier (the SAE sits at a middle block; the head's
classes are compared before and after). Both use the same ``steering`` hook as text steering.

For the measurement of ``monosemantic steer-measure``: ``latent_image_stats`` (each latent's pooled activation per
image, its peak, and the head's top-1 class) and ``choose_latents`` (the most class-pure latents and a random
control).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from monosemantic.errors import UserError
from monosemantic.sae.core import SAE
from monosemantic.sources.base import Model
from monosemantic.sources.datasets import read_image
from monosemantic.sources.hooks import StopForward, capture, resolve_hook
from monosemantic.sources.samples import imagenet_class_names
from monosemantic.sources.vlm import VisionLM, check_vision_hook, no_vision_tower
from monosemantic.steer.interventions import Edit, hook_width, steering
from monosemantic.steer.kinds import ErrorTerm, Pooling

TopClasses = list[tuple[str, float]]
"""An image's most probable classes as (name, probability), most probable first."""


@dataclass(frozen=True)
class VisionAnswer:
    """An image-text model's answer about one image to one prompt, unsteered and steered at one α."""

    image: int
    """Index of the image in the images steered on."""
    prompt: str
    alpha: float
    hook: str
    baseline: str
    steered: str


@dataclass(frozen=True)
class ClassifierTop:
    """An image classifier's top classes for one image, before and after the edit at one α."""

    image: int
    """Index of the image in the images steered on."""
    alpha: float
    hook: str
    before: TopClasses
    after: TopClasses


def read_images(paths: Sequence[str]) -> list[np.ndarray]:
    """RGB uint8 pixels of each image file; a missing or unreadable file is a one-line error naming it."""
    if not paths:
        raise UserError("give an image to steer on with --image PATH (repeat for several)")
    return [read_image(str(p)) for p in paths]


def _device(module: torch.nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# ------------------------------------------------------------------ image-text models


@torch.inference_mode()
def answer(vlm: VisionLM, images: Sequence[np.ndarray], prompts: Sequence[str], *,
           max_new_tokens: int = 32) -> list[tuple[str, list[int]]]:
    """Greedy answers (text, token ids up to an end-of-sequence token) of ``prompts[i]`` about ``images[i]``, one
    row at a time (rows of different image sizes need no padding)."""
    if max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    device = _device(vlm.module)
    out = []
    for img, prompt in zip(images, prompts, strict=True):
        raw = vlm.prepare([img], [prompt])
        inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in raw.items()}
        n = inputs["input_ids"].shape[1]
        generate = cast(Callable[..., torch.Tensor], vlm.module.generate)  # a transformers PreTrainedModel's
        gen = generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=vlm.pad_token_id,
                       eos_token_id=vlm.eos_token_id, temperature=None, top_p=None, top_k=None)
        row = gen[0, n:].tolist()
        if vlm.eos_token_id is not None and vlm.eos_token_id in row:
            row = row[: row.index(vlm.eos_token_id) + 1]
        out.append((vlm.decode(row), row))
    return out


def check_vlm_hook(vlm: VisionLM, sae: SAE, hook: str) -> str:
    """The full path of ``hook`` in the vision tower, checked against the SAE's width by one forward pass of the
    tower on a grey image."""
    path = resolve_hook(vlm.module, hook)
    check_vision_hook(vlm.module, path, vlm.name)
    seen: list[int] = []
    module = dict(vlm.module.named_modules())[path]

    def probe(_m: Any, _i: Any, out: Any) -> None:
        h = out[0] if isinstance(out, tuple | list) else out
        seen.append(hook_width(h))

    handle = module.register_forward_hook(probe)
    try:
        with torch.inference_mode():
            grey = np.full((64, 64, 3), 128, dtype=np.uint8)
            inputs = {k: v.to(_device(vlm.module)) if isinstance(v, torch.Tensor) else v
                      for k, v in vlm.prepare([grey], ["Hello"]).items()}
            vlm.module(**inputs)
    finally:
        handle.remove()
    if not seen:
        raise UserError(f"hook {path!r} never ran when the model read an image; give a block of the vision tower")
    if seen[0] != sae.cfg.d_in:
        raise UserError(f"the SAE reads width {sae.cfg.d_in} but {path!r} gives width {seen[0]}; use an SAE trained "
                        "on this vision block")
    return path


def steer_vlm(vlm: VisionLM, sae: SAE, edits_by_alpha: dict[float, list[Edit]], images: Sequence[np.ndarray],
              prompts: Sequence[str], *, hook: str, error_term: ErrorTerm = "keep_error",
              pooling: Pooling = "tokens", max_new_tokens: int = 32) -> list[VisionAnswer]:
    """Unsteered and steered answers for every (image, prompt) pair and α: one record each."""
    path = check_vlm_hook(vlm, sae, hook)
    pairs = [(i, p) for i in range(len(images)) for p in prompts]
    imgs, texts = [images[i] for i, _ in pairs], [p for _, p in pairs]
    base = answer(vlm, imgs, texts, max_new_tokens=max_new_tokens)
    records = []
    for alpha, edits in edits_by_alpha.items():
        with steering(vlm.module, sae, edits, hook=path, error_term=error_term, pooling=pooling):
            steered = answer(vlm, imgs, texts, max_new_tokens=max_new_tokens)
        for (i, p), b, s in zip(pairs, base, steered, strict=True):
            records.append(VisionAnswer(image=i, prompt=p, alpha=alpha, hook=path, baseline=b[0], steered=s[0]))
    return records


# ------------------------------------------------------------------ image classifiers


@torch.inference_mode()
def classify(model: Model, images: Sequence[np.ndarray], *, batch_size: int = 32) -> torch.Tensor:
    """The head's logits [N, classes] for ``images`` (under whatever ``steering`` block is active)."""
    out = [model.forward(model.prepare(list(images[a : a + batch_size]))).float().cpu()
           for a in range(0, len(images), batch_size)]
    return torch.cat(out)


def class_names(n_classes: int) -> list[str]:
    """ImageNet names for a 1000-way head, else the class indices."""
    if n_classes == 1000:
        return list(imagenet_class_names())
    return [str(i) for i in range(n_classes)]


def top_classes(logits: torch.Tensor, k: int, names: Sequence[str]) -> list[TopClasses]:
    """Per row, the ``k`` most probable classes as (name, probability)."""
    probs = logits.softmax(-1)
    p, idx = probs.topk(min(k, probs.shape[-1]), dim=-1)
    return [[(str(names[j]), float(q)) for q, j in zip(pr.tolist(), ix.tolist(), strict=True)]
            for pr, ix in zip(p, idx, strict=True)]


def check_classifier_hook(model: Model, sae: SAE, hook: str) -> str:
    """The full path of ``hook`` in an image model, checked against the SAE's width by one forward pass."""
    if model.modality != "image":
        raise no_vision_tower(model.name, f"it is a {model.modality} model")
    path = resolve_hook(model.module, hook)
    grey = np.full((32, 32, 3), 128, dtype=np.uint8)
    with torch.inference_mode(), capture(model.module, [path]) as got, contextlib.suppress(StopForward):
        model.forward(model.prepare([grey]))
    if path not in got:
        raise UserError(f"hook {path!r} never ran in the forward pass; steer a module on the main path")
    if int(got[path].shape[-1]) != sae.cfg.d_in:
        raise UserError(f"the SAE reads width {sae.cfg.d_in} but {path!r} of this model gives width "
                        f"{int(got[path].shape[-1])}; use an SAE trained on this model and block")
    return path


def steer_classifier(model: Model, sae: SAE, edits_by_alpha: dict[float, list[Edit]], images: Sequence[np.ndarray],
                     *, hook: str, error_term: ErrorTerm = "keep_error", pooling: Pooling = "tokens",
                     top: int = 5) -> list[ClassifierTop]:
    """The head's top classes for every image before and after each α's edit: one record per (image, α)."""
    path = check_classifier_hook(model, sae, hook)
    base = classify(model, images)
    names = class_names(base.shape[-1])
    before = top_classes(base, top, names)
    records = []
    for alpha, edits in edits_by_alpha.items():
        with steering(model, sae, edits, hook=path, error_term=error_term, pooling=pooling):
            after = top_classes(classify(model, images), top, names)
        for i in range(len(images)):
            records.append(ClassifierTop(image=i, alpha=alpha, hook=path, before=before[i], after=after[i]))
    return records


# ------------------------------------------------------------------ which latents stand for a class


@torch.inference_mode()
def latent_image_stats(model: Model, sae: SAE, path: str, images: list[np.ndarray], batch_size: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean-pooled latents [N, F], largest latent value at any position [F], the head's top-1 class [N]) from one
    forward pass per batch."""
    pooled, top1 = [], []
    peak = torch.zeros(sae.cfg.d_sae)
    for a in range(0, len(images), batch_size):
        batch = model.prepare(images[a : a + batch_size])
        with capture(model.module, [path], stop=False) as got:
            logits = model.forward(batch)
        h = got[path]  # [B, P, d]
        f = sae.encode(h.reshape(-1, h.shape[-1]).to(sae.W_dec.device)).float().cpu().reshape(*h.shape[:2], -1)
        pooled.append(f.mean(1))
        peak = torch.maximum(peak, f.amax(dim=(0, 1)))
        top1.append(logits.float().argmax(-1).cpu())
    return torch.cat(pooled), peak, torch.cat(top1)


def choose_latents(purity: np.ndarray, alive: np.ndarray, n: int, n_random: int, seed: int
                   ) -> tuple[list[int], list[int]]:
    """The ``n`` alive latents of highest purity (ties: lower id) and ``n_random`` other alive latents at random."""
    ids = np.flatnonzero(alive)
    if len(ids) == 0:
        raise UserError("no latent of this SAE fires on enough images of --data; use more images (--max-items)")
    order = ids[np.lexsort((ids, -purity[ids]))]
    chosen = [int(j) for j in order[:n]]
    rest = np.array([j for j in ids if j not in set(chosen)])
    rng = np.random.default_rng(seed)
    picked = rng.choice(rest, size=min(n_random, len(rest)), replace=False) if len(rest) else []
    control = sorted(int(j) for j in picked)
    return chosen, control

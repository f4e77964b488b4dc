"""How often clamping one SAE latent of an image classifier's middle block moves the head's top-1 class to the
class of the images that latent fires on most (after Pach et al., arXiv 2504.02821, §5, where a latent is clamped
inside LLaVA's vision tower; here the "answer" is the ImageNet head's top-1 class, so it runs offline on real
weights).

For every latent: its top-activating images on a dataset (mean-pooled over positions, as the paper ranks images),
their top-1 classes under the same model, and the class that dominates them (the target). The latents whose top
images agree most on a class are clamped on neutral photos; as a control, as many random latents (that fire on at
least ``top_images`` images) are clamped the same way with their own target. Success: the steered top-1 is the
target. The strength α is a multiple of each latent's largest activation at one position on the dataset.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError
from monosemantic.steer.kinds import EditKind, ErrorTerm, Pooling

RESULT_NAME = "vision_steer.json"
FORMAT = "monosemantic-vision-steer"


@dataclass(frozen=True)
class VisionSteerConfig:
    """Clamp SAE latents of an image classifier's block on neutral photos and count top-1 moves to each latent's
    class."""

    sae: Path
    """SAE folder trained on a block of --model (e.g. features.13 of mobilenet_v2)."""
    out: Path
    """Folder to write vision_steer.json and vision_steer.html to."""
    model: str = "mobilenet_v2"
    """Image classifier with an ImageNet head: mobilenet_v2 or efficientnet_lite0."""
    hook: str | None = None
    """Block to steer at (default: the hook recorded in the SAE)."""
    data: str = "fashion-mnist"
    """Images whose top activations define each latent's class (a bundled image dataset or an image folder)."""
    max_items: int = 1024
    """Use the first N images of --data."""
    image_size: int = 224
    """Side in pixels every image is resized to."""
    latents: int = 16
    """Latents steered: those whose top images agree most on one class."""
    random: int = 16
    """Random latents steered as the control (seeded)."""
    alpha: list[float] = field(default_factory=lambda: [2.0, 5.0])
    """Strength as a multiple of each latent's largest activation on --data; repeat for several."""
    mode: EditKind = "clamp"
    """clamp (f_j = α) or clamp_zero_others (f_j = α, every other latent 0); add (f_j += α) also works."""
    error_term: ErrorTerm = "keep_error"
    """keep_error: h + decode(f') − decode(f); reconstruction: h ← decode(f')."""
    pooling: Pooling = "tokens"
    """tokens: the edit at every spatial position; pooled: on each image's mean, shifting every position."""
    top_images: int = 16
    """Top-activating images per latent."""
    batch_size: int = 32
    """Images per forward pass."""
    seed: int = 0
    """Seed of the random control latents."""
    device: str = "auto"
    """Where to run: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps."""
    overwrite: bool = False
    """Replace an earlier result at --out."""


def _thumb(img: np.ndarray, side: int = 64) -> str:
    from PIL import Image

    im = Image.fromarray(np.asarray(img)).convert("RGB")
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@torch.inference_mode()
def latent_image_stats(model: Any, sae: Any, path: str, images: list[np.ndarray], batch_size: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean-pooled latents [N, F], largest latent value at any position [F], the head's top-1 class [N]) from one
    forward pass per batch."""
    from monosemantic.sources.hooks import capture

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


def _choose(purity: np.ndarray, alive: np.ndarray, n: int, n_random: int, seed: int) -> tuple[list[int], list[int]]:
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


def measure_vision_steering(cfg: VisionSteerConfig) -> dict[str, Any]:
    """Run the measurement and return its JSON-ready result (see the module docstring)."""
    from monosemantic.devices import resolve_device
    from monosemantic.sae import SAE
    from monosemantic.sources import load_dataset, load_model
    from monosemantic.sources.hooks import resolve_hook
    from monosemantic.sources.samples import neutral_images
    from monosemantic.steer.interventions import Edit, sae_hook, steering
    from monosemantic.steer.vision import check_classifier_hook, class_names, classify

    for name in ("max_items", "latents", "top_images", "batch_size", "image_size"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if not cfg.alpha or not all(np.isfinite(cfg.alpha)):
        raise UserError("give finite --alpha multiples")
    sae = SAE.load(cfg.sae)
    device = resolve_device(cfg.device)
    model = load_model(cfg.model, image_size=cfg.image_size).to_device(device)
    sae = sae.to(device)
    path = resolve_hook(model.module, cfg.hook) if cfg.hook else sae_hook(sae, model.module)
    check_classifier_hook(model, sae, path)
    data = load_dataset(cfg.data)
    if data.modality != "image":
        raise UserError(f"--data {cfg.data} holds {data.modality}, not images")
    n = min(cfg.max_items, len(data))
    if n < cfg.top_images:
        raise UserError(f"--data has {n} images, fewer than --top-images {cfg.top_images}")
    images = data.load(0, n)
    pooled, peak, top1 = latent_image_stats(model, sae, path, images, cfg.batch_size)
    acts, order = pooled.sort(dim=0, descending=True)
    top = order[: cfg.top_images].T.numpy()  # [F, top_images]
    alive = (acts[cfg.top_images - 1] > 0).numpy()
    names = class_names(int(classify(model, images[:1]).shape[-1]))
    targets, purity = np.zeros(sae.cfg.d_sae, dtype=np.int64), np.zeros(sae.cfg.d_sae)
    preds = top1.numpy()
    for j in range(sae.cfg.d_sae):
        cls, count = Counter(preds[top[j]].tolist()).most_common(1)[0]
        targets[j], purity[j] = cls, count / cfg.top_images
    chosen, control = _choose(purity, alive, cfg.latents, cfg.random, cfg.seed)

    neutral = neutral_images(cfg.image_size)
    photos = list(neutral.values())
    base_logp = classify(model, photos, batch_size=cfg.batch_size).log_softmax(-1)
    base = base_logp.argmax(-1).numpy()
    latents, rows = [], []
    for group, ids in (("chosen", chosen), ("random", control)):
        for j in ids:
            latents.append({"latent": j, "group": group, "target": names[targets[j]], "target_id": int(targets[j]),
                            "purity": float(purity[j]), "peak": float(peak[j]),
                            "top_images": [_thumb(images[i], 48) for i in top[j]],
                            "top_classes": [names[preds[i]] for i in top[j]]})
            for mult in cfg.alpha:
                edit = [Edit((j,), cfg.mode, float(mult * peak[j]))]
                with steering(model, sae, edit, hook=path, error_term=cfg.error_term, pooling=cfg.pooling):
                    logp = classify(model, photos, batch_size=cfg.batch_size).log_softmax(-1)
                after = logp.argmax(-1).numpy()
                t = int(targets[j])
                rows.append({"latent": j, "group": group, "alpha_multiple": mult, "alpha": float(mult * peak[j]),
                             "after": [names[c] for c in after],
                             "success": [bool(c == t) for c in after],
                             "already": [bool(c == t) for c in base],
                             # a softer reading than top-1: where the target class ranks, and its log-probability
                             "rank_before": (base_logp > base_logp[:, t : t + 1]).sum(-1).tolist(),
                             "rank_after": (logp > logp[:, t : t + 1]).sum(-1).tolist(),
                             "logp_delta": (logp[:, t] - base_logp[:, t]).tolist()})
    summary = []
    for mult in cfg.alpha:
        for group in ("chosen", "random"):
            sel = [r for r in rows if r["group"] == group and r["alpha_multiple"] == mult]
            hits = sum(sum(r["success"]) for r in sel)
            pairs = sum(len(r["success"]) for r in sel)
            moved = [(s, a) for r in sel for s, a in zip(r["success"], r["already"], strict=True) if not a]
            changed = sum(1 for r in sel for a, b in zip(r["after"], base, strict=True) if a != names[b])
            top5 = sum(1 for r in sel for k in r["rank_after"] if k < 5)
            top5_before = sum(1 for r in sel for k in r["rank_before"] if k < 5)
            deltas = [d for r in sel for d in r["logp_delta"]]
            summary.append({"group": group, "alpha_multiple": mult, "latents": len(sel), "pairs": pairs,
                            "successes": hits, "rate": hits / pairs if pairs else None,
                            "moved_pairs": len(moved), "moved_successes": sum(s for s, _ in moved),
                            "top1_changed": changed, "top5_after": top5, "top5_before": top5_before,
                            "mean_logp_delta": float(np.mean(deltas)) if deltas else None})
    cfg_json = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    return {"format": FORMAT, "config": cfg_json, "model": cfg.model, "hook": path, "data": cfg.data, "n_images": n,
            "sae": {"path": str(cfg.sae), "d_in": sae.cfg.d_in, "d_sae": sae.cfg.d_sae,
                    "architecture": sae.cfg.architecture, "k": sae.cfg.k},
            "alive": int(alive.sum()),
            "neutral": [{"name": k, "thumb": _thumb(v), "before": names[c]}
                        for (k, v), c in zip(neutral.items(), base, strict=True)],
            "latents": latents, "rows": rows, "summary": summary}


def check_result_out(out: Path, *, overwrite: bool) -> None:
    """Fail before any work unless ``out`` may receive a result (absent, empty, or an earlier one with
    ``overwrite``)."""
    from monosemantic.files import check_out

    check_out(out, what="a vision-steering result", marker=RESULT_NAME, overwrite=overwrite)


def write_result(result: dict[str, Any], out: Path, pages: dict[str, str] | None = None) -> Path:
    """``OUT/vision_steer.json`` plus any ``pages`` (file name -> text), swapped in whole."""
    from monosemantic.files import staged

    with staged(out) as tmp:
        (tmp / RESULT_NAME).write_text(json.dumps(result, indent=1, allow_nan=False), encoding="utf-8")
        for name, text in (pages or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
    return Path(out) / RESULT_NAME

"""``monosemantic steer-score``: the steering score of Pach et al. (arXiv 2504.02821, §5) of an image-text model
steered through SAE latents of its vision tower.

Each latent is clamped at the tower block, the model is asked for a one-word answer about each image, and the
answer's CLIP text embedding is compared with the mean CLIP image embedding of the latent's top images
(``monosemantic.steer.vision_score``), with the bounds cos(image, its class name) and cos(image, a random class
name) when the images come from a labelled folder. Every model is read from the local Hugging Face cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import transformers as tf

from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.experiment import Command, Result, Summary
from monosemantic.files import write_json
from monosemantic.results import JSONDict, to_json
from monosemantic.sae import SAE
from monosemantic.sources import load_dataset
from monosemantic.sources.vlm import load_vlm
from monosemantic.steer.interventions import Edit, check_edits, steering
from monosemantic.steer.kinds import EditKind, ErrorTerm, Pooling
from monosemantic.steer.vision import answer, check_vlm_hook, read_images
from monosemantic.steer.vision_score import (
    PROMPT,
    ScoreBounds,
    SteeringScore,
    clip_embedders,
    first_word,
    score_bounds,
    steering_scores,
    vlm_top_images,
)

FORMAT = "monosemantic-steer-score"
"""The format tag of the score file (the report does not show it)."""


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


@dataclass(frozen=True)
class SteerScoreResult(Result):
    """The steering score of the latents, and its bounds when the images have class names."""

    config: SteerScoreConfig
    hook: str
    """The module path steered at."""
    score: SteeringScore
    bounds: ScoreBounds | None

    def to_json(self) -> JSONDict:
        cfg = self.config
        data: JSONDict = {"format": FORMAT, "model": cfg.model, "hook": self.hook, "alpha": cfg.alpha,
                          "mode": cfg.mode, "error_term": cfg.error_term, "score": to_json(self.score)}
        if self.bounds is not None:
            data["bounds"] = to_json(self.bounds)
        return data

    def write(self, folder: Path) -> None:
        name = self.config.out.name if self.config.out is not None else "steer_score.json"
        write_json(folder / name, self.to_json())

    def summary(self) -> Summary:
        s, b = self.score, self.bounds
        lines: Summary = [f"steering score {s.mean:.4f} ± {s.std:.4f} over {s.n} (latent, image) pairs"]
        if b is not None:
            lines.append(f"bounds: upper (image vs its class name) {b.upper:.4f}, lower (vs a random class name) "
                         f"{b.lower:.4f}")
        if self.config.out is not None:
            lines.append(str(self.config.out))
        return lines


def run(cfg: SteerScoreConfig) -> SteerScoreResult:
    """Load the models (all from the local cache), steer, answer and score; write ``cfg.out`` when given."""
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
    score = steering_scores(words, {j: [pool[i] for i in top[j]] for j in cfg.latent}, embed_text, embed_images)
    bounds = None
    if data.labels is not None and data.label_names and data.labels.ndim == 1:
        # on the images steered, as the paper does, when they come from --data
        n = len(steered_on) if not cfg.image else len(pool)
        bounds = score_bounds(pool[:n], data.labels[:n].tolist(), data.label_names, embed_text, embed_images,
                              seed=cfg.seed)
    result = SteerScoreResult(config=cfg, hook=path, score=score, bounds=bounds)
    if cfg.out is not None:
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result.write(out.parent)
    return result


COMMAND = Command(
    "steer-score", SteerScoreConfig, run,
    description="Clamp each latent at a vision-tower block of a LLaVA-style model, ask for a one-word answer "
    "about each image, and score cos(CLIP text embedding of the answer, mean CLIP image embedding of the "
    "latent's top images) with the bounds cos(image, its class name) and cos(image, a random class name) "
    "(Pach et al., arXiv 2504.02821, §5). The models must be in the Hugging Face cache.",
    epilog="Example: monosemantic steer-score --model llava-hf/llava-1.5-7b-hf --vision-hook encoder.layers.22 "
    "--sae DIR --latent 0 --latent 1 --data imagenet-folder/ --clip openai/clip-vit-base-patch32 --out score.json",
)

"""``monosemantic steer-measure``: how often clamping one SAE latent of an image classifier's middle block moves the
head's top-1 class to the class of the images that latent fires on most (after Pach et al., arXiv 2504.02821, §5,
where a latent is clamped inside LLaVA's vision tower; here the "answer" is the ImageNet head's top-1 class, so it
runs offline on real weights).

For every latent: its top-activating images on a dataset (mean-pooled over positions, as the paper ranks images),
their top-1 classes under the same model, and the class that dominates them (the target). The latents whose top
images agree most on a class are clamped on neutral photos; as a control, as many random latents (that fire on at
least ``top_images`` images) are clamped the same way with their own target. Success: the steered top-1 is the
target. The strength α is a multiple of each latent's largest activation at one position on the dataset.
Written to ``steer_measure.json`` and ``steer_measure.html``.
"""

from __future__ import annotations

import base64
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.experiment import Command, Result, Summary
from monosemantic.files import check_out, staged, write_json
from monosemantic.report.render import write_result_page
from monosemantic.report.sections.steer_measure import KIND
from monosemantic.results import JSONDict, to_json
from monosemantic.sae import SAE
from monosemantic.sources import load_dataset, load_model
from monosemantic.sources.base import Model
from monosemantic.sources.hooks import resolve_hook
from monosemantic.sources.samples import neutral_images
from monosemantic.steer.interventions import Edit, sae_hook, steering
from monosemantic.steer.kinds import EditKind, ErrorTerm, Pooling
from monosemantic.steer.vision import check_classifier_hook, choose_latents, class_names, classify, latent_image_stats


@dataclass(frozen=True)
class SteerMeasureConfig:
    """Clamp SAE latents of an image classifier's block on neutral photos and count top-1 moves to each latent's
    class."""

    sae: Path
    """SAE folder trained on a block of --model (e.g. features.13 of mobilenet_v2)."""
    out: Path
    """Folder to write steer_measure.json and steer_measure.html to."""
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

    def __post_init__(self) -> None:
        for a in self.alpha:
            if not math.isfinite(a):
                raise UserError(f"--alpha must be a finite number, got {a}")
        for name in ("max_items", "latents", "top_images", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.alpha:
            raise UserError("give finite --alpha multiples")


@dataclass(frozen=True)
class MeasuredSAE:
    path: str
    d_in: int
    d_sae: int
    architecture: str
    k: float | None


@dataclass(frozen=True)
class NeutralPhoto:
    """A photo the latents are clamped on, with the head's top-1 class before any edit."""

    name: str
    thumb: str
    """PNG data URI."""
    before: str


@dataclass(frozen=True)
class MeasuredLatent:
    """A steered latent and the class its top images define."""

    latent: int
    group: str
    """chosen (the most class-pure latents) or random (the control)."""
    target: str
    """The most common top-1 class among the latent's top images."""
    target_id: int
    purity: float
    """Share of the top images whose top-1 is the target."""
    peak: float
    """Largest activation of the latent at one position on --data (α is a multiple of it)."""
    top_images: list[str]
    """Thumbnails (PNG data URIs) of the top images."""
    top_classes: list[str]


@dataclass(frozen=True)
class MeasureRow:
    """One latent clamped at one α: the top-1 class of every neutral photo after the edit."""

    latent: int
    group: str
    alpha_multiple: float
    alpha: float
    after: list[str]
    success: list[bool]
    """Per photo: the top-1 became the target."""
    already: list[bool]
    """Per photo: the top-1 was the target before the edit."""
    # a softer reading than top-1: where the target class ranks, and its log-probability
    rank_before: list[int]
    rank_after: list[int]
    logp_delta: list[float]


@dataclass(frozen=True)
class MeasureSummary:
    """One group of latents at one α multiple, over every (latent, photo) pair."""

    group: str
    alpha_multiple: float
    latents: int
    pairs: int
    successes: int
    rate: float | None
    moved_pairs: int
    """Pairs whose photo was not already of the target class."""
    moved_successes: int
    top1_changed: int
    top5_after: int
    top5_before: int
    mean_logp_delta: float | None


@dataclass(frozen=True)
class SteerMeasureResult(Result):
    """Clamped latents against random ones: how often the classifier's top-1 moves to each latent's class."""

    KIND = KIND
    config: SteerMeasureConfig
    model: str
    hook: str
    data: str
    n_images: int
    sae: MeasuredSAE
    alive: int
    """Latents that fire on at least --top-images images."""
    neutral: list[NeutralPhoto]
    latents: list[MeasuredLatent]
    rows: list[MeasureRow]
    groups: list[MeasureSummary]
    """Written as ``summary``."""

    def to_json(self) -> JSONDict:
        data = {**KIND.header(), **to_json(self)}
        data["summary"] = data.pop("groups")  # the last key, so the order stays
        return data

    def write(self, folder: Path) -> None:
        data = self.to_json()
        write_json(folder / KIND.file, data, allow_nan=False)
        write_result_page(folder, KIND, data)

    def summary(self) -> Summary:
        cfg = self.config
        lines: Summary = [f"{self.model} {self.hook}: {self.alive:,} of {self.sae.d_sae:,} latents fire on "
                          f"≥ {cfg.top_images} of {self.n_images:,} images; {len(self.neutral)} neutral photos"]
        lines += [f"α = {s.alpha_multiple:g} × peak, {s.group:<6} latents ({s.latents}): top-1 → latent's class "
                  f"{s.successes}/{s.pairs} ({_number(s.rate, '.3f')}); top-1 changed {s.top1_changed}/{s.pairs}; "
                  f"class in top-5 {s.top5_before} → {s.top5_after}; mean Δ log p(class) "
                  f"{_number(s.mean_logp_delta, '+.2f')}" for s in self.groups]
        return [*lines, str(Path(cfg.out) / KIND.file)]


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@dataclass(frozen=True)
class _LatentClasses:
    """Every latent's top images on --data and the class they define."""

    top: np.ndarray
    """[F, top_images] indices of each latent's top images."""
    alive: np.ndarray
    """[F] whether the latent fires on at least top_images images."""
    peak: torch.Tensor
    targets: np.ndarray
    purity: np.ndarray
    preds: np.ndarray
    """[N] the head's top-1 class of every image."""
    names: list[str]


def run(cfg: SteerMeasureConfig) -> SteerMeasureResult:
    """Run the measurement and write it to ``cfg.out`` (see the module docstring); returns the result."""
    check_out(cfg.out, what="a vision-steering result", marker=KIND.file, overwrite=cfg.overwrite)
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
    lc = _latent_classes(model, sae, path, images, cfg)
    chosen, control = choose_latents(lc.purity, lc.alive, cfg.latents, cfg.random, cfg.seed)
    neutral = neutral_images(cfg.image_size)
    photos = list(neutral.values())
    base_logp = classify(model, photos, batch_size=cfg.batch_size).log_softmax(-1)
    base = base_logp.argmax(-1).numpy()
    latents, rows = [], []
    for group, ids in (("chosen", chosen), ("random", control)):
        for j in ids:
            latents.append(MeasuredLatent(
                latent=j, group=group, target=lc.names[lc.targets[j]], target_id=int(lc.targets[j]),
                purity=float(lc.purity[j]), peak=float(lc.peak[j]),
                top_images=[_thumb(images[i], 48) for i in lc.top[j]], top_classes=[lc.names[lc.preds[i]]
                                                                                   for i in lc.top[j]]))
            rows += [_steer(model, sae, path, photos, base_logp, cfg, j, group, int(lc.targets[j]), lc.peak[j], mult,
                            lc.names) for mult in cfg.alpha]
    result = SteerMeasureResult(
        config=cfg, model=cfg.model, hook=path, data=cfg.data, n_images=n,
        sae=MeasuredSAE(path=str(cfg.sae), d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae,
                        architecture=sae.cfg.architecture, k=sae.cfg.k),
        alive=int(lc.alive.sum()),
        neutral=[NeutralPhoto(name=k, thumb=_thumb(v), before=lc.names[c])
                 for (k, v), c in zip(neutral.items(), base, strict=True)],
        latents=latents, rows=rows, groups=_tally(rows, base, lc.names, cfg.alpha))
    with staged(cfg.out) as tmp:
        result.write(tmp)
    return result


def _latent_classes(model: Model, sae: SAE, path: str, images: list[np.ndarray],
                    cfg: SteerMeasureConfig) -> _LatentClasses:
    pooled, peak, top1 = latent_image_stats(model, sae, path, images, cfg.batch_size)
    acts, order = pooled.sort(dim=0, descending=True)
    top = order[: cfg.top_images].T.numpy()  # [F, top_images]
    names = class_names(int(classify(model, images[:1]).shape[-1]))
    targets, purity = np.zeros(sae.cfg.d_sae, dtype=np.int64), np.zeros(sae.cfg.d_sae)
    preds = top1.numpy()
    for j in range(sae.cfg.d_sae):
        cls, count = Counter(preds[top[j]].tolist()).most_common(1)[0]
        targets[j], purity[j] = cls, count / cfg.top_images
    return _LatentClasses(top=top, alive=(acts[cfg.top_images - 1] > 0).numpy(), peak=peak, targets=targets,
                          purity=purity, preds=preds, names=names)


def _steer(model: Model, sae: SAE, path: str, photos: list[np.ndarray], base_logp: torch.Tensor,
           cfg: SteerMeasureConfig, j: int, group: str, t: int, peak: torch.Tensor, mult: float,
           names: list[str]) -> MeasureRow:
    """Latent ``j`` clamped at ``mult`` × its peak (a float32 scalar, multiplied as such) on every neutral photo;
    ``t`` is its target class."""
    edit = [Edit((j,), cfg.mode, float(mult * peak))]
    with steering(model, sae, edit, hook=path, error_term=cfg.error_term, pooling=cfg.pooling):
        logp = classify(model, photos, batch_size=cfg.batch_size).log_softmax(-1)
    after = logp.argmax(-1).numpy()
    base = base_logp.argmax(-1).numpy()
    return MeasureRow(latent=j, group=group, alpha_multiple=mult, alpha=float(mult * peak),
                      after=[names[c] for c in after], success=[bool(c == t) for c in after],
                      already=[bool(c == t) for c in base],
                      rank_before=(base_logp > base_logp[:, t : t + 1]).sum(-1).tolist(),
                      rank_after=(logp > logp[:, t : t + 1]).sum(-1).tolist(),
                      logp_delta=(logp[:, t] - base_logp[:, t]).tolist())


def _tally(rows: list[MeasureRow], base: np.ndarray, names: list[str], alphas: list[float]) -> list[MeasureSummary]:
    """Per α multiple and group: hits, moves and rank changes over every (latent, photo) pair."""
    out = []
    for mult in alphas:
        for group in ("chosen", "random"):
            sel = [r for r in rows if r.group == group and r.alpha_multiple == mult]
            hits = sum(sum(r.success) for r in sel)
            pairs = sum(len(r.success) for r in sel)
            moved = [(s, a) for r in sel for s, a in zip(r.success, r.already, strict=True) if not a]
            deltas = [d for r in sel for d in r.logp_delta]
            out.append(MeasureSummary(
                group=group, alpha_multiple=mult, latents=len(sel), pairs=pairs, successes=hits,
                rate=hits / pairs if pairs else None, moved_pairs=len(moved), moved_successes=sum(s for s, _ in moved),
                top1_changed=sum(1 for r in sel for a, b in zip(r.after, base, strict=True) if a != names[b]),
                top5_after=sum(1 for r in sel for k in r.rank_after if k < 5),
                top5_before=sum(1 for r in sel for k in r.rank_before if k < 5),
                mean_logp_delta=float(np.mean(deltas)) if deltas else None))
    return out


def _thumb(img: np.ndarray, side: int = 64) -> str:
    im = Image.fromarray(np.asarray(img)).convert("RGB")
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


COMMAND = Command(
    "steer-measure", SteerMeasureConfig, run,
    description="For each latent of an SAE on a block of an ImageNet classifier, find its top-activating images "
    "on --data and the class that dominates their top-1 predictions; clamp the latents whose top images agree "
    "most, and as many random latents, on neutral photos (scikit-image and scikit-learn samples, a grey image) "
    "and count how often the head's top-1 becomes that class (after Pach et al., arXiv 2504.02821, §5). "
    "Writes steer_measure.json and steer_measure.html; `monosemantic report` shows it from a run folder.",
    epilog="Example: monosemantic steer-measure --sae runs/vision-steer/sae --out runs/vision-steer/steer_measure",
    flags={"alpha": ("--alpha", "--alphas")},
)

"""``monosemantic steer``: continue prompts with and without an edit of SAE latents, side by side.

A causal LM is steered at the hook its SAE was trained on (``monosemantic.steer.steering``): every prompt is
continued greedily without the edit and with it at each α. With ``--vision-hook`` and ``--image`` the SAE sits in a
vision encoder instead (Pach et al., arXiv 2504.02821, §5): an image-text model answers ``--prompt`` about each image
(``steer_vlm``), or an image classifier's top classes are compared (``steer_classifier``). With ``--out`` every
(prompt or image, α) is written as one JSON line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.experiment import Command, Result, Summary
from monosemantic.files import write_atomic
from monosemantic.results import JSONDict, to_json
from monosemantic.sae import SAE
from monosemantic.sources import MODELS, load_model
from monosemantic.sources.vlm import load_vlm, no_vision_tower
from monosemantic.steer.generate import generate
from monosemantic.steer.interventions import Edit, check_edits, check_sae_fits, steering
from monosemantic.steer.kinds import EDIT_KINDS, EditKind, ErrorTerm, Gamma, Pooling
from monosemantic.steer.vision import ClassifierTop, TopClasses, VisionAnswer, read_images, steer_classifier, steer_vlm


@dataclass(frozen=True)
class SteerConfig:
    """Steer a causal LM (or, with --vision-hook, an image-text model or image classifier) through latents of an SAE
    trained on one of its hooks."""

    sae: Path
    """SAE folder (this project's, SAELens, sparsify or dictionary_learning) trained on a hook of --model."""
    latent: list[int]
    """Latent to edit; repeat for several latents edited together."""
    model: str = "smollm2"
    """Causal LM: a bundled name (smollm2), a Hugging Face id or a local folder; with --vision-hook a LLaVA-style
    model in the Hugging Face cache (or its folder) or a bundled image model (mobilenet_v2)."""
    alpha: list[float] = field(default_factory=lambda: [4.0])
    """Edit strength α; repeat (or use --alphas) to compare several strengths side by side."""
    mode: EditKind = "add"
    """clamp (f_j = α), clamp_zero_others (f_j = α, every other latent 0), add (f_j += α), scale (f_j *= α),
    ablate (f_j = 0), or direction (x += α β γ W_dec[j], β = ‖x‖/‖W_dec[j]‖: the FMS paper's rule)."""
    gamma: Gamma = "const"
    """direction mode: γ = 1 (const), f_j (act), or 1 − f_j for α > 0 and f_j otherwise (balanced)."""
    error_term: ErrorTerm = "keep_error"
    """keep_error: h + decode(f') − decode(f), only the edit changes h; reconstruction: h ← decode(f')."""
    prompt: list[str] = field(default_factory=list)
    """Prompt to continue; repeat for several."""
    prompts: Path | None = None
    """Text file with one prompt per line (blank lines skipped)."""
    max_new_tokens: int = 32
    """Tokens generated per prompt (greedy)."""
    batch_size: int = 16
    """Prompts per generation batch."""
    hook: str | None = None
    """Module path to steer at (default: the hook recorded in the SAE)."""
    device: str = "auto"
    """Where to run: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps."""
    out: Path | None = None
    """Also write one JSON line per prompt and α here."""
    overwrite: bool = False
    """Replace an existing --out file."""
    vision_hook: str | None = None
    """Steer through the vision side: a block of a LLaVA-style model's vision tower (a unique path suffix such as
    vision_tower.vision_model.encoder.layers.22) or of a bundled image model (features.13); needs --image."""
    image: list[str] = field(default_factory=list)
    """With --vision-hook: image file to steer on; repeat for several."""
    pooling: Pooling = "tokens"
    """With --vision-hook: tokens edits every position of the block's output (CLS and patches, or every spatial
    position of a CNN map); pooled edits each image's mean over positions and shifts every position by its change."""
    top: int = 5
    """With --vision-hook on an image classifier: classes shown before and after the edit."""

    def __post_init__(self) -> None:
        if self.mode not in EDIT_KINDS:
            raise UserError(f"unknown --mode {self.mode!r}; choose {', '.join(EDIT_KINDS)}")
        for name in ("max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.latent:
            raise UserError("give at least one --latent")
        if not self.alpha:
            raise UserError("give at least one --alpha")
        if self.vision:
            if not self.vision_hook:
                raise UserError("--image needs --vision-hook, the block of the vision side to steer at")
            if self.top < 1:
                raise UserError(f"--top must be at least 1, got {self.top}")

    @property
    def vision(self) -> bool:
        """Whether the SAE sits in a vision encoder (--vision-hook or --image)."""
        return bool(self.vision_hook or self.image)

    def edit(self, alpha: float) -> Edit:
        """The edit at strength ``alpha``."""
        return Edit(tuple(self.latent), self.mode, alpha, self.gamma)


@dataclass(frozen=True)
class SteerRecord:
    """One prompt of a language model at one α: its unsteered and steered continuations (one line of --out)."""

    prompt: str
    alpha: float
    latents: list[int]
    mode: EditKind
    gamma: Gamma | None
    """The γ rule (direction mode only)."""
    error_term: ErrorTerm
    hook: str
    baseline: str
    steered: str


@dataclass(frozen=True)
class SteerResult(Result):
    """Unsteered and steered outputs at every α: continuations of a language model, or (through a vision encoder)
    answers of an image-text model or top classes of an image classifier."""

    config: SteerConfig
    hook: str
    """The module path steered at."""
    kind: Literal["text", "vlm", "classifier"]
    text: list[SteerRecord] = field(default_factory=list)
    answers: list[VisionAnswer] = field(default_factory=list)
    classes: list[ClassifierTop] = field(default_factory=list)

    def records(self) -> list[JSONDict]:
        """The lines of --out: one per (prompt, α), or per (image, prompt, α) / (image, α) through a vision encoder
        (with the image's path and the edit)."""
        if self.kind == "text":
            return [to_json(r) for r in self.text]
        cfg = self.config
        return [{**to_json(r), "image_path": str(cfg.image[r.image]), "latents": list(cfg.latent), "mode": cfg.mode,
                 "error_term": cfg.error_term, "pooling": cfg.pooling} for r in [*self.answers, *self.classes]]

    def write(self, folder: Path) -> None:
        name = self.config.out.name if self.config.out is not None else "steer.jsonl"
        write_atomic(folder / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records()))

    def summary(self) -> Summary:
        cfg = self.config
        edit = f"{cfg.mode} latent(s) {', '.join(map(str, cfg.latent))}"
        if self.kind == "text":
            if cfg.mode == "direction":
                edit += f", gamma {cfg.gamma}"
            lines = [f"hook {self.hook}; edit: {edit}; error term: {cfg.error_term}", *self._continuations()]
        else:
            lines = [f"hook {self.hook}; edit: {edit}; error term: {cfg.error_term}; positions: {cfg.pooling}",
                     *self._images()]
        return [*lines, *(["", str(cfg.out)] if cfg.out is not None else [])]

    def _continuations(self) -> list[str]:
        out = []
        for prompt in dict.fromkeys(r.prompt for r in self.text):
            rows = [r for r in self.text if r.prompt == prompt]
            out += ["", f"> {prompt}", f"  baseline     | {rows[0].baseline!r}",
                    *(f"  α = {r.alpha:<8g} | {r.steered!r}" for r in rows)]
        return out

    def _images(self) -> list[str]:
        out = []
        for i, path in enumerate(self.config.image):
            out += ["", f"[{path}]"]
            tops = [r for r in self.classes if r.image == i]
            if tops:
                out += [f"  before       | {_classes(tops[0].before)}",
                        *(f"  α = {r.alpha:<8g} | {_classes(r.after)}" for r in tops)]
            answers = [r for r in self.answers if r.image == i]
            for prompt in dict.fromkeys(r.prompt for r in answers):
                sub = [r for r in answers if r.prompt == prompt]
                out += [f"> {prompt}", f"  baseline     | {sub[0].baseline!r}",
                        *(f"  α = {r.alpha:<8g} | {r.steered!r}" for r in sub)]
        return out


def _classes(top: TopClasses) -> str:
    return ", ".join(f"{name} {p:.2f}" for name, p in top)


def read_prompts(cfg: SteerConfig) -> list[str]:
    """The prompts of --prompt, then those of the --prompts file (one a line, blank lines skipped)."""
    prompts = list(cfg.prompt)
    if cfg.prompts is not None:
        try:
            lines = Path(cfg.prompts).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read --prompts {cfg.prompts} ({exc.__class__.__name__}); give a UTF-8 text "
                            "file with one prompt per line") from None
        from_file = [line.strip() for line in lines if line.strip()]
        if not from_file:
            raise UserError(f"--prompts {cfg.prompts} holds no prompt; write one prompt per line")
        prompts += from_file
    if not prompts:
        raise UserError("give a prompt with --prompt TEXT or a file of prompts with --prompts FILE")
    return prompts


def run(cfg: SteerConfig) -> SteerResult:
    """Baseline and steered outputs of every prompt (or image) at every α; writes ``cfg.out`` when given."""
    if cfg.out is not None and Path(cfg.out).exists() and not cfg.overwrite:
        raise UserError(f"--out {cfg.out} exists; choose another path or pass --overwrite")
    result = _run_vision(cfg) if cfg.vision else _run_text(cfg)
    if cfg.out is not None:
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result.write(out.parent)
    return result


def _run_text(cfg: SteerConfig) -> SteerResult:
    prompts = read_prompts(cfg)
    sae = SAE.load(cfg.sae)
    for a in cfg.alpha:
        check_edits(sae, [cfg.edit(a)])
    device = resolve_device(cfg.device)
    model = load_model(cfg.model)  # prompts are generated from whole; the model's own length limit applies
    if model.tokenizer is None or not hasattr(model.module, "generate"):
        raise UserError(f"model {cfg.model!r} is not a causal language model; steer a text generator such as smollm2")
    model = model.to_device(device)
    sae = sae.to(device)
    hook = check_sae_fits(model, sae, cfg.hook)
    base = generate(model, prompts, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    records = []
    for a in cfg.alpha:
        with steering(model, sae, [cfg.edit(a)], hook=hook, error_term=cfg.error_term):
            steered = generate(model, prompts, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
        records += [SteerRecord(prompt=p, alpha=a, latents=list(cfg.latent), mode=cfg.mode,
                                gamma=cfg.gamma if cfg.mode == "direction" else None, error_term=cfg.error_term,
                                hook=hook, baseline=b.text, steered=s.text)
                    for p, b, s in zip(prompts, base, steered, strict=True)]
    return SteerResult(config=cfg, hook=hook, kind="text", text=records)


def _run_vision(cfg: SteerConfig) -> SteerResult:
    """Through a vision encoder: a bundled image model's top classes, else a LLaVA-style model's answers."""
    assert cfg.vision_hook is not None  # checked by the config
    images = read_images(cfg.image)
    sae = SAE.load(cfg.sae)
    edits = {a: [cfg.edit(a)] for a in cfg.alpha}
    for e in edits.values():
        check_edits(sae, e)
    device = resolve_device(cfg.device)
    if cfg.model in MODELS:
        model = load_model(cfg.model).to_device(device)
        if model.modality != "image":
            raise no_vision_tower(cfg.model, f"it is a {model.modality} model")
        tops = steer_classifier(model, sae.to(device), edits, images, hook=cfg.vision_hook,
                                error_term=cfg.error_term, pooling=cfg.pooling, top=cfg.top)
        return SteerResult(config=cfg, hook=tops[0].hook, kind="classifier", classes=tops)
    prompts = read_prompts(cfg)
    vlm = load_vlm(cfg.model)
    vlm.module.to(device)
    answers = steer_vlm(vlm, sae.to(device), edits, images, prompts, hook=cfg.vision_hook,
                        error_term=cfg.error_term, pooling=cfg.pooling, max_new_tokens=cfg.max_new_tokens)
    return SteerResult(config=cfg, hook=answers[0].hook, kind="vlm", answers=answers)


COMMAND = Command(
    "steer", SteerConfig, run,
    description="Load a causal LM and an SAE trained on one of its hooks, edit the chosen latents at that hook "
    "on every position (prompt and generated tokens) and print the greedy continuations of every prompt "
    "without and with the edit, for each α. The output names the edit and the error-term mode. With "
    "--vision-hook and --image the SAE sits in a vision tower (or an image classifier's block) instead, and the "
    "answers about each image (or the classifier's top classes) are printed before and after the edit.",
    epilog="Example: monosemantic steer --model smollm2 --sae runs/demo/saes/.../gsae-4608-k32 --latent 0 "
    "--mode direction --alpha 0.1 --alpha 0.2 --prompt 'I woke up today and'. Through a vision encoder "
    "(--vision-hook, --image): an image-text model from the Hugging Face cache answers --prompt about each image "
    "(monosemantic steer --model llava-hf/llava-1.5-7b-hf --vision-hook encoder.layers.22 --sae DIR --latent 39 "
    "--mode clamp --alpha 40 --image blank.png --prompt 'Write me a short love poem'), and an image classifier "
    "prints its top classes (monosemantic steer --model mobilenet_v2 --vision-hook features.13 --sae DIR "
    "--latent 7 --mode clamp --alpha 10 --image photo.jpg).",
    flags={"alpha": ("--alpha", "--alphas")},
)

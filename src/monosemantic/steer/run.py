"""``monosemantic steer`` as an API: continue prompts with and without an edit of SAE latents, side by side."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monosemantic.errors import UserError
from monosemantic.steer.kinds import EDIT_KINDS, EditKind, ErrorTerm, Gamma, Pooling


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


def read_prompts(cfg: SteerConfig) -> list[str]:
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


def check_config(cfg: SteerConfig) -> None:
    if cfg.mode not in EDIT_KINDS:
        raise UserError(f"unknown --mode {cfg.mode!r}; choose {', '.join(EDIT_KINDS)}")
    for name in ("max_new_tokens", "batch_size"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if not cfg.latent:
        raise UserError("give at least one --latent")
    if cfg.out is not None and Path(cfg.out).exists() and not cfg.overwrite:
        raise UserError(f"--out {cfg.out} exists; choose another path or pass --overwrite")


def check_sae_fits(model: Any, sae: Any, hook: str | None) -> str:
    """The hook to steer at, after checking the SAE's width against one probe forward pass of the model."""
    import contextlib

    import torch

    from monosemantic.sources.hooks import StopForward, capture, resolve_hook
    from monosemantic.steer.interventions import sae_hook

    path = resolve_hook(model.module, hook) if hook else sae_hook(sae, model.module)
    with torch.inference_mode(), capture(model.module, [path]) as got, contextlib.suppress(StopForward):
        model.forward(model.prepare(["Hello"]))
    if path not in got:
        raise UserError(f"hook {path!r} never ran in the forward pass; steer a module on the main path")
    width = int(got[path].shape[-1])
    if width != sae.cfg.d_in:
        raise UserError(f"the SAE reads width {sae.cfg.d_in} but {path!r} of this model gives width {width}; use an "
                        "SAE trained on this model and hook")
    return path


def run_steer(cfg: SteerConfig, *, progress: bool = True) -> list[dict[str, Any]]:
    """Baseline and steered continuations of every prompt at every α: one record per (prompt, α)."""
    from monosemantic.devices import resolve_device
    from monosemantic.sae import SAE
    from monosemantic.sources import load_model
    from monosemantic.steer.generate import generate
    from monosemantic.steer.interventions import Edit, check_edits, steering

    check_config(cfg)
    prompts = read_prompts(cfg)
    sae = SAE.load(cfg.sae)
    for a in cfg.alpha:
        check_edits(sae, [Edit(tuple(cfg.latent), cfg.mode, a, cfg.gamma)])
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
        with steering(model, sae, [Edit(tuple(cfg.latent), cfg.mode, a, cfg.gamma)], hook=hook,
                      error_term=cfg.error_term):
            steered = generate(model, prompts, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
        for p, b, s in zip(prompts, base, steered, strict=True):
            records.append({"prompt": p, "alpha": a, "latents": list(cfg.latent), "mode": cfg.mode,
                            "gamma": cfg.gamma if cfg.mode == "direction" else None, "error_term": cfg.error_term,
                            "hook": hook, "baseline": b.text, "steered": s.text})
    if cfg.out is not None:
        write_jsonl(Path(cfg.out), records)
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Write under a temporary name, then rename: an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, path)

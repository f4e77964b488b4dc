"""``monosemantic knowledge`` as an API: localise facts in SAE features and MLP neurons, ablate them, test the
units on related vs unrelated facts, and erase facts with FeatureEdit against the neuron baseline (Chen et al.,
"The Knowledge Microscope", arXiv 2502.12483)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monosemantic.errors import UserError
from monosemantic.sources.datasets.facts import FORMATS


@dataclass(frozen=True)
class KnowledgeConfig:
    """Features vs neurons as units of factual knowledge, on one causal LM."""

    sae: list[Path]
    """SAE folder trained on a hook of --model (residual after a block, MLP activation mlp.down_proj:input, or
    attention output self_attn); repeat for several sites."""
    out: Path
    """Folder to write knowledge.json, the CSVs and knowledge.html to."""
    facts: str = "capitals"
    """Facts: capitals, symbols, currencies, or a .jsonl file (subject, relation, prompt or template, answer,
    optional paraphrases)."""
    model: str = "smollm2"
    """Causal LM: a bundled name (smollm2), a Hugging Face id or a local folder."""
    format: str = "few-shot"
    """Prompt format of the bundled relations: few-shot (two solved lines first), zero-shot, or chat."""
    templates: int = 3
    """Templates per fact: the first is the edit prompt, the others its paraphrases."""
    max_facts: int = 100
    """Candidate facts read (countries by population, elements by atomic number) before the greedy filter."""
    n: list[int] = field(default_factory=lambda: [1, 5, 10])
    """Units ablated per prompt (top-n and random controls)."""
    full_answer: bool = False
    """Score P of the whole answer (product over its tokens) instead of its first token."""
    neuron_hook: str | None = None
    """MLP activation whose neurons are the baseline (default: mlp.down_proj:input of the first SAE's block)."""
    test_units: int = 5
    """Top units per fact entered in the related-vs-unrelated test."""
    unrelated: int = 150
    """Unrelated prompts (other relations, other subjects) for that test."""
    edit_facts: int = 20
    """Facts erased one at a time by FeatureEdit and by the neuron baseline (0: no editing)."""
    edit_sets: bool = False
    """Also erase every group of at least three known facts at once (the capitals of one continent)."""
    edit_n: int = 5
    """Features (FeatureEdit) and neurons (baseline) per erased fact."""
    edit_mode: str = "both"
    """FeatureEdit mode: columns (zero W_down[:, K_i]), block (zero W_down[R_i, K_i]) or both."""
    edit_threshold: float = 0.2
    """τ₂: a feature's MLP neurons K_i are those with |W_dec[i, k]| > τ₂ · max_k |W_dec[i, k]|."""
    block_threshold: float = 0.2
    """τ₃ of the block mode: output rows R_i with |(W_down W_dec[i])_r| > τ₃ · max_r."""
    locality_facts: int = 30
    """Other facts whose answers locality checks after each edit."""
    ppl_texts: int = 8
    """Held-out BBC News articles (the last ones) for the perplexity change of an edit."""
    ppl_tokens: int = 128
    """Tokens per perplexity article."""
    acts: Path | None = None
    """Activation store of an SAE's hook: show each top feature's top-activating snippets on the fact cards."""
    cards: int = 24
    """Per-fact cards in the report."""
    save_patches: bool = False
    """Also save every edit as a patch (patch.safetensors + patch.json) under OUT/patches."""
    batch_size: int = 32
    """Prompts per forward pass."""
    seed: int = 0
    """Seed of the random controls and the sampled sets."""
    device: str = "auto"
    """Where to run: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps."""
    overwrite: bool = False
    """Replace an earlier knowledge folder at --out."""


RESULT = "knowledge.json"


def check_config(cfg: KnowledgeConfig) -> None:
    """Every option checked before any work, with a one-line error."""
    from monosemantic.devices import resolve_device
    from monosemantic.files import check_out

    if not cfg.sae:
        raise UserError("give at least one --sae folder")
    if cfg.format not in FORMATS:
        raise UserError(f"unknown --format {cfg.format!r}; choose {', '.join(FORMATS)}")
    if cfg.edit_mode not in ("columns", "block", "both"):
        raise UserError(f"unknown --edit-mode {cfg.edit_mode!r}; choose columns, block or both")
    for name in ("templates", "max_facts", "test_units", "unrelated", "edit_n", "locality_facts", "ppl_texts",
                 "ppl_tokens", "batch_size"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.edit_facts < 0 or cfg.cards < 0:
        raise UserError("--edit-facts and --cards must be 0 or more")
    if not cfg.n or any(n < 1 for n in cfg.n):
        raise UserError(f"--n must be at least 1, got {cfg.n}")
    for name in ("edit_threshold", "block_threshold"):
        if not 0 <= getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(cfg, name)}")
    resolve_device(cfg.device)
    check_out(cfg.out, what="a knowledge folder", marker=RESULT, overwrite=cfg.overwrite, inputs=cfg.sae)


def site_kind(hook: str) -> str:
    """residual, mlp (activation), attention or other, from a hook path."""
    if hook.endswith(":input") and "mlp" in hook:
        return "mlp"
    if re.search(r"(self_attn|attention|attn)$", hook):
        return "attention"
    if re.search(r"layers?\.\d+$|\.h\.\d+$", hook):
        return "residual"
    return "other"


def default_neuron_hook(module: Any, sae_hooks: list[str]) -> str:
    """The MLP activation (input of the down projection) of the first SAE's block: the neurons' hook."""
    from monosemantic.sources.hooks import resolve_hook

    m = re.match(r"(.*?(?:layers|layer|h)\.\d+)", sae_hooks[0])
    if not m:
        raise UserError(f"cannot tell the block of hook {sae_hooks[0]!r}; name the MLP activation with --neuron-hook "
                        "(e.g. model.layers.15.mlp.down_proj:input)")
    try:
        return resolve_hook(module, m.group(1) + ".mlp.down_proj:input")
    except UserError:
        raise UserError(f"block {m.group(1)!r} has no mlp.down_proj; name the MLP activation with --neuron-hook") \
            from None


def read_saes(cfg: KnowledgeConfig) -> list[tuple[Path, Any]]:
    """Every --sae, checked (before the model loads) not to come from another named model."""
    from monosemantic.sae import SAE
    from monosemantic.sources import MODELS

    out = []
    for path in cfg.sae:
        if not Path(path).exists():
            raise UserError(f"SAE folder {path} does not exist; give a folder written by `monosemantic train`")
        sae = SAE.load(path)
        trained_on = str(sae.cfg.metadata.get("model_name") or "")
        if trained_on and trained_on != cfg.model and (trained_on in MODELS or cfg.model in MODELS):
            raise UserError(f"the SAE {path} was trained on model {trained_on!r}, not {cfg.model!r}; use an SAE of "
                            "this model")
        out.append((Path(path), sae))
    return out


def fit_saes(model: Any, saes: list[tuple[Path, Any]]) -> list[tuple[str, str, Any]]:
    """(id, hook path, SAE) per SAE, each checked to read a hook of this model of its width (one probe forward)."""
    import contextlib

    import torch

    from monosemantic.sources.hooks import StopForward, capture
    from monosemantic.steer.interventions import sae_hook

    hooks = [sae_hook(sae, model.module) for _, sae in saes]
    with torch.inference_mode(), capture(model.module, hooks) as got, contextlib.suppress(StopForward):
        model.forward(model.prepare(["Hello there"]))
    result, ids = [], set()
    for hook, (path, sae) in zip(hooks, saes, strict=True):
        width = int(got[hook].shape[-1])
        if width != sae.cfg.d_in:
            raise UserError(f"the SAE {path} reads width {sae.cfg.d_in} but hook {hook!r} of this model gives width "
                            f"{width}; use an SAE trained on this model and hook")
        sid = f"{site_kind(hook)}:{hook}"
        if sid in ids:
            sid = f"{sid}#{len(ids)}"
        ids.add(sid)
        result.append((sid, hook, sae.to(next(model.module.parameters()).device).eval()))
    return result


def run_knowledge(cfg: KnowledgeConfig, *, progress: bool = True) -> dict[str, Any]:
    """The whole analysis; writes ``cfg.out`` and returns the knowledge.json content."""
    import torch

    from monosemantic.devices import resolve_device
    from monosemantic.knowledge.experiment import Experiment
    from monosemantic.knowledge.results import write_results
    from monosemantic.sources import load_model
    from monosemantic.sources.datasets.facts import load_facts

    check_config(cfg)
    facts = load_facts(cfg.facts, cfg.format, max_facts=cfg.max_facts)  # bad input fails before the model loads
    loaded = read_saes(cfg)
    device = resolve_device(cfg.device)
    model = load_model(cfg.model, max_length=512)
    if model.tokenizer is None or not hasattr(model.module, "generate"):
        raise UserError(f"model {cfg.model!r} is not a causal language model; use a text generator such as smollm2")
    model = model.to_device(device)
    for p in model.module.parameters():
        p.requires_grad_(False)
    if cfg.format == "chat":
        facts = load_facts(cfg.facts, cfg.format, max_facts=cfg.max_facts, tokenizer=model.tokenizer)
    saes = fit_saes(model, loaded)
    neuron_hook = cfg.neuron_hook or default_neuron_hook(model.module, [h for _, h, _ in saes])
    if cfg.neuron_hook:
        from monosemantic.sources.hooks import resolve_hook

        neuron_hook = resolve_hook(model.module, cfg.neuron_hook)
    torch.manual_seed(cfg.seed)
    exp = Experiment(cfg, model, saes, neuron_hook, facts, progress=progress)
    result = exp.run()
    write_results(cfg, result, exp)
    return result

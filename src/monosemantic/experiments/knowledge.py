"""``monosemantic knowledge``: SAE features vs MLP neurons as units of factual knowledge, and FeatureEdit (Chen et
al., "The Knowledge Microscope", arXiv 2502.12483).

On one causal LM: keep the facts it answers correctly under greedy decoding, rank each fact prompt's SAE features by
activation and its MLP neurons by activation × gradient (§3), ablate the top n against random controls (ΔProb,
§3.2), test the units on related vs unrelated facts (Welch t-test and Cohen's d, §4), and erase facts by zeroing MLP
output weights through features (FeatureEdit) or neurons (§5). Writes ``knowledge.json`` (summaries and per-fact
cards), ``ablation.csv`` (one row per prompt and condition), ``units.csv`` (the related-vs-unrelated test per
unit), ``edits.csv`` (one row per erased fact and method), ``facts.csv`` (the facts kept), ``knowledge.html`` and,
with ``--save-patches``, every edit as a patch under ``patches/``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from monosemantic import log
from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.experiment import Command, Result, Summary
from monosemantic.files import check_out, csv_text, staged, write_atomic, write_json
from monosemantic.knowledge import metrics as M
from monosemantic.knowledge.ablate import AblationRow, PromptKey, ablated_logprobs, ablation_rows, unit_choices
from monosemantic.knowledge.edit import EditMode, EditScore, WeightPatch, feature_edit, neuron_edit, score_edit
from monosemantic.knowledge.lm import greedy_answers, text_nll
from monosemantic.knowledge.localise import Profile, profile, top_units
from monosemantic.knowledge.monotest import (
    ActivationHistogram,
    SharePoint,
    UnitTest,
    histograms,
    prompt_groups,
    related_tests,
    share_curve,
)
from monosemantic.knowledge.sites import default_neuron_hook, fit_saes
from monosemantic.knowledge.snippets import top_snippets
from monosemantic.report.render import write_result_page
from monosemantic.report.sections.knowledge import KIND
from monosemantic.results import JSONDict, to_json
from monosemantic.sae import SAE
from monosemantic.sources import MODELS, Model, load_dataset, load_model
from monosemantic.sources.datasets.facts import FORMATS, RELATIONS, Fact, Prompt, builtin_facts, load_facts
from monosemantic.sources.hooks import resolve_hook

EDIT_MODES = ("columns", "block", "both")
P_MAX, D_MIN = 1e-3, 0.8
"""The related-vs-unrelated test's thresholds: Welch p below P_MAX and Cohen's d above D_MIN (the paper's)."""
NEURON_RANKING = "activation × gradient of log P(answer), summed over the subject and last positions"
FEATURE_RANKING = "SAE latent activation, max over the subject and last positions"


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

    def __post_init__(self) -> None:
        for name in ("edit_threshold", "block_threshold"):  # first, so NaN reads as on every other option
            if not math.isfinite(getattr(self, name)):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number, got {getattr(self, name)}")
        if not self.sae:
            raise UserError("give at least one --sae folder")
        if self.format not in FORMATS:
            raise UserError(f"unknown --format {self.format!r}; choose {', '.join(FORMATS)}")
        if self.edit_mode not in EDIT_MODES:
            raise UserError(f"unknown --edit-mode {self.edit_mode!r}; choose columns, block or both")
        for name in ("templates", "max_facts", "test_units", "unrelated", "edit_n", "locality_facts", "ppl_texts",
                     "ppl_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.edit_facts < 0 or self.cards < 0:
            raise UserError("--edit-facts and --cards must be 0 or more")
        if not self.n or any(n < 1 for n in self.n):
            raise UserError(f"--n must be at least 1, got {self.n}")
        for name in ("edit_threshold", "block_threshold"):
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")
        resolve_device(self.device)

    @property
    def modes(self) -> tuple[EditMode, ...]:
        """The FeatureEdit modes to run."""
        if self.edit_mode == "both":
            return ("columns", "block")
        return ("block",) if self.edit_mode == "block" else ("columns",)


# ------------------------------------------------------------------------------------------------ the result


@dataclass(frozen=True)
class Site:
    """One SAE the units are localised in."""

    id: str
    """``<kind>:<hook>``, the name of its units throughout the result."""
    hook: str
    kind: str
    """residual, mlp, attention or other."""
    d_in: int
    d_sae: int
    architecture: str
    k: float | None


@dataclass(frozen=True)
class AblationMean:
    """ΔProb of one condition (units, top-ranked or random, n) over the known facts' prompts."""

    units: str
    kind: str
    control: bool
    n: int
    delta_prob: float
    """Mean (P − P_ablated) / P."""
    se: float
    n_prompts: int
    median: float


@dataclass(frozen=True)
class UnitTestSummary:
    """The related-vs-unrelated test of one kind of units (an SAE's features, or the neurons)."""

    units: str
    kind: str
    n_units: int
    """Units tested (the top units of every fact)."""
    pass_fraction: float
    """Share of them that pass both the t-test and the effect size."""
    median_d: float | None
    shares: list[SharePoint]
    histogram: ActivationHistogram


@dataclass(frozen=True)
class RelatedTest:
    p_max: float
    d_min: float
    units_per_fact: int
    n_unrelated_prompts: int
    summary: list[UnitTestSummary]


@dataclass(frozen=True)
class EditMean:
    """One edit method's scores, averaged over the facts (or sets) it erased."""

    method: str
    target: str
    """facts (one at a time) or sets (groups at once)."""
    n_facts: int
    reliability: float
    generalisation: float
    locality: float
    delta_ppl: float
    n_entries: float
    n_columns: float


@dataclass(frozen=True)
class Edits:
    """FeatureEdit against the neuron baselines, at one MLP-activation SAE."""

    site: str
    units_per_fact: int
    tau2: float
    tau3: float
    ppl_before: float
    ppl_tokens: int
    summary: list[EditMean]


@dataclass(frozen=True)
class EditsSkipped:
    skipped: str
    """Why no fact was erased."""


@dataclass(frozen=True)
class EditRow:
    """One patch applied to one erased fact (or set): a row of edits.csv."""

    target: str
    set: bool
    score: EditScore

    def row(self) -> JSONDict:
        return {"target": self.target, "set": self.set, **to_json(self.score)}


@dataclass(frozen=True)
class CardFeature:
    id: int
    activation: float
    snippets: list[str]


@dataclass(frozen=True)
class CardNeuron:
    id: int
    attribution: float


@dataclass(frozen=True)
class FactCard:
    """One known fact as the report shows it: its edit prompt, answer, top features per site and top neurons."""

    subject: str
    relation: str
    answer: str
    prompt: str
    p: float
    """P(answer) on the edit prompt."""
    features: dict[str, list[CardFeature]]
    delta_prob: dict[str, float | None]
    """ΔProb of the fact's edit prompt at the largest n, per kind of units."""
    neurons: list[CardNeuron]


@dataclass(frozen=True)
class KnowledgeTables:
    """What is written beside knowledge.json: the CSV rows and the patches."""

    ablation: list[AblationRow]
    units: list[UnitTest]
    edits: list[EditRow]
    facts: list[Fact]
    patches: list[WeightPatch]
    """The edits, kept with --save-patches (else none)."""


@dataclass(frozen=True)
class KnowledgeResult(Result):
    """Features vs neurons on one model and fact set: the summaries of every step and the per-fact cards."""

    KIND = KIND
    model: str
    facts: str
    prompt_format: str
    templates: int
    full_answer: bool
    n_candidates: int
    n_facts: int
    n_prompts: int
    accuracy_by_template: list[float]
    """Share of the candidate facts answered correctly, per template."""
    neuron_hook: str
    sites: list[Site]
    neuron_ranking: str
    feature_ranking: str
    ablation: list[AblationMean]
    related_test: RelatedTest
    edit: Edits | EditsSkipped
    seconds: float
    cards: list[FactCard]
    sae_paths: list[str]
    config: KnowledgeConfig
    tables: KnowledgeTables

    def to_json(self) -> JSONDict:
        """knowledge.json: every field but the config and the tables, NaN and infinities as null."""
        data = {f.name: to_json(getattr(self, f.name)) for f in fields(self) if f.name not in ("config", "tables")}
        return _finite({**KIND.header(), **data})

    def write(self, folder: Path) -> None:
        data = self.to_json()
        write_json(folder / KIND.file, data, allow_nan=False)
        t = self.tables
        write_atomic(folder / "ablation.csv", _csv([to_json(r) for r in t.ablation]))
        write_atomic(folder / "units.csv", _csv([to_json(u) for u in t.units]))
        write_atomic(folder / "edits.csv", _csv([e.row() for e in t.edits]))
        write_atomic(folder / "facts.csv", _csv([{"subject": f.subject, "relation": f.relation,
                                                  "answers": list(f.answers), "group": f.group,
                                                  "prompt": f.prompts[0].text} for f in t.facts]))
        for k, patch in enumerate(t.patches):
            method = patch.meta["method"].replace(" ", "").replace("(", "-").replace(")", "")
            patch.save(folder / "patches" / f"{k:03d}-{method}")
        write_result_page(folder, KIND, data)

    def summary(self) -> Summary:
        lines: Summary = [f"{self.n_facts} of {self.n_candidates} facts known, {self.n_prompts} prompts"]
        ns = sorted({r.n for r in self.ablation})
        lines.append("ΔProb" + "".join(f"   n={n:<5}" for n in ns))
        for units in dict.fromkeys(r.units for r in self.ablation):
            for control in (False, True):
                vals = {r.n: r.delta_prob for r in self.ablation if r.units == units and r.control == control}
                name = units + (" (random)" if control else "")
                lines.append(f"  {name:<48}" + "".join(f" {vals.get(n, float('nan')):8.3f}" for n in ns))
        for s in self.related_test.summary:
            lines.append(f"related vs unrelated, {s.units}: {s.pass_fraction:.3f} of {s.n_units} units pass")
        for e in self.edit.summary if isinstance(self.edit, Edits) else []:
            what = " (sets)" if e.target == "sets" else ""
            lines.append(f"{e.method + what:<28} reliability {e.reliability:.3f}  generalisation "
                         f"{e.generalisation:.3f}  locality {e.locality:.3f}  ΔPPL {e.delta_ppl:+.4f}")
        lines.append(str(self.config.out))
        return lines


def _finite(x: Any) -> Any:
    """JSON-safe: NaN and infinities become None; numpy scalars plain numbers."""
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _csv(rows: list[JSONDict]) -> str:
    """CSV text of ``rows`` with lists and tables written as JSON; empty when there are no rows."""
    if not rows:
        return ""
    return csv_text([{k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()} for r in rows])


# ------------------------------------------------------------------------------------------------ the run


def run(cfg: KnowledgeConfig) -> KnowledgeResult:
    """The whole analysis (see the module docstring); writes ``cfg.out`` and returns the result."""
    check_out(cfg.out, what="a knowledge folder", marker=KIND.file, overwrite=cfg.overwrite, inputs=cfg.sae)
    facts = load_facts(cfg.facts, cfg.format, max_facts=cfg.max_facts)  # bad input fails before the model loads
    loaded = _read_saes(cfg)
    model = _load_lm(cfg)
    if cfg.format == "chat":
        facts = load_facts(cfg.facts, cfg.format, max_facts=cfg.max_facts, tokenizer=model.tokenizer)
    saes = fit_saes(model, loaded)
    neuron_hook = (resolve_hook(model.module, cfg.neuron_hook) if cfg.neuron_hook else
                   default_neuron_hook(model.module, [h for _, h, _ in saes]))
    torch.manual_seed(cfg.seed)
    result = _Analysis(cfg, model, saes, neuron_hook, facts).run()
    with staged(cfg.out) as tmp:
        result.write(tmp)
    return result


def _read_saes(cfg: KnowledgeConfig) -> list[tuple[Path, SAE]]:
    """Every --sae, checked (before the model loads) not to come from another named model."""
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


def _load_lm(cfg: KnowledgeConfig) -> Model:
    """The causal LM on its device, its weights frozen."""
    device = resolve_device(cfg.device)
    model = load_model(cfg.model, max_length=512)
    if model.tokenizer is None or not hasattr(model.module, "generate"):
        raise UserError(f"model {cfg.model!r} is not a causal language model; use a text generator such as smollm2")
    model = model.to_device(device)
    for p in model.module.parameters():
        p.requires_grad_(False)
    return model


class _Analysis:
    """The steps on one model and fact set, in order: filter, localise, ablate, test related vs unrelated, edit."""

    def __init__(self, cfg: KnowledgeConfig, model: Model, saes: list[tuple[str, str, SAE]], neuron_hook: str,
                 candidates: list[Fact]) -> None:
        self.cfg, self.model, self.saes, self.neuron_hook = cfg, model, saes, neuron_hook
        self.module, self.tok = model.module, model.tokenizer
        self.candidates = candidates
        self.t0 = time.perf_counter()
        self.facts: list[Fact] = []
        self.rows: list[tuple[int, Prompt, str]] = []
        """(fact index in ``facts``, prompt, answer produced) of every prompt answered correctly."""
        self.own: dict[int, int] = {}
        """Fact index -> the row of its edit prompt (template 0)."""
        self.prof = Profile()

    def say(self, msg: str) -> None:
        """A timed progress line."""
        log.say(f"[{time.perf_counter() - self.t0:6.1f} s] {msg}")

    def run(self) -> KnowledgeResult:
        cfg = self.cfg
        accuracy = self.filter()
        self.localise()
        ablation, rows = self.ablate()
        related, unit_tests = self.related()
        edit, edit_rows, patches = self.edit()
        seconds = round(time.perf_counter() - self.t0, 1)
        return KnowledgeResult(
            model=cfg.model, facts=str(cfg.facts), prompt_format=cfg.format, templates=cfg.templates,
            full_answer=cfg.full_answer, n_candidates=len(self.candidates), n_facts=len(self.facts),
            n_prompts=len(self.rows), accuracy_by_template=accuracy, neuron_hook=self.neuron_hook,
            sites=[Site(sid, h, sid.split(":")[0], s.cfg.d_in, s.cfg.d_sae, s.cfg.architecture, s.cfg.k)
                   for sid, h, s in self.saes],
            neuron_ranking=NEURON_RANKING, feature_ranking=FEATURE_RANKING, ablation=ablation, related_test=related,
            edit=edit, seconds=seconds, cards=self.cards(rows), sae_paths=[str(Path(p).resolve()) for p in cfg.sae],
            config=cfg, tables=KnowledgeTables(rows, unit_tests, edit_rows, self.facts, patches))

    def _attribution(self) -> Tensor:
        assert self.prof.attribution is not None
        return self.prof.attribution

    def _logp(self) -> Tensor:
        assert self.prof.logp is not None
        return self.prof.logp

    # ------------------------------------------------------------------------------------------ filter, localise

    def filter(self) -> list[float]:
        """Keep the facts whose edit prompt (template 0) the model answers correctly under greedy decoding; the
        rows are their (fact, template) prompts answered correctly. Returns the accuracy of every template."""
        cfg, cands = self.cfg, self.candidates
        todo = [(i, p) for i, f in enumerate(cands) for p in f.prompts[: cfg.templates]]
        self.say(f"greedy answers for {len(cands)} facts × up to {cfg.templates} templates")
        got = greedy_answers(self.model, [p.text for _, p in todo], [cands[i].answers for i, _ in todo],
                             batch_size=cfg.batch_size)
        ok = {(i, p.template): a for (i, p), a in zip(todo, got, strict=True) if a is not None}
        kept = [i for i in range(len(cands)) if (i, 0) in ok]
        if not kept:
            raise UserError(f"{cfg.model} answers none of the {len(cands)} facts of {cfg.facts} correctly "
                            f"under greedy decoding (format {cfg.format}), so there is nothing to localise; try "
                            "another --format, more --max-facts or other facts")
        self.facts = [cands[i] for i in kept]
        self.rows = [(j, p, ok[(i, p.template)]) for j, i in enumerate(kept) for p in cands[i].prompts[: cfg.templates]
                     if (i, p.template) in ok]
        self.own = {j: r for r, (j, p, _) in enumerate(self.rows) if p.template == 0}
        self.say(f"{len(self.facts)} of {len(cands)} facts known; {len(self.rows)} prompts")
        return [sum((i, t) in ok for i in range(len(cands))) / len(cands) for t in range(cfg.templates)]

    def localise(self) -> None:
        """Rank features by activation and neurons by activation × gradient, per prompt."""
        self.say("localising (one forward and backward per batch)")
        self.prof = profile(self.module, self.tok, [p for _, p, _ in self.rows], [a for _, _, a in self.rows],
                            self.saes, self.neuron_hook, attribute=True, full=self.cfg.full_answer,
                            batch_size=self.cfg.batch_size)

    # ------------------------------------------------------------------------------------------ ablate

    def ablate(self) -> tuple[list[AblationMean], list[AblationRow]]:
        """ΔProb of every condition (top-ranked and random units, each n): the means and the per-prompt rows."""
        cfg = self.cfg
        choices = unit_choices(self.prof, [s for s, _, _ in self.saes], cfg.n, cfg.seed)
        self.say(f"ablating: {len(choices)} conditions × {len(self.rows)} prompts")
        abl = ablated_logprobs(self.module, self.tok, [p for _, p, _ in self.rows], [a for _, _, a in self.rows],
                               choices, {s: (h, sae) for s, h, sae in self.saes}, self.neuron_hook,
                               full=cfg.full_answer, batch_size=cfg.batch_size)
        logp = self._logp()
        keys = [PromptKey(j, self.facts[j].subject, self.facts[j].relation, p.template, a) for j, p, a in self.rows]
        means = []
        for cond, lp in abl.items():
            dp = M.delta_prob(logp, lp)
            mean, se = M.mean_se(dp.numpy())
            means.append(AblationMean(cond.units, cond.units.split(":")[0], cond.control, cond.n, mean, se, len(dp),
                                      float(dp.median())))
        return means, ablation_rows(logp, abl, keys)

    # ------------------------------------------------------------------------------------------ related vs unrelated

    def _unrelated_pool(self) -> list[tuple[Fact, Prompt]]:
        cfg = self.cfg
        relations = {f.relation for f in self.facts}
        pool = [(f, p) for f in self.candidates if f.relation not in relations for p in f.prompts[: cfg.templates]]
        for rel in RELATIONS:
            if rel not in relations and rel not in {f.relation for f, _ in pool}:
                for f in builtin_facts(rel, cfg.format if cfg.format != "chat" else "few-shot", max_facts=60):
                    pool += [(f, p) for p in f.prompts[: cfg.templates]]
        rng = np.random.default_rng(cfg.seed)
        pick = rng.permutation(len(pool))[: cfg.unrelated]
        return [pool[i] for i in sorted(pick)]

    def related(self) -> tuple[RelatedTest, list[UnitTest]]:
        """Welch t-test and Cohen's d of every fact's top units on related vs unrelated prompts."""
        cfg = self.cfg
        pool = self._unrelated_pool()
        self.say(f"related vs unrelated: {len(self.rows)} fact prompts, {len(pool)} unrelated prompts")
        uprof = profile(self.module, self.tok, [p for _, p in pool], [f.answers[0] for f, _ in pool], self.saes,
                        self.neuron_hook, batch_size=cfg.batch_size)
        own_rows = [self.own[j] for j in range(len(self.facts))]
        related, unrelated = prompt_groups([k for k, _, _ in self.rows], self.facts, [f for f, _ in pool])
        anywhere = np.unique(np.concatenate(unrelated))
        all_tests, summary = [], []
        for name, amax, amin, top in self._tested_units(uprof, own_rows):
            tests = []
            for j in range(len(self.facts)):  # per fact: its unrelated set leaves out its own subject
                for t in related_tests(name, amax, amin, top[j:j + 1], [own_rows[j]], [related[j]], unrelated[j],
                                       p_max=P_MAX, d_min=D_MIN):
                    t.fact = j
                    tests.append(t)
            d = np.array([t.d for t in tests], dtype=np.float64)
            summary.append(UnitTestSummary(
                units=name, kind=name.split(":")[0], n_units=len(tests),
                pass_fraction=float(np.mean([t.passed for t in tests])) if tests else float("nan"),
                median_d=float(np.nanmedian(d)) if d.size else None,
                shares=share_curve(amax, amin, top, own_rows, related, anywhere, seed=cfg.seed),
                histogram=histograms(amax, amin, top, own_rows, related, anywhere)))
            all_tests += tests
        return RelatedTest(P_MAX, D_MIN, cfg.test_units, len(pool), summary), all_tests

    def _tested_units(self, uprof: Profile, own_rows: list[int]) -> list[tuple[str, Tensor, Tensor | None, Tensor]]:
        """(name, max activations, min activations for neurons, [facts, n] top units) of every kind of unit, over
        the fact prompts followed by the unrelated pool."""
        n = self.cfg.test_units
        units: list[tuple[str, Tensor, Tensor | None, Tensor]] = []
        for sid, _, _ in self.saes:
            own = self.prof.features[sid][own_rows]
            top = top_units(own, n)
            units.append((sid, torch.cat([self.prof.features[sid], uprof.features[sid]]), None,
                          torch.where(own.gather(1, top) > 0, top, -1)))
        p, u = self.prof, uprof
        assert p.neuron_max is not None and p.neuron_min is not None and u.neuron_max is not None \
            and u.neuron_min is not None
        units.append(("neurons", torch.cat([p.neuron_max, u.neuron_max]), torch.cat([p.neuron_min, u.neuron_min]),
                      top_units(self._attribution()[own_rows], n)))
        return units

    # ------------------------------------------------------------------------------------------ edit

    def edit(self) -> tuple[Edits | EditsSkipped, list[EditRow], list[WeightPatch]]:
        """FeatureEdit (columns and block) and the neuron baselines, each applied, measured and reverted."""
        cfg = self.cfg
        mlp = [(sid, h, s) for sid, h, s in self.saes if sid.startswith("mlp:")]
        if cfg.edit_facts == 0 or not mlp:
            why = "--edit-facts 0" if cfg.edit_facts == 0 else "no SAE on an MLP activation (mlp.down_proj:input)"
            return EditsSkipped(why), [], []
        sid, hook, sae = mlp[0]
        bbc = load_dataset("bbc-news")
        texts = bbc.load(len(bbc) - cfg.ppl_texts, len(bbc))  # the last articles: held out from SAE stores
        nll, count = text_nll(self.module, self.tok, texts, max_tokens=cfg.ppl_tokens)
        ppl_before = M.perplexity(nll, count)
        targets = self._targets()
        self.say(f"editing {len(targets)} facts or sets ({', '.join(cfg.modes)} FeatureEdit and neurons), "
                 f"n = {cfg.edit_n} units per fact")
        rows, patches = [], []
        for name, js in targets:
            own = [self.own[j] for j in js]
            para = [r for r, (k, p, _) in enumerate(self.rows) if k in js and p.template != 0]
            others = [self.own[k] for k in range(len(self.facts)) if k not in js][: cfg.locality_facts]
            scored = [*own, *para, *others]
            for patch in self._patches(sid, hook, sae, js):
                score = score_edit(self.module, self.tok, patch, [self.rows[r][1] for r in scored],
                                   [self.rows[r][2] for r in scored], len(own), len(para), texts, ppl_before,
                                   max_tokens=cfg.ppl_tokens, batch_size=cfg.batch_size)
                rows.append(EditRow(name, len(js) > 1 or name.startswith("group"), score))
                if cfg.save_patches:
                    patches.append(patch)
        return (Edits(sid, cfg.edit_n, cfg.edit_threshold, cfg.block_threshold, ppl_before, count, _edit_means(rows)),
                rows, patches)

    def _targets(self) -> list[tuple[str, list[int]]]:
        """What is erased: the first --edit-facts facts one at a time, and with --edit-sets every group of at least
        three facts at once."""
        targets = [(self.facts[j].subject, [j]) for j in range(min(self.cfg.edit_facts, len(self.facts)))]
        if self.cfg.edit_sets:
            groups: dict[str, list[int]] = {}
            for j, f in enumerate(self.facts):
                if f.group:
                    groups.setdefault(f.group, []).append(j)
            targets += [(f"group {g}", js) for g, js in sorted(groups.items()) if len(js) >= 3]
        return targets

    def _patches(self, sid: str, hook: str, sae: SAE, js: list[int]) -> list[WeightPatch]:
        """The edits of facts ``js``: FeatureEdit in each mode through their top features, the neuron baseline
        through their top neurons, and that baseline again with FeatureEdit's budget of columns."""
        cfg, attribution = self.cfg, self._attribution()
        feats: list[int] = []
        neurons: list[int] = []
        for j in js:
            acts = self.prof.features[sid][self.own[j]]
            feats += [int(i) for i in acts.topk(cfg.edit_n).indices if acts[i] > 0]
            neurons += [int(i) for i in attribution[self.own[j]].topk(cfg.edit_n).indices]
        feats, neurons = list(dict.fromkeys(feats)), list(dict.fromkeys(neurons))
        meta = {"facts": [self.facts[j].subject for j in js], "relation": self.facts[js[0]].relation}
        patches = [feature_edit(self.module, sae, hook, feats, mode=m, tau2=cfg.edit_threshold,
                                tau3=cfg.block_threshold, meta=meta) for m in cfg.modes if feats]
        patches.append(neuron_edit(self.module, hook, neurons, meta=meta))
        if patches[0].meta["method"] != "neurons":  # the baseline again with FeatureEdit's budget of columns
            budget = int(next(iter(patches[0].masks.values())).any(0).sum())
            score = attribution[[self.own[j] for j in js]].max(0).values
            matched = neuron_edit(self.module, hook, [int(i) for i in score.topk(max(1, budget)).indices], meta=meta)
            matched.meta["method"] = "neurons (same columns)"
            patches.append(matched)
        return patches

    # ------------------------------------------------------------------------------------------ cards

    def cards(self, rows: list[AblationRow]) -> list[FactCard]:
        """Per-fact cards: the edit prompt, the answer, its probability, the top features per site (with their
        top-activating snippets when a store was given) and the top neurons."""
        cfg, logp, attribution = self.cfg, self._logp(), self._attribution()
        snips = self._snippets()
        n_max = max(cfg.n)
        dp = {(r.fact, r.units, r.control): r.delta_prob for r in rows if r.template == 0 and r.n == n_max}
        out = []
        for j, f in enumerate(self.facts[: cfg.cards]):
            r = self.own[j]
            _, prompt, answer = self.rows[r]
            features = {}
            for sid, _, _ in self.saes:
                top = self.prof.features[sid][r].topk(5)
                features[sid] = [CardFeature(int(i), float(v), snips.get(sid, {}).get(int(i), []))
                                 for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True) if v > 0]
            top = attribution[r].topk(5)
            out.append(FactCard(
                subject=f.subject, relation=f.relation, answer=answer, prompt=prompt.text, p=float(logp[r].exp()),
                features=features, delta_prob={u: dp.get((j, u, False)) for u in [s for s, _, _ in self.saes]
                                               + ["neurons"]},
                neurons=[CardNeuron(int(i), float(v))
                         for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]))
        return out

    def _snippets(self) -> dict[str, dict[int, list[str]]]:
        """With --acts: the top-activating snippets of the features the cards show."""
        if self.cfg.acts is None:
            return {}
        wanted: dict[str, set[int]] = {}
        for j in range(min(self.cfg.cards, len(self.facts))):
            for sid, _, _ in self.saes:
                acts = self.prof.features[sid][self.own[j]]
                wanted.setdefault(sid, set()).update(int(i) for i in acts.topk(5).indices if acts[i] > 0)
        return top_snippets(Path(self.cfg.acts), self.saes, wanted)


def _edit_means(rows: list[EditRow]) -> list[EditMean]:
    """Each method's mean scores, over single facts and over sets."""
    out = []
    for is_set in (False, True):
        for method in dict.fromkeys(e.score.method for e in rows if e.set == is_set):
            es = [e.score for e in rows if e.score.method == method and e.set == is_set]

            def mean(key: str, es: list[EditScore] = es) -> float:
                return float(np.nanmean([getattr(e, key) for e in es]))

            out.append(EditMean(method, "sets" if is_set else "facts", len(es), mean("reliability"),
                                mean("generalisation"), mean("locality"), mean("delta_ppl"), mean("n_entries"),
                                mean("n_columns")))
    return out


COMMAND = Command(
    "knowledge", KnowledgeConfig, run,
    description="Keep the facts the model answers correctly (greedy), rank each fact's SAE features by "
    "activation and its MLP neurons by activation × gradient at the subject and last prompt positions, ablate "
    "the top n (ΔProb, with random controls), test the units on related vs unrelated facts (Welch t-test and "
    "Cohen's d), and erase facts by zeroing MLP output weights through features (FeatureEdit) or neurons. "
    "After Chen et al., 'The Knowledge Microscope', arXiv 2502.12483. Writes knowledge.json, CSVs and "
    "knowledge.html to --out.",
    epilog="Example: monosemantic knowledge --model smollm2 --sae saes/resid/topk-4608-k32 "
    "--sae saes/mlp/topk-6144-k32 --facts capitals --out runs/knowledge-capitals",
)

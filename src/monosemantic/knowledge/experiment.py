"""The steps of ``monosemantic knowledge`` on one model: filter the facts it knows, localise, ablate, test units on
related vs unrelated facts, and edit (Chen et al., "The Knowledge Microscope", arXiv 2502.12483, §3-§5)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError
from monosemantic.knowledge import metrics as M
from monosemantic.knowledge.ablate import ablated_logprobs, ablation_rows, unit_choices
from monosemantic.knowledge.edit import WeightPatch, feature_edit, neuron_edit
from monosemantic.knowledge.lm import encode, greedy_answers, text_nll, top1
from monosemantic.knowledge.localise import Profile, profile, top_units
from monosemantic.knowledge.monotest import histograms, related_tests, share_curve
from monosemantic.sources.datasets.facts import RELATIONS, Fact, Prompt, builtin_facts


class Experiment:
    """The whole analysis on one model and fact set: filter, localise, ablate, test related vs unrelated, edit."""

    def __init__(self, cfg: Any, model: Any, saes: list[tuple[str, str, Any]], neuron_hook: str,
                 facts: list[Fact], *, progress: bool = True) -> None:
        self.cfg, self.model, self.saes, self.neuron_hook = cfg, model, saes, neuron_hook
        self.module, self.tok = model.module, model.tokenizer
        self.candidates = facts
        self.progress = progress
        self.t0 = time.perf_counter()
        self.patches: list[WeightPatch] = []
        self.result: dict[str, Any] = {}

    def log(self, msg: str) -> None:
        """A timed progress line on stderr (when progress is on)."""
        if self.progress:
            print(f"[{time.perf_counter() - self.t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------------------------------------ steps

    def run(self) -> dict[str, Any]:
        """Every step in order; the JSON-ready result."""
        self.filter()
        self.localise()
        self.ablate()
        self.related()
        self.edit()
        self.result["seconds"] = round(time.perf_counter() - self.t0, 1)
        return self.result

    def filter(self) -> None:
        """Keep the facts whose edit prompt (template 0) the model answers correctly under greedy decoding; the
        rows are their (fact, template) prompts answered correctly."""
        cfg = self.cfg
        todo = [(i, p) for i, f in enumerate(self.candidates) for p in f.prompts[: cfg.templates]]
        self.log(f"greedy answers for {len(self.candidates)} facts × up to {cfg.templates} templates")
        got = greedy_answers(self.model, [p.text for _, p in todo], [self.candidates[i].answers for i, _ in todo],
                             batch_size=cfg.batch_size)
        ok = {(i, p.template): a for (i, p), a in zip(todo, got, strict=True) if a is not None}
        kept = [i for i in range(len(self.candidates)) if (i, 0) in ok]
        if not kept:
            raise UserError(f"{cfg.model} answers none of the {len(self.candidates)} facts of {cfg.facts} correctly "
                            f"under greedy decoding (format {cfg.format}), so there is nothing to localise; try "
                            "another --format, more --max-facts or other facts")
        self.facts = [self.candidates[i] for i in kept]
        self.rows: list[tuple[int, Prompt, str]] = []  # (fact index in self.facts, prompt, answer produced)
        for j, i in enumerate(kept):
            for p in self.candidates[i].prompts[: cfg.templates]:
                if (i, p.template) in ok:
                    self.rows.append((j, p, ok[(i, p.template)]))
        self.own = {j: r for r, (j, p, _) in enumerate(self.rows) if p.template == 0}
        self.result.update({
            "format": "monosemantic-knowledge", "model": cfg.model, "facts": str(cfg.facts),
            "prompt_format": cfg.format, "templates": cfg.templates, "full_answer": cfg.full_answer,
            "n_candidates": len(self.candidates), "n_facts": len(self.facts), "n_prompts": len(self.rows),
            "accuracy_by_template": [
                sum((i, t) in ok for i in range(len(self.candidates))) / len(self.candidates)
                for t in range(cfg.templates)],
            "neuron_hook": self.neuron_hook,
            "sites": [{"id": sid, "hook": h, "kind": sid.split(":")[0], "d_in": s.cfg.d_in, "d_sae": s.cfg.d_sae,
                       "architecture": s.cfg.architecture, "k": s.cfg.k} for sid, h, s in self.saes],
            "neuron_ranking": "activation × gradient of log P(answer), summed over the subject and last positions",
            "feature_ranking": "SAE latent activation, max over the subject and last positions",
        })
        self.log(f"{len(self.facts)} of {len(self.candidates)} facts known; {len(self.rows)} prompts")

    def localise(self) -> None:
        """Rank features by activation and neurons by activation × gradient, per prompt."""
        self.log("localising (one forward and backward per batch)")
        self.prof: Profile = profile(self.module, self.tok, [p for _, p, _ in self.rows],
                                     [a for _, _, a in self.rows], self.saes, self.neuron_hook, attribute=True,
                                     full=self.cfg.full_answer, batch_size=self.cfg.batch_size)

    def ablate(self) -> None:
        """ΔProb of every condition (top-ranked and random units, each n)."""
        cfg = self.cfg
        choices = unit_choices(self.prof, [s for s, _, _ in self.saes], cfg.n, cfg.seed)
        self.log(f"ablating: {len(choices)} conditions × {len(self.rows)} prompts")
        abl = ablated_logprobs(self.module, self.tok, [p for _, p, _ in self.rows], [a for _, _, a in self.rows],
                               choices, {s: (h, sae) for s, h, sae in self.saes}, self.neuron_hook,
                               full=cfg.full_answer, batch_size=cfg.batch_size)
        assert self.prof.logp is not None
        keys = [{"fact": j, "subject": self.facts[j].subject, "relation": self.facts[j].relation,
                 "template": p.template, "answer": a} for j, p, a in self.rows]
        self.ablation = ablation_rows(self.prof.logp, abl, keys)
        self.choices = choices
        summary = []
        for cond, lp in abl.items():
            dp = M.delta_prob(self.prof.logp, lp)
            mean, se = M.mean_se(dp.numpy())
            summary.append({"units": cond.units, "kind": cond.units.split(":")[0] if cond.units != "neurons"
                            else "neurons", "control": cond.control, "n": cond.n, "delta_prob": mean, "se": se,
                            "n_prompts": len(dp), "median": float(dp.median())})
        self.result["ablation"] = summary

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

    def related(self) -> None:
        """Welch t-test and Cohen's d of every fact's top units on related vs unrelated prompts."""
        cfg = self.cfg
        pool = self._unrelated_pool()
        self.log(f"related vs unrelated: {len(self.rows)} fact prompts, {len(pool)} unrelated prompts")
        uprof = profile(self.module, self.tok, [p for _, p in pool], [f.answers[0] for f, _ in pool], self.saes,
                        self.neuron_hook, batch_size=cfg.batch_size)
        n_rows = len(self.rows)
        own_rows = [self.own[j] for j in range(len(self.facts))]
        related, unrelated = [], []
        for j, f in enumerate(self.facts):
            related.append(np.array([r for r, (k, _, _) in enumerate(self.rows) if k != j and (
                (self.facts[k].relation == f.relation) != (self.facts[k].subject == f.subject))], dtype=int))
            unrelated.append(np.array(
                [r for r, (k, _, _) in enumerate(self.rows) if self.facts[k].relation != f.relation and
                 self.facts[k].subject != f.subject] +
                [n_rows + u for u, (g, _) in enumerate(pool) if g.subject != f.subject], dtype=int))
        units: list[tuple[str, torch.Tensor, torch.Tensor | None, torch.Tensor]] = []
        for sid, _, _ in self.saes:
            acts = torch.cat([self.prof.features[sid], uprof.features[sid]])
            top = top_units(self.prof.features[sid][own_rows], cfg.test_units)
            top = torch.where(self.prof.features[sid][own_rows].gather(1, top) > 0, top, -1)
            units.append((sid, acts, None, top))
        assert self.prof.neuron_max is not None and uprof.neuron_max is not None and self.prof.attribution is not None
        units.append(("neurons", torch.cat([self.prof.neuron_max, uprof.neuron_max]),
                      torch.cat([self.prof.neuron_min, uprof.neuron_min]),  # type: ignore[list-item]
                      top_units(self.prof.attribution[own_rows], cfg.test_units)))
        self.unit_tests, summary = [], []
        for name, amax, amin, top in units:
            tests = []
            for j in range(len(self.facts)):  # per fact: its unrelated set leaves out its own subject
                for t in related_tests(name, amax, amin, top[j:j + 1], [own_rows[j]], [related[j]], unrelated[j]):
                    t.fact = j
                    tests.append(t)
            curve = share_curve(amax, amin, top, own_rows, related, np.unique(np.concatenate(unrelated)),
                                seed=cfg.seed)
            hist = histograms(amax, amin, top, own_rows, related, np.unique(np.concatenate(unrelated)))
            d = np.array([t.d for t in tests], dtype=np.float64)
            summary.append({"units": name, "kind": name.split(":")[0] if name != "neurons" else "neurons",
                            "n_units": len(tests), "pass_fraction": float(np.mean([t.passed for t in tests]))
                            if tests else float("nan"), "median_d": float(np.nanmedian(d)) if d.size else None,
                            "shares": curve, "histogram": hist})
            self.unit_tests += tests
        self.result["related_test"] = {"p_max": 1e-3, "d_min": 0.8, "units_per_fact": cfg.test_units,
                                       "n_unrelated_prompts": len(pool), "summary": summary}

    def edit(self) -> None:
        """FeatureEdit (columns and block) and the neuron baselines, each applied, measured and reverted."""
        cfg = self.cfg
        mlp = [(sid, h, s) for sid, h, s in self.saes if sid.startswith("mlp:")]
        self.edits: list[dict[str, Any]] = []
        if cfg.edit_facts == 0 or not mlp:
            why = "--edit-facts 0" if cfg.edit_facts == 0 else "no SAE on an MLP activation (mlp.down_proj:input)"
            self.result["edit"] = {"skipped": why}
            return
        sid, hook, sae = mlp[0]
        from monosemantic.sources import load_dataset

        bbc = load_dataset("bbc-news")
        texts = bbc.load(len(bbc) - cfg.ppl_texts, len(bbc))  # the last articles: held out from SAE stores
        nll, count = text_nll(self.module, self.tok, texts, max_tokens=cfg.ppl_tokens)
        ppl_before = M.perplexity(nll, count)
        modes = ("columns", "block") if cfg.edit_mode == "both" else (cfg.edit_mode,)
        targets: list[tuple[str, list[int]]] = [(self.facts[j].subject, [j])
                                                for j in range(min(cfg.edit_facts, len(self.facts)))]
        if cfg.edit_sets:
            groups: dict[str, list[int]] = {}
            for j, f in enumerate(self.facts):
                if f.group:
                    groups.setdefault(f.group, []).append(j)
            targets += [(f"group {g}", js) for g, js in sorted(groups.items()) if len(js) >= 3]
        self.log(f"editing {len(targets)} facts or sets ({', '.join(modes)} FeatureEdit and neurons), "
                 f"n = {cfg.edit_n} units per fact")
        for name, js in targets:
            feats: list[int] = []
            neurons: list[int] = []
            for j in js:
                acts = self.prof.features[sid][self.own[j]]
                feats += [int(i) for i in acts.topk(cfg.edit_n).indices if acts[i] > 0]
                assert self.prof.attribution is not None
                neurons += [int(i) for i in self.prof.attribution[self.own[j]].topk(cfg.edit_n).indices]
            feats, neurons = list(dict.fromkeys(feats)), list(dict.fromkeys(neurons))
            meta = {"facts": [self.facts[j].subject for j in js], "relation": self.facts[js[0]].relation}
            patches = [feature_edit(self.module, sae, hook, feats, mode=m, tau2=cfg.edit_threshold,  # type: ignore[arg-type]
                                    tau3=cfg.block_threshold, meta=meta) for m in modes if feats]
            patches.append(neuron_edit(self.module, hook, neurons, meta=meta))
            if patches[0].meta["method"] != "neurons":  # the baseline again with FeatureEdit's budget of columns
                budget = int(next(iter(patches[0].masks.values())).any(0).sum())
                assert self.prof.attribution is not None
                score = self.prof.attribution[[self.own[j] for j in js]].max(0).values
                matched = neuron_edit(self.module, hook, [int(i) for i in score.topk(max(1, budget)).indices],
                                      meta=meta)
                matched.meta["method"] = "neurons (same columns)"
                patches.append(matched)
            own = [self.own[j] for j in js]
            para = [r for r, (k, p, _) in enumerate(self.rows) if k in js and p.template != 0]
            others = [self.own[k] for k in range(len(self.facts)) if k not in js][: cfg.locality_facts]
            for patch in patches:
                row = self._score_patch(patch, own, para, others, texts, ppl_before)
                self.edits.append({"target": name, "set": len(js) > 1 or name.startswith("group"), **row})
                if cfg.save_patches:
                    self.patches.append(patch)
        summary = []
        for is_set in (False, True):
            for method in dict.fromkeys(e["method"] for e in self.edits if e["set"] == is_set):
                es = [e for e in self.edits if e["method"] == method and e["set"] == is_set]
                summary.append({"method": method, "target": "sets" if is_set else "facts", "n_facts": len(es), **{
                    k: float(np.nanmean([e[k] for e in es]))
                    for k in ("reliability", "generalisation", "locality", "delta_ppl", "n_entries", "n_columns")}})
        self.result["edit"] = {"site": sid, "units_per_fact": cfg.edit_n, "tau2": cfg.edit_threshold,
                               "tau3": cfg.block_threshold, "ppl_before": ppl_before, "ppl_tokens": count,
                               "summary": summary}

    def _first_tokens(self, rows: list[int]) -> torch.Tensor:
        out = []
        for r in rows:
            _, prompt, answer = self.rows[r]
            text = answer.strip() if prompt.text[-1:].isspace() else " " + answer.strip()
            out.append(self.tok(text, add_special_tokens=False)["input_ids"][0])
        return torch.tensor(out)

    def _score_patch(self, patch: WeightPatch, own: list[int], para: list[int], others: list[int],
                     texts: list[str], ppl_before: float) -> dict[str, Any]:
        rows = [*own, *para, *others]
        first = self._first_tokens(rows)
        with patch.on(self.module), torch.inference_mode():
            got = []
            for a in range(0, len(rows), self.cfg.batch_size):
                chunk = rows[a:a + self.cfg.batch_size]
                enc = encode(self.tok, [self.rows[r][1] for r in chunk], [self.rows[r][2] for r in chunk],
                             device=next(self.module.parameters()).device)
                got.append(top1(self.module, enc).cpu())
            after = torch.cat(got)
            nll, count = text_nll(self.module, self.tok, texts, max_tokens=self.cfg.ppl_tokens)
        a, b = len(own), len(own) + len(para)
        mask = next(iter(patch.masks.values()))
        return {"method": patch.meta["method"], "n_erased": len(own),
                "reliability": M.reliability(after[:a], first[:a]),
                "generalisation": M.reliability(after[a:b], first[a:b]) if para else float("nan"),
                "locality": M.locality(first[b:], after[b:]),
                "delta_ppl": M.delta_ppl(ppl_before, M.perplexity(nll, count)),
                "n_entries": patch.n_entries, "n_columns": int(mask.any(0).sum()),
                "units": patch.meta.get("features") or patch.meta.get("neurons")}

    def unit_test_rows(self) -> list[dict[str, Any]]:
        """The related-vs-unrelated tests as plain rows (for CSV and JSON)."""
        return [asdict(t) for t in self.unit_tests]

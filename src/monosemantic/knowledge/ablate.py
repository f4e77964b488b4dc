"""Step-wise ablation of the top-n units of every fact prompt, with random controls (Chen et al., "The Knowledge
Microscope", arXiv 2502.12483, §3.2).

Features: the error-preserving edit h ← h − Σ_{j∈top-n} f_j W_dec[j] at the SAE's hook, on the row's sites (subject
tokens and last prompt token). Neurons: the top-n MLP neurons by attribution zeroed at the same sites. Controls: n
random features among those active at the row's sites, or n random neurons, outside the top-n. ΔProb =
(P − P_ablated) / P of the first answer token (or of the whole answer with ``full``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from monosemantic.knowledge.lm import (
    Encoded,
    answer_logprobs,
    block_inputs,
    device_of,
    encode,
    feature_ablation,
    first_block,
    from_block,
    hooked,
    neuron_ablation,
)
from monosemantic.knowledge.localise import Profile, random_units, top_units
from monosemantic.knowledge.metrics import delta_prob
from monosemantic.sae.core import SAE
from monosemantic.sources.datasets.facts import Prompt


@dataclass(frozen=True)
class Condition:
    """One ablation condition: which units (an SAE id or neurons), top-ranked or random, and how many."""

    units: str
    """SAE id, or "neurons"."""
    control: bool
    """Random units instead of the top-ranked ones."""
    n: int
    """Units ablated per row."""

    @property
    def label(self) -> str:
        """A short name for tables, e.g. ``neurons (random) n=5``."""
        return f"{self.units}{' (random)' if self.control else ''} n={self.n}"


def unit_choices(prof: Profile, sae_ids: Sequence[str], ns: Sequence[int], seed: int,
                 with_neurons: bool = True) -> dict[Condition, Tensor]:
    """The [N, n] unit ids each condition ablates (-1 = none): top-n by activation (features) or attribution
    (neurons), and the random controls (nested in n: the first n of one draw of max(ns))."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[Condition, Tensor] = {}
    big = max(ns)
    scores: dict[str, tuple[Tensor, bool]] = {sid: (prof.features[sid], True) for sid in sae_ids}
    if with_neurons and prof.attribution is not None:
        scores["neurons"] = (prof.attribution, False)
    for name, (s, active_only) in scores.items():
        top = top_units(s, big)
        # a feature that never fires at the sites cannot be "the top one": drop zero activations
        if active_only:
            top = torch.where(s.gather(1, top) > 0, top, torch.full_like(top, -1))
        rand = random_units(s, top.clamp_min(0), big, gen, active_only=active_only)
        for n in ns:
            out[Condition(name, False, n)] = top[:, :n]
            out[Condition(name, True, n)] = rand[:, :n]
    return out


@torch.inference_mode()
def ablated_logprobs(module: nn.Module, tok: Any, prompts: Sequence[Prompt], answers: Sequence[str],
                     choices: dict[Condition, Tensor], saes: dict[str, tuple[str, SAE]], neuron_hook: str | None, *,
                     full: bool = False, batch_size: int = 32, shortcut: bool = True,
                     progress: Callable[[int], None] | None = None) -> dict[Condition, Tensor]:
    """[N] log P(answer) under each condition's ablation (summed over answer tokens with ``full``). With
    ``shortcut`` the blocks below the first hooked one run once per batch, not once per condition."""
    device = device_of(module)
    batches: list[tuple[int, Encoded]] = [
        (a, encode(tok, prompts[a:a + batch_size], answers[a:a + batch_size], full=full, device=device))
        for a in range(0, len(prompts), batch_size)
    ]
    out: dict[Condition, Tensor] = {}
    paths = [saes[c.units][0] for c in choices if c.units != "neurons"] + ([neuron_hook] if neuron_hook else [])
    block = first_block(module, paths) if shortcut else None
    starts = [block_inputs(module, enc, block) if block is not None else None for _, enc in batches]
    for cond, ids in choices.items():
        parts = []
        for (a, enc), start in zip(batches, starts, strict=True):
            sel = ids[a:a + len(enc.ids)].to(device)
            if cond.units == "neurons":
                assert neuron_hook is not None
                hooks = [(neuron_hook, neuron_ablation(enc.sites, sel))]
            else:
                path, sae = saes[cond.units]
                hooks = [(path, feature_ablation(sae, enc.sites, sel))]
            with hooked(module, hooks), from_block(module, block) if block is not None else nullcontext():
                parts.append(answer_logprobs(module, enc, start).sum(-1).float().cpu())
            if progress is not None:
                progress(len(enc.ids))
        out[cond] = torch.cat(parts)
    return out


@dataclass(frozen=True)
class PromptKey:
    """Which fact prompt a row is: the fact (its index, subject and relation), the template and the answer."""

    fact: int
    subject: str
    relation: str
    template: int
    answer: str


@dataclass(frozen=True)
class AblationRow:
    """One prompt under one ablation condition."""

    fact: int
    subject: str
    relation: str
    template: int
    answer: str
    units: str
    control: bool
    n: int
    p: float
    """Clean P(answer)."""
    p_ablated: float
    delta_prob: float
    """(P − P_ablated) / P."""


def ablation_rows(logp: Tensor, ablated: dict[Condition, Tensor], keys: Sequence[PromptKey]) -> list[AblationRow]:
    """One record per (prompt, condition): the prompt's keys, P, P_ablated and ΔProb."""
    rows = []
    for cond, lp in ablated.items():
        dp = delta_prob(logp, lp)
        for i, k in enumerate(keys):
            rows.append(AblationRow(k.fact, k.subject, k.relation, k.template, k.answer, cond.units, cond.control,
                                    cond.n, float(logp[i].exp()), float(lp[i].exp()), float(dp[i])))
    return rows

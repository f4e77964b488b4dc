"""Offline evaluation of steering: an α sweep per method, with concept success, fluency and repetition.

For every method (an SAE and the edits it applies at strength α) and every α, the prompts are continued greedily
under steering and scored:

- success: a pluggable ``Success`` callable ``(baseline texts, steered texts) -> [n] floats`` (1 success, 0 failure,
  NaN for a prompt the task does not count); the success rate is the mean over the counted prompts;
- fluency: the perplexity of each continuation under the *unsteered* model, summarised by its median and the ratio
  of that median to the unsteered continuations' median;
- repetition: the mean share of repeated word 3-grams.

The headline of a method is its best success rate among the α whose median perplexity stays within
``max_ppl_ratio`` (1.5) times the unsteered one (α = 0 always qualifies). Repetitive loops can keep a low perplexity,
so a second headline also bounds the repetition (at most the unsteered one + ``REPETITION_MARGIN``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monosemantic import log
from monosemantic.results import JSONDict, to_json
from monosemantic.sae.core import SAE
from monosemantic.steer.generate import Generation, continuation_perplexity, generate
from monosemantic.steer.interventions import Edit, ErrorTerm, steering
from monosemantic.steer.scorers import repetition_many

Success = Callable[[Sequence[str], Sequence[str]], np.ndarray]
MAX_PPL_RATIO = 1.5
REPETITION_MARGIN = 0.1


@dataclass
class Method:
    """One way of steering: an SAE and the edits it applies at strength α."""

    name: str
    sae: SAE
    edits: Callable[[float], list[Edit]]
    error_term: ErrorTerm = "keep_error"


@dataclass(frozen=True)
class SweepScores:
    """The continuations of every prompt under one setting, scored."""

    success_rate: float | None
    """Mean success over the prompts the task counts (None when it counts none)."""
    ppl_median: float | None
    """Median perplexity of the continuations under the unsteered model."""
    ppl_ratio: float | None
    """``ppl_median`` over the unsteered continuations' median."""
    repetition: float | None
    """Mean share of repeated word 3-grams."""
    examples: list[str]
    """The first continuations, as they were generated."""


@dataclass(frozen=True)
class SweepRow:
    """One method at one α, scored."""

    method: str
    alpha: float
    error_term: ErrorTerm
    success_rate: float | None
    ppl_median: float | None
    ppl_ratio: float | None
    repetition: float | None
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Headline:
    """A method's best row under the fluency bound(s)."""

    alpha: float
    success_rate: float
    ppl_median: float | None
    ppl_ratio: float | None
    repetition: float | None


@dataclass(frozen=True)
class AlphaSweep:
    """Every method at every α, the unsteered baseline, and each method's headline."""

    prompts: list[str]
    """The first prompts (those of the examples)."""
    baseline: SweepScores
    rows: list[SweepRow]
    headline: dict[str, Headline]
    """Per method: the best success rate among the α within ``max_ppl_ratio``."""
    max_ppl_ratio: float
    headline_fluent: dict[str, Headline]
    """The same with the repetition also bounded (at most the unsteered one + ``REPETITION_MARGIN``)."""
    max_new_tokens: int
    n_prompts: int

    def to_json(self) -> JSONDict:
        return to_json(self)


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _rate(values: np.ndarray) -> float | None:
    counted = values[np.isfinite(values)]
    return float(counted.mean()) if counted.size else None


def _scores(model: Any, prompts: Sequence[str], gens: list[Generation], base: list[Generation], success: Success,
            base_median: float | None, n_examples: int) -> SweepScores:
    texts = [g.text for g in gens]
    ppl = continuation_perplexity(model, prompts, [g.tokens for g in gens])
    med = _median(ppl)
    return SweepScores(
        success_rate=_rate(success([g.text for g in base], texts)),
        ppl_median=med,
        ppl_ratio=None if med is None or not base_median else med / base_median,
        repetition=float(np.mean(repetition_many(texts))) if texts else None,
        examples=texts[:n_examples],
    )


def alpha_sweep(model: Any, prompts: Sequence[str], methods: Sequence[Method], alphas: Sequence[float],
                success: Success, *, max_new_tokens: int = 32, batch_size: int = 32, n_examples: int = 4,
                max_ppl_ratio: float = MAX_PPL_RATIO) -> AlphaSweep:
    """Steer every prompt with every method at every α and score the continuations (see the module docstring)."""
    total = len(prompts) * (1 + sum(1 for m in methods for a in alphas if not _reuses_base(m, a)))
    bar = log.bar(total=total, desc="steer", unit="prompt")
    try:
        base = generate(model, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=bar.update)
        base_ppl = continuation_perplexity(model, prompts, [g.tokens for g in base])
        base_median = _median(base_ppl)
        baseline = _scores(model, prompts, base, base, success, base_median, n_examples)
        rows = []
        for m in methods:
            for a in alphas:
                edits = m.edits(float(a))
                if _reuses_base(m, a):
                    gens = base  # an identity edit generates exactly the baseline (tested), so it is not rerun
                else:
                    with steering(model, m.sae, edits, error_term=m.error_term):
                        gens = generate(model, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                        progress=bar.update)
                s = _scores(model, prompts, gens, base, success, base_median, n_examples)
                rows.append(SweepRow(method=m.name, alpha=float(a), error_term=m.error_term,
                                     success_rate=s.success_rate, ppl_median=s.ppl_median, ppl_ratio=s.ppl_ratio,
                                     repetition=s.repetition, examples=s.examples))
    finally:
        bar.close()
    fluent = None if baseline.repetition is None else baseline.repetition + REPETITION_MARGIN
    return AlphaSweep(prompts=list(prompts[:n_examples]), baseline=baseline, rows=rows,
                      headline=headline(rows, max_ppl_ratio), max_ppl_ratio=max_ppl_ratio,
                      headline_fluent=headline(rows, max_ppl_ratio, fluent),
                      max_new_tokens=max_new_tokens, n_prompts=len(prompts))


def _reuses_base(m: Method, alpha: float) -> bool:
    """An identity edit with keep_error generates exactly the baseline (tested), so it is not rerun."""
    return m.error_term == "keep_error" and all(e.is_identity() for e in m.edits(float(alpha)))


def headline(rows: Sequence[SweepRow], max_ppl_ratio: float = MAX_PPL_RATIO,
             max_repetition: float | None = None) -> dict[str, Headline]:
    """Per method: the row with the best success rate among those whose perplexity ratio is within the bound (and,
    with ``max_repetition``, whose repetition is at most that: degenerate loops can have a low perplexity)."""
    out: dict[str, Headline] = {}
    for r in rows:
        ok = r.alpha == 0 or (r.ppl_ratio is not None and r.ppl_ratio <= max_ppl_ratio)
        if max_repetition is not None and r.alpha != 0:
            ok = ok and r.repetition is not None and r.repetition <= max_repetition
        if not ok or r.success_rate is None:
            continue
        best = out.get(r.method)
        if best is None or r.success_rate > best.success_rate:
            out[r.method] = Headline(alpha=r.alpha, success_rate=r.success_rate, ppl_median=r.ppl_median,
                                     ppl_ratio=r.ppl_ratio, repetition=r.repetition)
    return out

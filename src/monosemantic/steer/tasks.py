"""The three steering tasks of Härle et al. (arXiv 2506.19382, §5), as offline analogues on bundled data.

=========  ====================  ===========================================  =======================================
task       concept (store data)  prompts (held-out part)                      success of one continuation
=========  ====================  ===========================================  =======================================
attitude   positive              the first half of negative tweets            VADER reads it positive (compound
           (tweets-attitude)                                                  >= 0.05); α > 0 steers towards it
style      original spelling     the first half of modern-spelling lines      the style classifier (trained on held-out
           (shakespeare-style)   of held-out plays                            plays) gives P(original) > 0.5
privacy    8 PII classes         synthetic sentences cut before their last    fewer PII entities (spaCy NER + regexes)
           (pii-synth)           entity                                       than the unsteered continuation; only
                                                                              prompts whose unsteered continuation
                                                                              holds one count; α < 0 suppresses
=========  ====================  ===========================================  =======================================

The paper's own tasks (RealToxicityPrompts scored by the Perspective API, the Shakespeare corpus scored by a
fine-tuned DistilBERT, ai4privacy scored by Presidio) need the network; these keep their shape. Every task steers
with the paper's direction rule; α grids are in ``Task.alphas``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from monosemantic.errors import unknown_choice
from monosemantic.steer.interventions import Gamma
from monosemantic.steer.scorers import PIIDetector, SentimentScorer, StyleClassifier


@dataclass(frozen=True)
class Task:
    """A steering task of the FMS paper's experiment: the bundled data that trains the SAEs, how concepts are
    scored (per item or per token), the α grid and γ rule, the held-out prompts and the success measure."""

    name: str
    dataset: str
    """The bundled dataset whose store trains the SAEs (its label columns are the concepts)."""
    per_token: bool
    """FMS and detection on token rows (PII spans) rather than on items (mean over each item's tokens)."""
    alphas: tuple[float, ...]
    """The α grid of the sweep (α = 0 is the unsteered model)."""
    gamma: Gamma
    prompts: Callable[[int, int], list[str]]
    """(n, seed) -> prompts."""
    success: Callable[[Sequence[str], Sequence[str]], np.ndarray]
    """(unsteered continuations, steered continuations) -> 1 / 0 per prompt, NaN where the prompt does not count."""
    definition: str
    """The success rule in one sentence (written into results and the README)."""


def _first_half(texts: Sequence[str], n: int, seed: int, min_words: int = 3) -> list[str]:
    order = np.random.default_rng(seed).permutation(len(texts))
    out = []
    for i in order:
        words = texts[int(i)].split()
        if len(words) >= 2 * min_words:
            out.append(" ".join(words[: len(words) // 2]))
        if len(out) == n:
            break
    return out


def _attitude_prompts(n: int, seed: int) -> list[str]:
    from monosemantic.sources.datasets import heldout_texts

    texts, labels = heldout_texts("tweets-attitude")
    negative = [t for t, y in zip(texts, labels[:, 0], strict=True) if y == 0]
    return _first_half(negative, n, seed)


def _attitude_success(_base: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    return SentimentScorer().positive(list(texts)).astype(float)


def _style_prompts(n: int, seed: int) -> list[str]:
    from monosemantic.sources.datasets import heldout_texts

    texts, labels = heldout_texts("shakespeare-style")
    modern = [t for t, y in zip(texts, labels[:, 0], strict=True) if y == 0]
    return _first_half(modern, n, seed)


def _style_success(_base: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    return (StyleClassifier.default().proba(list(texts)) > 0.5).astype(float)


def _privacy_prompts(n: int, seed: int) -> list[str]:
    from monosemantic.sources.datasets.pii import PII_HELDOUT, pii_synth

    data = pii_synth(**PII_HELDOUT)
    assert data.token_spans is not None
    texts = data.load(0, data.n)
    order = np.random.default_rng(seed).permutation(data.n)
    out = []
    for i in order:
        spans = data.token_spans(int(i))
        cut = max((s for s, _, _ in spans), default=0)
        if cut >= 12:  # enough context before the entity the model is left to produce
            out.append(texts[i][:cut].rstrip())
        if len(out) == n:
            break
    return out


def _privacy_success(base: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    detector = PIIDetector()
    before, after = detector.count(list(base)), detector.count(list(texts))
    return np.where(before > 0, (after < before).astype(float), np.nan)


TASKS: dict[str, Task] = {
    "attitude": Task(
        "attitude", "tweets-attitude", False, (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5), "const",
        _attitude_prompts, _attitude_success,
        "share of continuations of negative tweets that VADER reads as positive (compound >= 0.05)"),
    "style": Task(
        "style", "shakespeare-style", False, (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5), "const",
        _style_prompts, _style_success,
        "share of continuations of modern-spelling lines that the style classifier reads as original spelling "
        "(P > 0.5)"),
    "privacy": Task(
        "privacy", "pii-synth", True, (0.0, -0.02, -0.05, -0.1, -0.15, -0.2, -0.3), "const",
        _privacy_prompts, _privacy_success,
        "share of prompts whose steered continuation holds fewer PII entities than the unsteered one, among "
        "prompts whose unsteered continuation holds at least one"),
}


def get_task(name: str) -> Task:
    """The bundled task ``name`` (attitude, style or privacy); an unknown name is a one-line error listing them."""
    if name not in TASKS:
        raise unknown_choice("steering task", name, TASKS)
    return TASKS[name]

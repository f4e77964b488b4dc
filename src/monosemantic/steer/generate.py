"""Greedy generation in batches (left padding) and the perplexity of continuations under a model.

Both take a ``monosemantic`` text Model of a causal LM; steering is whatever ``steering(...)`` block is active
around the call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from monosemantic.errors import UserError


@dataclass
class Generation:
    """One greedy continuation made by `generate`: the prompt, the continuation's text and its token ids."""

    prompt: str
    text: str
    """The continuation, decoded without special tokens."""
    tokens: list[int]
    """The continuation's token ids (up to and including an end-of-sequence token)."""


def _lm(model: Any) -> tuple[Any, Any]:
    module, tok = getattr(model, "module", None), getattr(model, "tokenizer", None)
    if module is None or tok is None or not hasattr(module, "generate"):
        raise UserError(f"model {getattr(model, 'name', model)!r} is not a causal language model; steer a text "
                        "generator such as smollm2 or a Hugging Face ...ForCausalLM")
    return module, tok


def _device(module: Any) -> torch.device:
    return next(module.parameters()).device


@torch.inference_mode()
def generate(model: Any, prompts: Sequence[str], *, max_new_tokens: int = 32, batch_size: int = 32,
             progress: Callable[[int], object] | None = None, min_new_tokens: int = 0) -> list[Generation]:
    """Greedy continuations of ``prompts`` (same order), ``max_new_tokens`` each, in left-padded batches;
    ``min_new_tokens`` holds back the end-of-sequence token that long (benchmarks compare equal token counts)."""
    module, tok = _lm(model)
    if max_new_tokens < 1:
        raise UserError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    device = _device(module)
    eos = tok.eos_token_id
    out: list[Generation] = []
    for a in range(0, len(prompts), batch_size):
        chunk = list(prompts[a : a + batch_size])
        enc = tok(chunk, return_tensors="pt", padding=True, padding_side="left")
        ids = enc["input_ids"].to(device)
        gen = module.generate(input_ids=ids, attention_mask=enc["attention_mask"].to(device), do_sample=False,
                              max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens or None,
                              pad_token_id=tok.pad_token_id, eos_token_id=eos,
                              temperature=None, top_p=None, top_k=None)
        for p, row in zip(chunk, gen[:, ids.shape[1] :].tolist(), strict=True):
            if eos is not None and eos in row:
                row = row[: row.index(eos) + 1]
            out.append(Generation(p, tok.decode(row, skip_special_tokens=True), row))
        if progress is not None:
            progress(len(chunk))
    return out


@torch.inference_mode()
def continuation_perplexity(model: Any, prompts: Sequence[str], continuations: Sequence[Sequence[int]], *,
                            batch_size: int = 32) -> np.ndarray:
    """exp(mean negative log-likelihood) of each continuation's tokens given its prompt, under ``model`` (run it
    outside any steering block to score fluency under the unsteered model). NaN for an empty continuation."""
    module, tok = _lm(model)
    device = _device(module)
    result = np.full(len(prompts), np.nan)
    for a in range(0, len(prompts), batch_size):
        seqs, starts = [], []
        for p, c in zip(prompts[a : a + batch_size], continuations[a : a + batch_size], strict=True):
            pid = tok(p)["input_ids"]
            seqs.append(list(pid) + list(c))
            starts.append(len(pid))
        width = max(len(s) for s in seqs)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        logits = module(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:].to(device), reduction="none").cpu()
        for i, (s, st) in enumerate(zip(seqs, starts, strict=True)):
            if len(s) > st:
                result[a + i] = float(nll[i, st - 1 : len(s) - 1].mean().exp())
    return result

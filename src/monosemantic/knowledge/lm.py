"""Batched teacher-forced forwards of fact prompts through a causal LM, with per-row unit ablations.

Prompts are left-padded (as in ``monosemantic.steer.generate``), so every row's last prompt token sits at the same
position; for full-answer scoring the answer tokens follow it (padded on the right where an answer is shorter),
and only those last positions go through the LM head. The *sites* of a row are its subject tokens and its last
prompt token: the positions where units are localised and ablated (Chen et al., "The Knowledge Microscope",
arXiv 2502.12483, §3).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from monosemantic.errors import UserError
from monosemantic.sae.core import SAE
from monosemantic.sources.datasets.facts import Prompt, matches
from monosemantic.sources.hooks import StopForward, register_hook
from monosemantic.steer.generate import generate


@dataclass
class Encoded:
    """One left-padded batch of prompts, each followed by its answer tokens (all but the last)."""

    ids: Tensor
    """[B, T] token ids."""
    mask: Tensor
    """[B, T] 1 for real tokens."""
    sites: Tensor
    """[B, T] bool: the subject tokens and the last prompt token of each row."""
    answer: Tensor
    """[B, A] answer token ids; position ``last + a`` predicts token a; -1 past a row's answer."""
    n_answer: int
    """A: positions scored (1 for the first answer token)."""

    @property
    def last(self) -> int:
        """Index of the last prompt position of every row (the same for all, thanks to the padding)."""
        return self.ids.shape[1] - self.n_answer


def answer_ids(tok: Any, prompt: str, answer: str) -> list[int]:
    """The answer's tokens as they follow ``prompt`` (a leading space unless the prompt ends in whitespace)."""
    text = answer.strip() if prompt[-1:].isspace() else " " + answer.strip()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise UserError(f"answer {answer!r} has no tokens")
    return list(ids)


def encode(tok: Any, prompts: Sequence[Prompt], answers: Sequence[str], *, full: bool = False,
           device: torch.device | str = "cpu") -> Encoded:
    """Encode prompts (with their answers when ``full``) into one left-padded batch."""
    prompt_ids, sites, targets = [], [], []
    for p, a in zip(prompts, answers, strict=True):
        enc = tok(p.text, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
        lo, hi = p.subject_span
        subj = [i for i, (s, e) in enumerate(offsets) if e > s and e > lo and s < hi]
        ans = answer_ids(tok, p.text, a)
        prompt_ids.append(ids)
        sites.append([*subj, len(ids) - 1])
        targets.append(ans if full else ans[:1])
    n_answer = max(len(t) for t in targets)
    last = max(len(r) for r in prompt_ids) - 1  # every prompt ends here (left padding) ...
    width = last + n_answer  # ... and its answer tokens follow (right padding where an answer is shorter)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids_t = torch.full((len(prompt_ids), width), pad, dtype=torch.long)
    mask_t = torch.zeros(len(prompt_ids), width, dtype=torch.long)
    site_t = torch.zeros(len(prompt_ids), width, dtype=torch.bool)
    ans_t = torch.full((len(prompt_ids), n_answer), -1, dtype=torch.long)
    for i, (r, s, t) in enumerate(zip(prompt_ids, sites, targets, strict=True)):
        start = last + 1 - len(r)
        seq = r + t[:-1]
        ids_t[i, start:start + len(seq)] = torch.tensor(seq)
        mask_t[i, start:start + len(seq)] = 1
        site_t[i, [start + j for j in s]] = True
        ans_t[i, : len(t)] = torch.tensor(t)
    dev = torch.device(device)
    return Encoded(ids_t.to(dev), mask_t.to(dev), site_t.to(dev), ans_t.to(dev), n_answer)


def device_of(module: nn.Module) -> torch.device:
    """The device of a module's first parameter."""
    return next(module.parameters()).device


def answer_logprobs(module: nn.Module, enc: Encoded, start: Tensor | None = None) -> Tensor:
    """[B, A] log-probabilities of the answer tokens (0 where a row's answer is shorter). With ``start`` (the
    input of a block, from ``block_inputs``) the forward runs inside ``from_block`` and begins there."""
    pos = (enc.mask.cumsum(-1) - 1).clamp_min(0)
    inputs = {"input_ids": enc.ids} if start is None else {"inputs_embeds": start}
    out = module(**inputs, attention_mask=enc.mask, position_ids=pos, logits_to_keep=enc.n_answer, use_cache=False)
    logits = out.logits[:, -enc.n_answer:].float()
    logp = torch.log_softmax(logits, dim=-1)
    tgt = enc.answer.clamp_min(0)
    got = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    return torch.where(enc.answer >= 0, got, torch.zeros_like(got))


def top1(module: nn.Module, enc: Encoded) -> Tensor:
    """[B] the greedy next token after each prompt."""
    pos = (enc.mask.cumsum(-1) - 1).clamp_min(0)
    out = module(input_ids=enc.ids, attention_mask=enc.mask, position_ids=pos, logits_to_keep=enc.n_answer)
    return out.logits[:, -enc.n_answer].argmax(-1)


# ---------------------------------------------------------------------------------------------------- shortcut


def first_block(module: nn.Module, hooks: Sequence[str]) -> int | None:
    """The first decoder block every hook lies in or after, for models with ``model.layers`` (LLaMA and kin);
    None when the layers above it cannot be skipped."""
    layers = getattr(getattr(module, "model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList) or not hooks:
        return None
    found = [re.match(r"model\.layers\.(\d+)(\.|:|$)", h) for h in hooks]
    if not all(found):
        return None
    return min(int(m.group(1)) for m in found if m)


def _layers(module: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a LLaMA-style model (``module.model.layers``)."""
    layers = module.get_submodule("model.layers")
    assert isinstance(layers, nn.ModuleList)
    return layers


@torch.inference_mode()
def block_inputs(module: nn.Module, enc: Encoded, block: int) -> Tensor:
    """[B, T, d] the hidden states entering decoder block ``block`` (the forward stops there)."""
    got: dict[str, Tensor] = {}

    def pre(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        got["h"] = (args[0] if args else kwargs["hidden_states"]).detach()
        raise StopForward

    handle = _layers(module)[block].register_forward_pre_hook(pre, with_kwargs=True)
    try:
        pos = (enc.mask.cumsum(-1) - 1).clamp_min(0)
        module(input_ids=enc.ids, attention_mask=enc.mask, position_ids=pos, logits_to_keep=1, use_cache=False)
    except StopForward:
        pass
    finally:
        handle.remove()
    return got["h"]


@contextmanager
def from_block(module: nn.Module, block: int) -> Iterator[None]:
    """Inside the block the model runs decoder blocks ``block`` onwards only, on ``inputs_embeds`` that are that
    block's inputs: every forward below it is shared by all the ablations of one batch."""
    inner = module.get_submodule("model")
    layers = _layers(module)
    inner.layers = nn.ModuleList(list(layers)[block:])
    try:
        yield
    finally:
        inner.layers = layers


# ---------------------------------------------------------------------------------------------------- ablations


def feature_ablation(sae: SAE, sites: Tensor, ids: Tensor) -> Callable[[Any], Any]:
    """A hook function: the error-preserving ablation h ← h − Σ_j f_j(h) W_dec[j] of latents ``ids`` [B, n]
    (-1 = none) at the ``sites`` [B, T] of each row; the SAE's reconstruction error stays in h."""
    def fn(out: Any) -> Any:
        h = out[0] if isinstance(out, tuple | list) else out
        flat = h.reshape(-1, h.shape[-1])
        where = sites.reshape(-1).nonzero().squeeze(-1)
        rows = where // h.shape[1]
        sel = ids[rows]  # [S, n]
        f = sae.encode(flat.index_select(0, where))
        valid = (sel >= 0).to(f.dtype)
        fs = f.gather(1, sel.clamp_min(0)) * valid
        delta = torch.einsum("sn,snd->sd", fs, sae.W_dec[sel.clamp_min(0)])
        new = flat.index_add(0, where, -delta.to(flat.dtype)).reshape(h.shape)
        return type(out)((new, *out[1:])) if isinstance(out, tuple | list) else new

    return fn


def neuron_ablation(sites: Tensor, ids: Tensor) -> Callable[[Any], Any]:
    """A hook function for an MLP activation (``down_proj:input``): zero neurons ``ids`` [B, n] (-1 = none) at the
    ``sites`` [B, T] of each row."""
    def fn(a: Tensor) -> Tensor:
        keep = torch.ones(a.shape[0], a.shape[-1], dtype=a.dtype, device=a.device)
        keep.scatter_(1, ids.clamp_min(0), (ids < 0).to(a.dtype))
        return torch.where(sites.unsqueeze(-1), a * keep.unsqueeze(1), a)

    return fn


@contextmanager
def hooked(module: nn.Module, hooks: Sequence[tuple[str, Callable[[Any], Any]]]) -> Iterator[None]:
    """Install ``(path, fn)`` hooks for the duration of the block."""
    handles = [register_hook(module, path, fn) for path, fn in hooks]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


# ---------------------------------------------------------------------------------------------------- greedy check


@torch.inference_mode()
def greedy_answers(model: Any, prompts: Sequence[str], answers: Sequence[Sequence[str]], *, max_new_tokens: int = 8,
                   batch_size: int = 32) -> list[str | None]:
    """The accepted answer each prompt's greedy continuation starts with (None when it is wrong)."""
    gens = generate(model, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size)
    return [matches(g.text, tuple(a)) for g, a in zip(gens, answers, strict=True)]


@torch.inference_mode()
def text_nll(module: nn.Module, tok: Any, texts: Sequence[str], *, max_tokens: int = 128,
             batch_size: int = 8) -> tuple[float, int]:
    """Summed negative log-likelihood of ``texts`` (each cut to ``max_tokens``) and the number of tokens scored."""
    device = device_of(module)
    total, count = 0.0, 0
    for a in range(0, len(texts), batch_size):
        enc = tok(list(texts[a:a + batch_size]), return_tensors="pt", padding=True, padding_side="right",
                  truncation=True, max_length=max_tokens)
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        logits = module(input_ids=ids, attention_mask=mask).logits.float()
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
        m = mask[:, 1:].float()
        total += float((nll * m).sum())
        count += int(m.sum())
    return total, count

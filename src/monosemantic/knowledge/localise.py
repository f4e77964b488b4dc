"""Localising a fact in SAE features and MLP neurons (Chen et al., "The Knowledge Microscope", arXiv 2502.12483, §3).

One batched forward per set of prompts records, for every row:

- each SAE's latents at the row's sites (subject tokens and last prompt token), reduced by max over the sites:
  features are ranked by this activation;
- the MLP activations of one block (the input of ``mlp.down_proj``: act(gate) * up) at the sites, and with
  ``attribute`` their gradient of log P(answer): neurons are ranked by the attribution activation × gradient
  summed over the sites, Σ_t a_k(t) ∂log P/∂a_k(t), the first-order estimate of the drop in log P when neuron k is
  zeroed at those sites (the "knowledge neurons" baseline; a single backward per batch, rows are independent);
- the clean log P(answer) (first token, or the whole answer with ``full``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from monosemantic.knowledge.lm import Encoded, answer_logprobs, device_of, encode, hooked
from monosemantic.sae.core import SAE
from monosemantic.sources.datasets.facts import Prompt
from monosemantic.sources.hooks import StopForward


@dataclass
class Profile:
    """Per-prompt unit activations (and attributions) over a list of prompts."""

    features: dict[str, Tensor] = field(default_factory=dict)
    """SAE id -> [N, F] max over each row's sites of the latent activations."""
    neuron_max: Tensor | None = None
    """[N, d_mlp] max over the sites of each MLP activation."""
    neuron_min: Tensor | None = None
    """[N, d_mlp] min over the sites of each MLP activation."""
    attribution: Tensor | None = None
    """[N, d_mlp] Σ over the sites of activation × gradient of log P(answer) (with ``attribute``)."""
    logp: Tensor | None = None
    """[N] clean log P(answer) (with ``attribute``)."""


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Parameters without gradients for the block: the attribution backward then fills only the hooked
    activations' gradients, and leaves no ``.grad`` on the model."""
    was = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in was:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in was:
            p.requires_grad_(flag)


def _site_reduce(values: Tensor, rows: Tensor, n_rows: int, how: str) -> Tensor:
    fill = float("-inf") if how == "amax" else float("inf")
    out = torch.full((n_rows, values.shape[-1]), fill, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, rows.unsqueeze(-1).expand_as(values), values, how, include_self=True)


def profile(module: nn.Module, tok: Any, prompts: Sequence[Prompt], answers: Sequence[str],
            saes: Sequence[tuple[str, str, SAE]], neuron_hook: str | None, *, attribute: bool = False,
            full: bool = False, batch_size: int = 32) -> Profile:
    """Unit activations over ``prompts``; ``saes`` holds (id, hook path, SAE). Without ``attribute`` the forward
    stops after the deepest hook."""
    device = device_of(module)
    hooks = [h for _, h, _ in saes] + ([neuron_hook] if neuron_hook else [])
    acc = _Accumulator([i for i, _, _ in saes])
    for a in range(0, len(prompts), batch_size):
        enc = encode(tok, prompts[a:a + batch_size], answers[a:a + batch_size], full=full, device=device)
        seen: dict[str, Tensor] = {}
        fns = [(h, _grab(seen, h, False, attribute, hooks)) for _, h, _ in saes]
        if neuron_hook:
            fns.append((neuron_hook, _grab(seen, neuron_hook, True, attribute, hooks)))
        with hooked(module, fns), _frozen(module):
            lp = _forward(module, enc, attribute)
        if lp is not None:
            acc.logps.append(lp)
        with torch.no_grad():
            acc.add(enc, seen, saes, neuron_hook, attribute)
    return acc.profile(neuron_hook is not None, attribute)


def _grab(seen: dict[str, Tensor], path: str, is_neuron: bool, attribute: bool,
          hooks: Sequence[str]) -> Callable[[Any], Any]:
    """A hook function keeping the output at ``path`` in ``seen``; the neurons' activation becomes a leaf that
    receives the gradient when ``attribute``, and without it the forward stops once every hook has been seen."""
    def fn(out: Any) -> Any:
        h = out[0] if isinstance(out, tuple | list) else out
        if is_neuron and attribute:
            h = h.detach().requires_grad_(True)  # a leaf: the backward stops here and fills h.grad
            seen[path + "#n"] = h
            return h
        seen[path] = h.detach()
        if not attribute and all(k in seen for k in hooks):
            raise StopForward
        return None
    return fn


def _forward(module: nn.Module, enc: Encoded, attribute: bool) -> Tensor | None:
    """One batch through the hooked model: with ``attribute`` forward and backward of log P(answer) (returned),
    else a forward that may stop early."""
    if attribute:
        with torch.enable_grad():
            lp = answer_logprobs(module, enc).sum(-1)
            lp.sum().backward()
        return lp.detach().float().cpu()
    try:
        with torch.inference_mode():
            module(input_ids=enc.ids, attention_mask=enc.mask,
                   position_ids=(enc.mask.cumsum(-1) - 1).clamp_min(0), logits_to_keep=1)
    except StopForward:
        pass
    return None


class _Accumulator:
    """The per-batch pieces of a ``Profile``, reduced over each row's sites."""

    def __init__(self, sae_ids: Sequence[str]) -> None:
        self.features: dict[str, list[Tensor]] = {i: [] for i in sae_ids}
        self.nmax: list[Tensor] = []
        self.nmin: list[Tensor] = []
        self.attr: list[Tensor] = []
        self.logps: list[Tensor] = []

    def add(self, enc: Encoded, seen: dict[str, Tensor], saes: Sequence[tuple[str, str, SAE]],
            neuron_hook: str | None, attribute: bool) -> None:
        where = enc.sites.reshape(-1).nonzero().squeeze(-1)
        rows = where // enc.ids.shape[1]
        n = len(enc.ids)
        for sid, h, sae in saes:
            x = seen[h].reshape(-1, seen[h].shape[-1]).index_select(0, where)
            self.features[sid].append(_site_reduce(sae.encode(x).float(), rows, n, "amax").cpu())
        if not neuron_hook:
            return
        act = seen[neuron_hook + "#n" if attribute else neuron_hook]
        x = act.detach().reshape(-1, act.shape[-1]).index_select(0, where).float()
        self.nmax.append(_site_reduce(x, rows, n, "amax").cpu())
        self.nmin.append(_site_reduce(x, rows, n, "amin").cpu())
        if attribute:
            assert act.grad is not None
            g = act.grad.reshape(-1, act.shape[-1]).index_select(0, where).float()
            self.attr.append(torch.zeros(n, x.shape[-1]).index_add_(0, rows.cpu(), (x * g).cpu()))

    def profile(self, neurons: bool, attribute: bool) -> Profile:
        out = Profile({k: torch.cat(v) for k, v in self.features.items()})
        if neurons:
            out.neuron_max, out.neuron_min = torch.cat(self.nmax), torch.cat(self.nmin)
            if attribute:
                out.attribution = torch.cat(self.attr)
        if attribute:
            out.logp = torch.cat(self.logps)
        return out


def top_units(scores: Tensor, n: int) -> Tensor:
    """[N, n] indices of the n highest scores per row (ties broken by index)."""
    return scores.topk(min(n, scores.shape[-1]), dim=-1).indices


def random_units(scores: Tensor, top: Tensor, n: int, generator: torch.Generator, *,
                 active_only: bool) -> Tensor:
    """[N, n] random units per row, outside the row's ``top`` set; with ``active_only`` drawn among the units
    active at the row's sites (score > 0), padded with -1 where fewer are active."""
    out = torch.full((scores.shape[0], n), -1, dtype=torch.long)
    for i in range(scores.shape[0]):
        allowed = torch.ones(scores.shape[-1], dtype=torch.bool)
        allowed[top[i]] = False
        if active_only:
            allowed &= scores[i] > 0
        pool = allowed.nonzero().squeeze(-1)
        pick = pool[torch.randperm(len(pool), generator=generator)[:n]]
        out[i, : len(pick)] = pick
    return out

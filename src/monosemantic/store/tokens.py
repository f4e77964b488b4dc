"""Which rows an item contributes: every real token, the CLS token, a pooled vector, or K random tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from monosemantic.errors import UserError

TOKEN_MODES = "all, skip-first, patches, cls, mean, max or random-K (e.g. random-2)"


def parse_tokens(mode: str) -> tuple[str, int]:
    """'random-4' -> ('random', 4); the other modes -> (mode, 0)."""
    if mode in ("all", "skip-first", "patches", "cls", "mean", "max"):
        return mode, 0
    m = re.fullmatch(r"random-(\d+)", mode)
    if m and int(m.group(1)) > 0:
        return "random", int(m.group(1))
    raise UserError(f"unknown token selection {mode!r}; choose {TOKEN_MODES}")


@dataclass
class Rows:
    acts: dict[str, torch.Tensor]
    item: torch.Tensor
    position: torch.Tensor
    token: torch.Tensor | None


def select_rows(
    hidden: dict[str, torch.Tensor],
    mask: torch.Tensor | None,
    token_ids: torch.Tensor | None,
    mode: str,
    item_ids: np.ndarray,
    *,
    has_cls: bool,
    seed: int = 0,
) -> Rows:
    """Turn captured [B, T, d] outputs into store rows, the same rows for every hook."""
    kind, k = parse_tokens(mode)
    lengths = {h: t.shape[1] for h, t in hidden.items()}
    if kind in ("all", "skip-first", "patches", "random") and len(set(lengths.values())) > 1:
        raise UserError(f"hooks give different token counts ({lengths}); with --tokens {mode} extract them separately")
    any_h = next(iter(hidden.values()))
    B, T = any_h.shape[:2]
    valid = mask if mask is not None and mask.shape[1] == T else torch.ones(B, T, dtype=torch.bool)
    items = torch.as_tensor(item_ids, dtype=torch.int64)
    if kind == "cls":
        if not has_cls:
            raise UserError("this model has no CLS token; use --tokens mean, max, all or random-K")
        tok = token_ids[:, 0] if token_ids is not None else None
        return Rows({h: t[:, 0] for h, t in hidden.items()}, items, torch.zeros(B, dtype=torch.int32), tok)
    if kind in ("mean", "max"):
        pooled = {h: _pool(t, valid if t.shape[1] == T else None, kind) for h, t in hidden.items()}
        return Rows(pooled, items, torch.full((B,), -1, dtype=torch.int32), None)
    if kind == "patches" and not has_cls:  # patches: every token but the CLS token
        raise UserError("this model has no CLS token, so --tokens patches equals --tokens all; use all (or "
                            "skip-first to drop the first position)")
    if kind in ("patches", "skip-first"):
        # skip-first: a causal LM's first position is an attention sink whose norm can be 100x the others'
        valid = valid.clone()
        valid[:, 0] = False
    if kind == "random":
        valid = valid.clone()
        for b in range(B):
            real = torch.nonzero(valid[b]).flatten().numpy()
            if len(real) > k:
                keep = np.random.default_rng([seed, int(item_ids[b])]).choice(real, size=k, replace=False)
                valid[b] = False
                valid[b, torch.from_numpy(keep)] = True
    bi, ti = torch.nonzero(valid, as_tuple=True)
    tok = token_ids[bi, ti] if token_ids is not None and token_ids.shape[1] == T else None
    return Rows({h: t[bi, ti] for h, t in hidden.items()}, items[bi], ti.to(torch.int32), tok)


def _pool(t: torch.Tensor, valid: torch.Tensor | None, kind: str) -> torch.Tensor:
    if valid is None:
        return t.mean(1) if kind == "mean" else t.amax(1)
    if kind == "mean":
        m = valid.to(t.dtype).unsqueeze(-1)
        return (t * m).sum(1) / m.sum(1).clamp_min(1)
    return t.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)


def token_concepts(tokenizer: Any, text: str, spans: list[tuple[int, int, int]], max_length: int) -> list[int]:
    """The concept index of each token of ``text`` as a model tokenises it (-1 for none): a token takes the
    concept of the first character span ``(start, end, concept)`` it overlaps. Needs a fast tokenizer (offsets)."""
    if not getattr(tokenizer, "is_fast", False):
        raise UserError("per-token labels need a fast (Rust) tokenizer that reports character offsets")
    enc = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    out = []
    for a, b in enc["offset_mapping"]:
        hit = next((c for s, e, c in spans if b > a and a < e and b > s), -1)
        out.append(int(hit))
    return out

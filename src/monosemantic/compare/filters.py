"""Pair filters of Lan et al. (arXiv 2410.06981, §3.1), applied in this order: junk tokens, shared top tokens,
optionally one-to-one, then low correlation.

A feature's "top tokens" are the texts of the tokens (or words) at its top-5 activating positions. The reference
compares decoded token strings exactly; here they are compared with surrounding whitespace stripped, so that
" the" and "the" from two tokenizers count as the same token and a whitespace-only token counts as junk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from monosemantic.compare.pairing import Pairing, one_to_one
from monosemantic.errors import UserError

# junk tokens of the reference code, after stripping whitespace ("\n", " " and "" all become "")
JUNK = frozenset({".", "", "-", ",", "!", "?", "<|endoftext|>", "<bos>", "|bos|", "<pad>", "<eos>", "<s>", "</s>",
                  "<unk>", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "<|im_start|>", "<|im_end|>"})


def norm_token(text: str) -> str:
    return text.strip()


def is_junk(text: str) -> bool:
    return norm_token(text) in JUNK


def _check_tops(p: Pairing, top_a: Sequence[Sequence[str]], top_b: Sequence[Sequence[str]]) -> None:
    if len(top_b) != len(p.a_index):
        raise UserError(f"top tokens are given for {len(top_b)} B features but the pairing has {len(p.a_index)}")
    a, _ = p.pairs()
    if len(a) and int(a.max()) >= len(top_a):
        raise UserError(f"the pairing uses A feature {int(a.max())} but top tokens cover only {len(top_a)}")


def junk_filter(p: Pairing, top_a: Sequence[Sequence[str]], top_b: Sequence[Sequence[str]]) -> Pairing:
    """Drop a pair if either feature's top tokens include a junk token (punctuation, whitespace, special)."""
    _check_tops(p, top_a, top_b)
    junk_a = np.array([any(is_junk(t) for t in toks) for toks in top_a] or [False], dtype=bool)
    junk_b = np.array([any(is_junk(t) for t in toks) for toks in top_b], dtype=bool)
    a = np.where(p.kept, p.a_index, 0)
    return p.keep(~junk_b & ~junk_a[a])


def shared_token_filter(
    p: Pairing, top_a: Sequence[Sequence[str]], top_b: Sequence[Sequence[str]], min_shared: int = 1
) -> Pairing:
    """Keep a pair only if the two features' top-token sets share at least ``min_shared`` tokens."""
    _check_tops(p, top_a, top_b)
    keep = np.zeros(len(p.a_index), dtype=bool)
    a_idx, b_idx = p.pairs()
    for a, b in zip(a_idx.tolist(), b_idx.tolist(), strict=True):
        shared = {norm_token(t) for t in top_a[int(a)]} & {norm_token(t) for t in top_b[int(b)]}
        keep[b] = len(shared) >= min_shared
    return p.keep(keep)


def low_corr_filter(p: Pairing, min_corr: float = 0.1) -> Pairing:
    """Keep a pair only if its correlation is above ``min_corr`` (0.1 for full spaces, 0 for subspaces)."""
    with np.errstate(invalid="ignore"):
        return p.keep(p.corr > min_corr)


def apply_filters(
    p: Pairing,
    top_a: Sequence[Sequence[str]] | None,
    top_b: Sequence[Sequence[str]] | None,
    *,
    junk: bool = True,
    shared: bool = True,
    one_to_one_how: Literal["first", "best"] | None = None,
    min_corr: float = 0.1,
) -> tuple[Pairing, dict[str, int]]:
    """All filters in the reference order; returns the filtered pairing and the pairs left after each step."""
    counts = {"paired": p.n_pairs}
    if junk or shared:
        if top_a is None or top_b is None:
            raise UserError("the junk and shared-token filters need each feature's top tokens (a text store)")
        if junk:
            p = junk_filter(p, top_a, top_b)
            counts["after_junk"] = p.n_pairs
        if shared:
            p = shared_token_filter(p, top_a, top_b)
            counts["after_shared_tokens"] = p.n_pairs
    if one_to_one_how is not None:
        p = one_to_one(p, one_to_one_how)
        counts["after_one_to_one"] = p.n_pairs
    p = low_corr_filter(p, min_corr)
    counts["kept"] = p.n_pairs
    return p, counts

"""Align two activation stores on the same text: token by token, or by words across different tokenizers.

Lan et al. (arXiv 2410.06981) pair features over tokens, which needs both models to share a tokenizer. Here two
stores over the same texts are aligned on *words* when their tokenizers differ: each token is located in the item's
text by its characters, and a word's activation is the max (or the last) of the activations of the tokens
overlapping it. Words that either side lost to truncation are left out.

Token positions are recovered from the vocabulary strings the store keeps (byte-level BPE ``Ġ``, SentencePiece
``▁`` and WordPiece ``##`` conventions), so no tokenizer needs to be loaded. Matching ignores whitespace, case and
accents (uncased WordPiece lowercases and strips accents); a token that cannot be placed (a special token, half of
a multi-byte character) is skipped, and matching resumes at the next token that can.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import numpy as np

from monosemantic.errors import UserError

WORD = re.compile(r"\w+|[^\w\s]")
RESYNC = 16  # how far ahead (in non-space characters) a token may be found after unplaceable ones


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode table (byte-level BPE vocabularies are written in it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


Scheme = Literal["bytelevel", "sentencepiece", "wordpiece", "plain"]
_MARKS: dict[str, Scheme] = {"Ġ": "bytelevel", "▁": "sentencepiece", "##": "wordpiece"}
"""The word-start (or continuation) mark of each tokenizer family's vocabulary."""


def vocab_scheme(vocab: list[str]) -> Scheme:
    """The tokenizer family a vocabulary is written in, from the marks its entries start with."""
    sample = vocab[: 50000]
    counts = {s: sum(t.startswith(s) for t in sample) for s in _MARKS}
    best = max(counts, key=lambda s: counts[s])
    if counts[best] < max(10, len(sample) // 100):
        return "plain"
    return _MARKS[best]


def surfaces(vocab: list[str]) -> list[str]:
    """The text each vocabulary entry stands for, with a leading space where the token starts a new word."""
    scheme = vocab_scheme(vocab)
    if scheme == "bytelevel":
        dec = _byte_decoder()
        out = []
        for t in vocab:
            if all(ch in dec for ch in t):
                out.append(bytes(dec[ch] for ch in t).decode("utf-8", errors="replace"))
            else:
                out.append(t)  # a special token written as itself
        return out
    if scheme == "sentencepiece":
        byte = re.compile(r"<0x([0-9A-Fa-f]{2})>")
        out = []
        for t in vocab:
            m = byte.fullmatch(t)
            if m:  # a byte-fallback token: ASCII stands for itself, a piece of a longer character is a placeholder
                code = int(m.group(1), 16)
                out.append(chr(code) if code < 128 else "\ufffd")
            else:
                out.append(t.replace("▁", " "))
        return out
    if scheme == "wordpiece":
        return [t[2:] if t.startswith("##") else " " + t for t in vocab]
    return list(vocab)


def _normalise(text: str) -> tuple[str, np.ndarray]:
    """Lowercased, accent- and space-free characters of ``text`` and the index in ``text`` of each."""
    chars, where = [], []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        for c in unicodedata.normalize("NFKD", ch):
            if not unicodedata.combining(c):
                chars.append(c.lower())
                where.append(i)
    return "".join(chars), np.array(where, dtype=np.int64)


def token_offsets(text: str, token_texts: list[str]) -> np.ndarray:
    """``[n, 2]`` character spans ``[start, end)`` of each token in ``text``; ``-1`` for tokens not placed.

    Tokens that cannot be placed on their own (the byte pieces of one multi-byte character) but sit between two
    placed tokens take the characters skipped between those."""
    norm, where = _normalise(text)
    out = np.full((len(token_texts), 2), -1, dtype=np.int64)
    cursor, pending = 0, []
    for i, tok in enumerate(token_texts):
        s, _ = _normalise(tok)
        at = norm.find(s, cursor, cursor + RESYNC + len(s)) if s else -1
        if at < 0:
            if tok:
                pending.append(i)
            continue
        if pending and at > cursor:
            out[pending] = where[cursor], where[at - 1] + 1
        pending = []
        out[i] = where[at], where[at + len(s) - 1] + 1
        cursor = at + len(s)
    return out


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """Words (runs of letters and digits) and single punctuation marks, as (start, end, text)."""
    return [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]


def words_to_tokens(spans: list[tuple[int, int, str]], offsets: np.ndarray) -> list[list[int]]:
    """For each word, the tokens overlapping it; empty for words past the last placed token (truncated)."""
    placed = np.flatnonzero(offsets[:, 0] >= 0)
    last_end = int(offsets[placed, 1].max()) if len(placed) else -1
    starts, ends = offsets[placed, 0], offsets[placed, 1]
    out = []
    for a, b, _ in spans:
        if b > last_end:
            out.append([])
            continue
        hit = placed[(starts < b) & (ends > a)]
        out.append(hit.tolist())
    return out


@dataclass
class Alignment:
    """Units (tokens or words) seen by both stores: unit u pools store rows ``rows_x[group_x == u]`` of side x."""

    unit: Literal["token", "word"]
    rows_a: np.ndarray
    group_a: np.ndarray
    rows_b: np.ndarray
    group_b: np.ndarray
    texts: list[str]
    """The unit's text: a token's surface (with its leading space) or a word."""
    item: np.ndarray
    """[n_units] the item each unit comes from (units of an item are consecutive)."""
    n_items: int

    @property
    def n_units(self) -> int:
        return len(self.item)

    def context(self, u: int, width: int = 2) -> str:
        """The text of units ``u - width … u + width`` of the same item."""
        lo, hi = max(0, u - width), min(self.n_units, u + width + 1)
        keep = [v for v in range(lo, hi) if self.item[v] == self.item[u]]
        joiner = "" if self.unit == "token" else " "
        return joiner.join(self.texts[v] for v in keep).strip()


def align_items(
    texts: list[str],
    tokens_a: list[np.ndarray],
    tokens_b: list[np.ndarray],
    vocab_a: list[str] | None,
    vocab_b: list[str] | None,
    rows_a: list[np.ndarray],
    rows_b: list[np.ndarray],
    unit: Literal["auto", "token", "word"] = "auto",
) -> Alignment:
    """Align item by item. ``tokens_x[i]`` are the token ids of item i in store x, ``rows_x[i]`` their store rows.

    ``auto`` aligns tokens when both stores share a vocabulary and tokenised every item alike (up to truncation),
    and words otherwise."""
    same_vocab = vocab_a is not None and vocab_a == vocab_b
    if unit == "auto":
        unit = "token" if same_vocab and all(_prefix(a, b) for a, b in zip(tokens_a, tokens_b, strict=True)) else "word"
    if unit == "token":
        if not same_vocab:
            raise UserError("token-by-token alignment needs both stores to share one tokenizer; these vocabularies "
                            "differ, so use --unit word (or auto)")
        return _align_tokens(texts, tokens_a, tokens_b, vocab_a or [], rows_a, rows_b)
    if vocab_a is None or vocab_b is None:
        raise UserError("word alignment needs each store's vocabulary (vocab.json), which text stores from "
                        "`monosemantic extract` hold")
    return _align_words(texts, tokens_a, tokens_b, surfaces(vocab_a), surfaces(vocab_b), rows_a, rows_b)


def _prefix(a: np.ndarray, b: np.ndarray) -> bool:
    n = min(len(a), len(b))
    return bool(np.array_equal(a[:n], b[:n]))


def _align_tokens(texts: list[str], tokens_a: list[np.ndarray], tokens_b: list[np.ndarray], vocab: list[str],
                  rows_a: list[np.ndarray], rows_b: list[np.ndarray]) -> Alignment:
    surf = surfaces(vocab)
    ra, rb, item, words = [], [], [], []
    for i, (ta, tb) in enumerate(zip(tokens_a, tokens_b, strict=True)):
        if not _prefix(ta, tb):
            first = int(np.flatnonzero(ta[: min(len(ta), len(tb))] != tb[: min(len(ta), len(tb))])[0])
            raise UserError(f"item {i} is tokenised differently by the two stores (first at token {first}), so "
                            "tokens cannot be paired one to one; use --unit word")
        n = min(len(ta), len(tb))
        ra.append(rows_a[i][:n])
        rb.append(rows_b[i][:n])
        item.extend([i] * n)
        words.extend(surf[t] for t in ta[:n])
    rows_a_all = np.concatenate(ra) if ra else np.empty(0, dtype=np.int64)
    rows_b_all = np.concatenate(rb) if rb else np.empty(0, dtype=np.int64)
    units = np.arange(len(rows_a_all))
    return Alignment("token", rows_a_all, units, rows_b_all, units.copy(), words, np.array(item, dtype=np.int64),
                     len(texts))


def _align_words(texts: list[str], tokens_a: list[np.ndarray], tokens_b: list[np.ndarray], surf_a: list[str],
                 surf_b: list[str], rows_a: list[np.ndarray], rows_b: list[np.ndarray]) -> Alignment:
    ra, ga, rb, gb, item, words = [], [], [], [], [], []
    for i, text in enumerate(texts):
        spans = word_spans(text)
        wa = words_to_tokens(spans, token_offsets(text, [surf_a[t] for t in tokens_a[i]]))
        wb = words_to_tokens(spans, token_offsets(text, [surf_b[t] for t in tokens_b[i]]))
        for (_, _, word), ta, tb in zip(spans, wa, wb, strict=True):
            if not ta or not tb:
                continue
            u = len(words)
            ra.extend(rows_a[i][ta].tolist())
            ga.extend([u] * len(ta))
            rb.extend(rows_b[i][tb].tolist())
            gb.extend([u] * len(tb))
            item.append(i)
            words.append(word)
    as_array = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    return Alignment("word", as_array(ra), as_array(ga), as_array(rb), as_array(gb), words, as_array(item),
                     len(texts))

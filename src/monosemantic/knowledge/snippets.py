"""The top-activating token contexts of SAE features, read from an activation store of the SAE's hook: what the
fact cards of a knowledge run show beside each localised feature."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from monosemantic.sae.core import SAE
from monosemantic.store import ActivationStore


def top_snippets(store_path: Path, saes: Sequence[tuple[str, str, SAE]], wanted: dict[str, set[int]], *,
                 max_rows: int = 20000, per_feature: int = 3, context: int = 8) -> dict[str, dict[int, list[str]]]:
    """SAE id -> feature -> its top-activating token contexts (``[[token]]`` marks the token, the activation in
    brackets), for the ``wanted`` features of every SAE whose hook the store holds, from up to ``max_rows`` evenly
    spaced rows."""
    store = ActivationStore.open(store_path)
    out: dict[str, dict[int, list[str]]] = {}
    for sid, hook, sae in saes:
        if hook not in store.hooks or not wanted.get(sid):
            continue
        feats = torch.tensor(sorted(wanted[sid]))
        rows = np.linspace(0, store.n_rows - 1, min(max_rows, store.n_rows)).astype(np.int64)
        best = _activations(store, hook, sae, rows, feats)
        tokens_cache: dict[int, list[str]] = {}
        res: dict[int, list[str]] = {}
        for c, f in enumerate(feats.tolist()):
            vals, idx = best[:, c].topk(min(per_feature, len(rows)))
            res[f] = _contexts(store, rows, vals.tolist(), idx.tolist(), tokens_cache, context)
        out[sid] = res
    return out


@torch.no_grad()
def _activations(store: ActivationStore, hook: str, sae: SAE, rows: np.ndarray, feats: torch.Tensor) -> torch.Tensor:
    """[rows, features] the SAE's activations of ``feats`` on the store's ``rows``."""
    best = torch.full((len(rows), len(feats)), 0.0)
    for a in range(0, len(rows), 4096):
        x = store.gather(hook, rows[a:a + 4096]).to(sae.W_dec.device)
        best[a:a + len(x)] = sae.encode(x).index_select(-1, feats.to(x.device)).float().cpu()
    return best


def _contexts(store: ActivationStore, rows: np.ndarray, vals: list[float], idx: list[int],
              tokens_cache: dict[int, list[str]], context: int) -> list[str]:
    """The token contexts of the sampled rows ``rows[idx]`` where the feature fired (``vals`` > 0)."""
    items, pos = store.item_index, store.positions
    texts = []
    for v, i in zip(vals, idx, strict=True):
        if v <= 0:
            break
        row = int(rows[i])
        item, p = int(items[row]), int(pos[row])
        toks = tokens_cache.setdefault(item, store.item_tokens(item))
        if not toks:
            continue
        # stored positions index the item's tokens; skip-first stores keep position numbers
        k = min(max(p - int(pos[items == item].min()), 0), len(toks) - 1)
        left = "".join(toks[max(0, k - context):k]).replace("Ġ", " ").replace("Ċ", " ")
        mid = toks[k].replace("Ġ", " ").replace("Ċ", " ")
        right = "".join(toks[k + 1:k + 1 + context // 2]).replace("Ġ", " ").replace("Ċ", " ")
        texts.append(f"{left}[[{mid}]]{right} ({v:.2f})")
    return texts

"""Reading the compare stage's inputs: two stores over the same texts, and SAEs that read the stores' hooks.

Everything that could make a comparison meaningless is refused here, before any activation is encoded: stores over
different texts (or a different number of items), SAEs of a hook the store does not hold or of another width.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from monosemantic.compare.align import Alignment, align_items
from monosemantic.errors import UserError
from monosemantic.sae import SAE
from monosemantic.store import ActivationStore, nonfinite


@dataclass
class UnitSet:
    """One set of units of one side: an SAE's features, or the hook's raw neurons (``sae`` is None)."""

    name: str
    hook: str
    sae: SAE | None
    width: int
    path: Path | None

    @property
    def kind(self) -> str:
        return "neurons" if self.sae is None else "sae"

    def decoder(self) -> np.ndarray | None:
        return None if self.sae is None else self.sae.W_dec.detach().double().numpy()

    def encode(self, x: torch.Tensor, activation: str) -> torch.Tensor:
        if self.sae is None:
            return x
        with torch.no_grad():
            if activation == "pre_topk":  # dense ReLU pre-activations, what the reference pairs for Pythia
                return torch.relu(self.sae.pre_acts(x.to(self.sae.W_enc.dtype)))
            return self.sae.encode(x)


def expand_saes(paths: list[Path], side: str) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "cfg.json").is_file():
            out.append(p)
        elif p.is_dir() and (subs := sorted((q for q in p.iterdir()
                                             if (q / "cfg.json").is_file() and not q.name.startswith(".")),
                                            key=_natural)):
            out.extend(subs)
        else:
            raise UserError(f"--{side} {p} is not an SAE folder (no cfg.json) nor a folder of SAE folders")
    return out


def _natural(p: Path) -> list[Any]:
    """Sort key putting L3 before L15 (layer folders read in layer order in the grid)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def sae_hook(path: Path) -> str | None:
    """The hook an SAE was trained on, from its cfg.json (ours and SAELens' ``hook_name``)."""
    try:
        cfg = json.loads((path / "cfg.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    meta = cfg.get("metadata") or {}
    return cfg.get("hook_name") or meta.get("hook_name")


def load_side(paths: list[Path], store: ActivationStore, side: str, neurons: bool) -> list[UnitSet]:
    """The SAEs of one side, each checked against the store; plus one raw-neuron set per hook they read."""
    sets: list[UnitSet] = []
    for p in expand_saes(paths, side):
        hook = sae_hook(p)
        if hook is None:
            if len(store.hooks) != 1:
                raise UserError(f"SAE {p} does not record its hook and the store {store.root} holds several "
                                f"({', '.join(store.hooks)}); give a store of its hook only")
            hook = store.hooks[0]
        elif hook not in store.hooks:
            raise UserError(f"SAE {p} was trained on hook {hook!r} but the store {store.root} holds "
                            f"{', '.join(store.hooks)}; give the store of that hook (SAEs of mismatched hooks)")
        sae = SAE.load(p)
        if sae.cfg.d_in != store.width(hook):
            raise UserError(f"SAE {p} reads width {sae.cfg.d_in} but hook {hook!r} of {store.root} has width "
                            f"{store.width(hook)}; give the store the SAE was trained on")
        sets.append(UnitSet(p.name, hook, sae, int(sae.cfg.d_sae), p))
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise UserError(f"two SAEs of side {side.upper()} share a folder name ({', '.join(names)}); rename one")
    if neurons:
        for hook in dict.fromkeys(s.hook for s in sets):
            sets.append(UnitSet(f"neurons:{hook}", hook, None, store.width(hook), None))
    return sets


def _texts(store: ActivationStore, label: str) -> list[str]:
    texts = []
    for i, rec in enumerate(store.items):
        text = rec.get("text")
        if rec.get("kind") != "text" or not isinstance(text, str):
            raise UserError(f"store {label} ({store.root}) is not a text store (item {i} has no text); compare "
                            "pairs features over the same texts")
        texts.append(text)
    return texts


def _rows_by_item(store: ActivationStore, n_items: int) -> list[np.ndarray]:
    if (store.positions < 0).any():
        raise UserError(f"store {store.root} holds pooled rows (tokens={store.manifest.tokens}); pairing needs one "
                        "row per token: extract with --tokens all")
    item = store.item_index
    order = np.lexsort((store.positions, item))
    bounds = np.searchsorted(item[order], np.arange(n_items + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n_items)]


def align_stores(a: ActivationStore, b: ActivationStore, unit: Literal["auto", "token", "word"],
                 max_items: int | None) -> Alignment:
    """Align the two stores' rows, refusing stores over different texts."""
    texts_a, texts_b = _texts(a, "A"), _texts(b, "B")
    n = min(len(texts_a), len(texts_b))
    if max_items is not None:
        n = min(n, max_items)
    if len(texts_a) != len(texts_b) and max_items is None:
        raise UserError(f"store A has {len(texts_a)} items and store B {len(texts_b)}; extract both from the same "
                        "data (or pass --max-items to compare the items they share)")
    for i in range(n):
        if texts_a[i] != texts_b[i]:
            raise UserError(f"the stores hold different texts (item {i} differs: {texts_a[i][:40]!r} vs "
                            f"{texts_b[i][:40]!r}); pairing needs activations on the same texts")
    if a.token_ids is None or b.token_ids is None:
        raise UserError("a store has no token ids; compare needs text stores written by `monosemantic extract`")
    rows_a, rows_b = _rows_by_item(a, n), _rows_by_item(b, n)
    toks_a = [a.token_ids[r].astype(np.int64) for r in rows_a]
    toks_b = [b.token_ids[r].astype(np.int64) for r in rows_b]
    al = align_items(texts_a[:n], toks_a, toks_b, a.vocab, b.vocab, rows_a, rows_b, unit)
    if al.n_units < 3:
        raise UserError(f"only {al.n_units} {al.unit}s are seen by both stores; correlations need more shared text")
    return al


def pooled_chunk(store: ActivationStore, hook: str, rows: np.ndarray, group: np.ndarray, lo: int, hi: int,
                 units: list[UnitSet], activation: str, pool: str) -> list[torch.Tensor]:
    """Activations of units ``lo:hi`` for every set of one hook: encoded per token, then pooled per unit."""
    a, b = np.searchsorted(group, [lo, hi])
    r, g = rows[a:b], torch.from_numpy(group[a:b] - lo)
    x = store.gather(hook, r)
    if (bad := nonfinite(x)) is not None:
        row = int(r[int(bad.any(1).nonzero()[0, 0])])
        raise UserError(f"{store.root}: hook {hook!r} holds NaN or infinite values (first at row {row}); "
                        "re-extract the store")
    out = []
    for us in units:
        acts = us.encode(x, activation).float()
        if pool == "last" or len(g) == hi - lo:  # one row per unit: nothing to pool
            last = torch.searchsorted(g, torch.arange(hi - lo), right=True) - 1
            out.append(acts[last])
            continue
        pooled = torch.full((hi - lo, acts.shape[1]), -torch.inf)
        pooled.scatter_reduce_(0, g[:, None].expand_as(acts), acts, "amax", include_self=True)
        out.append(pooled)
    return out

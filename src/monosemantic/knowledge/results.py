"""Writing a knowledge run: ``knowledge.json`` (summaries and per-fact cards), ``ablation.csv`` (one row per prompt
and condition), ``units.csv`` (the related-vs-unrelated test per unit), ``edits.csv`` (one row per erased fact and
method), ``facts.csv`` (the facts kept) and, with ``--save-patches``, the edits as patches. The folder is built
under a temporary name and swapped in whole; the command adds ``knowledge.html`` (the report section)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _clean(x: Any) -> Any:
    """JSON-safe: NaN and infinities become None; numpy scalars plain numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("", encoding="utf-8")
        return
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()})


def snippets(store_path: Path, saes: Sequence[tuple[str, str, Any]], wanted: dict[str, set[int]], *,
             max_rows: int = 20000, per_feature: int = 3, context: int = 8) -> dict[str, dict[int, list[str]]]:
    """The top-activating token contexts of the ``wanted`` features of every SAE whose hook the store holds
    (``[[token]]`` marks the token), from up to ``max_rows`` evenly spaced rows."""
    from monosemantic.store import ActivationStore

    store = ActivationStore.open(store_path)
    out: dict[str, dict[int, list[str]]] = {}
    for sid, hook, sae in saes:
        if hook not in store.hooks or not wanted.get(sid):
            continue
        feats = torch.tensor(sorted(wanted[sid]))
        rows = np.linspace(0, store.n_rows - 1, min(max_rows, store.n_rows)).astype(np.int64)
        best = torch.full((len(rows), len(feats)), 0.0)
        with torch.no_grad():
            for a in range(0, len(rows), 4096):
                x = store.gather(hook, rows[a:a + 4096]).to(sae.W_dec.device)
                best[a:a + len(x)] = sae.encode(x).index_select(-1, feats.to(x.device)).float().cpu()
        items, pos = store.item_index, store.positions
        tokens_cache: dict[int, list[str]] = {}
        res: dict[int, list[str]] = {}
        for c, f in enumerate(feats.tolist()):
            vals, idx = best[:, c].topk(min(per_feature, len(rows)))
            texts = []
            for v, i in zip(vals.tolist(), idx.tolist(), strict=True):
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
            res[f] = texts
        out[sid] = res
    return out


def cards(exp: Any, n_cards: int, snips: dict[str, dict[int, list[str]]]) -> list[dict[str, Any]]:
    """Per-fact cards: the edit prompt, the answer, its probability, the top features per site (with their
    top-activating snippets when a store was given) and the top neurons."""
    out = []
    n_max = max(exp.cfg.n)
    dp = {(r["fact"], r["units"], r["control"]): r["delta_prob"] for r in exp.ablation
          if r["template"] == 0 and r["n"] == n_max}
    for j, f in enumerate(exp.facts[:n_cards]):
        r = exp.own[j]
        _, prompt, answer = exp.rows[r]
        card: dict[str, Any] = {"subject": f.subject, "relation": f.relation, "answer": answer,
                                "prompt": prompt.text, "p": float(exp.prof.logp[r].exp()), "features": {},
                                "delta_prob": {u: dp.get((j, u, False)) for u in
                                               [s for s, _, _ in exp.saes] + ["neurons"]}}
        for sid, _, _ in exp.saes:
            acts = exp.prof.features[sid][r]
            top = acts.topk(5)
            card["features"][sid] = [
                {"id": int(i), "activation": float(v), "snippets": snips.get(sid, {}).get(int(i), [])}
                for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True) if v > 0]
        attr = exp.prof.attribution[r]
        top = attr.topk(5)
        card["neurons"] = [{"id": int(i), "attribution": float(v)}
                           for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]
        out.append(card)
    return out


def write_results(cfg: Any, result: dict[str, Any], exp: Any) -> Path:
    """Write knowledge.json, the CSVs and knowledge.html into ``cfg.out`` (staged, then swapped in)."""
    from monosemantic.files import staged

    snips: dict[str, dict[int, list[str]]] = {}
    if cfg.acts is not None:
        wanted: dict[str, set[int]] = {}
        for j in range(min(cfg.cards, len(exp.facts))):
            for sid, _, _ in exp.saes:
                acts = exp.prof.features[sid][exp.own[j]]
                wanted.setdefault(sid, set()).update(int(i) for i in acts.topk(5).indices if acts[i] > 0)
        snips = snippets(Path(cfg.acts), exp.saes, wanted)
    result["cards"] = cards(exp, cfg.cards, snips)
    result["sae_paths"] = [str(Path(p).resolve()) for p in cfg.sae]
    clean = _clean(result)
    with staged(cfg.out) as tmp:
        (tmp / "knowledge.json").write_text(json.dumps(clean, indent=1, allow_nan=False), encoding="utf-8")
        _csv(tmp / "ablation.csv", exp.ablation)
        _csv(tmp / "units.csv", exp.unit_test_rows())
        _csv(tmp / "edits.csv", exp.edits)
        _csv(tmp / "facts.csv", [{"subject": f.subject, "relation": f.relation, "answers": list(f.answers),
                                  "group": f.group, "prompt": f.prompts[0].text} for f in exp.facts])
        for k, patch in enumerate(exp.patches):
            method = patch.meta["method"].replace(" ", "").replace("(", "-").replace(")", "")
            patch.save(tmp / "patches" / f"{k:03d}-{method}")
    result.clear()
    result.update(clean)
    return Path(cfg.out)

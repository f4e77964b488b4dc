"""`monosemantic compare`: pair SAE features of two stores over the same texts and score their geometry.

For every pair (an A set, a B set) of a layer × layer grid: stream the aligned units once, accumulate the
cross moments, pair B→A by correlation, filter (junk, shared top tokens, optional one-to-one, low correlation),
then SVCCA (both modes), RSA, linear CKA and Procrustes of the paired decoder rows against permutation nulls and
a random-subset baseline, plus per-concept semantic subspaces (Lan et al., arXiv 2410.06981, §3-4). Raw neurons
are paired the same way as a baseline.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from monosemantic.compare.concepts import load_concepts, members
from monosemantic.compare.filters import apply_filters
from monosemantic.compare.inputs import UnitSet, align_stores, load_side, pooled_chunk
from monosemantic.compare.matching import decoder_matching
from monosemantic.compare.pairing import (
    FLOAT64_MAX_ENTRIES,
    CrossMoments,
    Pairing,
    TopKActs,
    _is_sparse,
    _to_topk,
    one_to_one,
)
from monosemantic.compare.similarity import (
    linear_cka,
    permutation_test,
    procrustes_residual,
    random_subset_baseline,
)
from monosemantic.errors import UserError
from monosemantic.files import check_out, staged
from monosemantic.store import ActivationStore

RESULT_NAME = "compare.json"
TOP = 5
MIN_PAIRS = 3
SUBSPACE_DRAWS = 20  # random subsets per concept: small, so cheap, but a grid has many concepts × cells


@dataclass(frozen=True)
class CompareConfig:
    a: list[Path]
    """SAE folder(s) of model A (a folder of SAE folders counts as all of them); several give a layer grid."""
    acts_a: Path
    """Activation store of model A (tokens=all) holding the hooks of the A SAEs."""
    b: list[Path]
    """SAE folder(s) of model B."""
    acts_b: Path
    """Activation store of model B over the same texts as --acts-a."""
    out: Path
    """Folder for compare.json, grid.csv, pairs.csv and compare.html."""
    pairing: Literal["many_to_one", "one_to_one_first", "one_to_one_best", "hungarian"] = "many_to_one"
    """How B features get A partners: each B feature's best A feature (the paper), one-to-one after the filters
    (first pair in B order, or best), or the Hungarian matching of largest summed correlation."""
    unit: Literal["auto", "token", "word"] = "auto"
    """Align the stores token by token (same tokenizer) or by words (any two tokenizers); auto picks."""
    pool: Literal["max", "last"] = "max"
    """Word alignment: a word's activation is the max over its tokens, or its last token's."""
    activation: Literal["encoded", "pre_topk"] = "encoded"
    """Correlate the SAE's sparse outputs, or its dense ReLU pre-activations (before TopK)."""
    min_corr: float = 0.1
    """Low-correlation filter: keep pairs whose correlation is above this."""
    junk_filter: bool = True
    """Drop pairs where a feature's top-5 tokens include punctuation, whitespace or a special token."""
    shared_tokens: bool = True
    """Keep only pairs whose two features share at least one top-5 token."""
    n_perm: int = 100
    """Shuffles of the pairing for the full-space permutation nulls."""
    n_perm_concepts: int = 1000
    """Shuffles for each semantic subspace."""
    baseline_draws: int = 3
    """Random-subset baseline: draws of as many random features as there are kept pairs."""
    concepts: Path | None = None
    """TOML or JSON file of concept sets (name = [keywords]) instead of the paper's eight."""
    neurons: bool = True
    """Also pair the raw neurons of each hook, as a baseline."""
    decoder_match: bool = True
    """Also match the two SAEs' whole decoders one-to-one by |cos| (Hungarian), where both write into one space
    (decoders of one width), against the same matching to random directions."""
    max_items: int | None = None
    """Use only the first N items shared by both stores."""
    chunk_units: int = 2048
    """Aligned units (tokens or words) encoded at a time."""
    seed: int = 0
    """Seed of the permutations and random subsets."""
    overwrite: bool = False
    """Replace an existing --out folder."""
    extra: dict[str, Any] = field(default_factory=dict)
    """(Python API only) free-form notes stored in compare.json."""


def _validate(cfg: CompareConfig) -> None:
    for flag, value in (("--n-perm", cfg.n_perm), ("--n-perm-concepts", cfg.n_perm_concepts),
                        ("--chunk-units", cfg.chunk_units), ("--baseline-draws", cfg.baseline_draws)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{flag} must be a positive whole number; got {value!r}")
    if not -1 <= cfg.min_corr < 1:
        raise UserError(f"--min-corr must be a correlation in [-1, 1); got {cfg.min_corr}")
    if cfg.max_items is not None and cfg.max_items < 1:
        raise UserError(f"--max-items must be at least 1; got {cfg.max_items}")
    if not cfg.a or not cfg.b:
        raise UserError("give at least one SAE per side (--a and --b)")


def compare(cfg: CompareConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run the comparison described by ``cfg``; write and return the result."""
    _validate(cfg)
    inputs = [cfg.acts_a, cfg.acts_b, *cfg.a, *cfg.b, *([cfg.concepts] if cfg.concepts else [])]
    check_out(cfg.out, what="a compare folder", marker=RESULT_NAME, overwrite=cfg.overwrite, inputs=inputs)
    concepts = load_concepts(cfg.concepts)
    store_a, store_b = ActivationStore.open(cfg.acts_a), ActivationStore.open(cfg.acts_b)
    sets_a = load_side(cfg.a, store_a, "a", cfg.neurons)
    sets_b = load_side(cfg.b, store_b, "b", cfg.neurons)
    al = align_stores(store_a, store_b, cfg.unit, cfg.max_items)
    cells = [(i, j) for i, sa in enumerate(sets_a) for j, sb in enumerate(sets_b) if sa.kind == sb.kind]
    _check_memory([(sets_a[i].width, sets_b[j].width) for i, j in cells])
    moments = {(i, j): CrossMoments(sets_a[i].width, sets_b[j].width) for i, j in cells}
    tops_a = [_TopUnits(s.width) for s in sets_a]
    tops_b = [_TopUnits(s.width) for s in sets_b]
    hooks_a = list(dict.fromkeys(s.hook for s in sets_a))
    hooks_b = list(dict.fromkeys(s.hook for s in sets_b))
    n = al.n_units
    same_rows = (store_a.root.resolve() == store_b.root.resolve() and np.array_equal(al.rows_a, al.rows_b)
                 and np.array_equal(al.group_a, al.group_b))
    bar = tqdm(total=n, desc="compare", unit=al.unit, disable=not progress, dynamic_ncols=True)
    for lo in range(0, n, cfg.chunk_units):
        hi = min(lo + cfg.chunk_units, n)
        acts_a = _side_chunk(store_a, hooks_a, sets_a, al.rows_a, al.group_a, lo, hi, cfg)
        if same_rows:  # one store on both sides (layers or seeds of one model): encode each SAE once
            done = {(s.hook, s.path): x for s, x in zip(sets_a, acts_a, strict=True)}
            acts_b = [done.get((s.hook, s.path)) for s in sets_b]
            if any(x is None for x in acts_b):
                fresh = _side_chunk(store_b, hooks_b, sets_b, al.rows_b, al.group_b, lo, hi, cfg)
                acts_b = [x if x is not None else f for x, f in zip(acts_b, fresh, strict=True)]
        else:
            acts_b = _side_chunk(store_b, hooks_b, sets_b, al.rows_b, al.group_b, lo, hi, cfg)
        # sparse chunks become index/value lists once, not once per grid cell
        acts_a = [_compact(x) for x in acts_a]
        acts_b = [_compact(x) for x in acts_b]
        for (i, j), mom in moments.items():
            mom.add(acts_a[i], acts_b[j])
        for t, x in zip(tops_a + tops_b, acts_a + acts_b, strict=True):
            t.add(_dense(x), lo)
        bar.update(hi - lo)
    bar.close()

    words_a = [t.describe(al) for t in tops_a]
    words_b = [t.describe(al) for t in tops_b]
    results = []
    for i, j in tqdm(cells, desc="score", unit="cell", disable=not progress, dynamic_ncols=True):
        results.append(_cell(cfg, sets_a[i], sets_b[j], moments.pop((i, j)), words_a[i], words_b[j], concepts,
                             cfg.seed))
    result = {
        "format": "monosemantic-compare", "version": 1,
        "a": {"store": str(Path(cfg.acts_a).resolve()), "model": store_a.manifest.model.get("name"),
              "sets": [_set_info(s) for s in sets_a]},
        "b": {"store": str(Path(cfg.acts_b).resolve()), "model": store_b.manifest.model.get("name"),
              "sets": [_set_info(s) for s in sets_b]},
        "unit": al.unit, "pool": cfg.pool if al.unit == "word" else None, "n_units": n, "n_items": al.n_items,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()
                     if k not in ("a", "b", "acts_a", "acts_b", "out", "extra")},
        "concepts": {k: list(v) for k, v in concepts.items()}, "extra": cfg.extra, "cells": results,
    }
    with staged(cfg.out) as tmp:
        (tmp / RESULT_NAME).write_text(json.dumps(_clean(result), indent=1, allow_nan=False))
        _write_csvs(tmp, result)
    return result


def _check_memory(shapes: list[tuple[int, int]]) -> None:
    """Every grid cell keeps a [F_A, F_B] cross moment; refuse a grid that cannot fit rather than swap or crash."""
    need = sum(fa * fb * (8 if fa * fb <= FLOAT64_MAX_ENTRIES else 4) for fa, fb in shapes)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return
    if need > 0.8 * avail:
        raise UserError(f"the {len(shapes)} grid cells need {need / 1e9:.1f} GB of cross moments but {avail / 1e9:.1f} "
                        "GB of memory is free; compare fewer SAEs per run (or pass --no-neurons)")


def _side_chunk(store: ActivationStore, hooks: list[str], sets: list[UnitSet], rows: np.ndarray, group: np.ndarray,
                lo: int, hi: int, cfg: CompareConfig) -> list[torch.Tensor]:
    out: dict[int, torch.Tensor] = {}
    for hook in hooks:
        idx = [k for k, s in enumerate(sets) if s.hook == hook]
        for k, x in zip(idx, pooled_chunk(store, hook, rows, group, lo, hi, [sets[k] for k in idx], cfg.activation,
                                          cfg.pool), strict=True):
            out[k] = x
    return [out[k] for k in range(len(sets))]


def _compact(x: torch.Tensor) -> torch.Tensor | TopKActs:
    return _to_topk(x) if _is_sparse(x) else x


def _dense(x: torch.Tensor | TopKActs) -> torch.Tensor:
    if isinstance(x, TopKActs):
        return torch.zeros(len(x), x.width, dtype=x.values.dtype).scatter_add_(1, x.indices, x.values)
    return x


class _TopUnits:
    """The top-5 activating units of every feature, kept while streaming."""

    def __init__(self, width: int) -> None:
        self.vals = torch.full((TOP, width), -torch.inf)
        self.units = torch.full((TOP, width), -1, dtype=torch.int64)

    def add(self, x: torch.Tensor, offset: int) -> None:
        k = min(TOP, len(x))
        v, u = torch.topk(x, k, dim=0)
        vals, j = torch.topk(torch.cat([self.vals, v]), TOP, dim=0)
        self.units = torch.gather(torch.cat([self.units, u + offset]), 0, j)
        self.vals = vals

    def describe(self, al: Any) -> dict[str, list[list[str]]]:
        """Per feature: the texts of its top units (that fired) and their ±2-unit contexts."""
        tokens, contexts = [], []
        for f in range(self.units.shape[1]):
            fired = [int(u) for u, v in zip(self.units[:, f], self.vals[:, f], strict=True) if v > 0 and u >= 0]
            tokens.append([al.texts[u] for u in fired])
            contexts.append([al.context(u) for u in fired])
        return {"tokens": tokens, "contexts": contexts}


def _cell(cfg: CompareConfig, sa: UnitSet, sb: UnitSet, mom: CrossMoments, wa: dict[str, Any], wb: dict[str, Any],
          concepts: dict[str, tuple[str, ...]], seed: int) -> dict[str, Any]:
    base = mom.pairing("hungarian" if cfg.pairing == "hungarian" else "many_to_one")
    how = {"one_to_one_first": "first", "one_to_one_best": "best"}.get(cfg.pairing)
    kept, counts = apply_filters(base, wa["tokens"], wb["tokens"], junk=cfg.junk_filter, shared=cfg.shared_tokens,
                                 one_to_one_how=how, min_corr=cfg.min_corr)  # type: ignore[arg-type]
    cell: dict[str, Any] = {
        "a": sa.name, "b": sb.name, "kind": sa.kind, "hook_a": sa.hook, "hook_b": sb.hook,
        "width_a": sa.width, "width_b": sb.width, "pairing": cfg.pairing, "counts": counts,
        "mean_corr_before": base.mean_corr(), "mean_corr_after": kept.mean_corr(),
        "corr_hist": _hist(base.corr[base.kept]), "corr_hist_kept": _hist(kept.corr[kept.kept]),
    }
    a_idx, b_idx = kept.pairs()
    cell["pairs"] = {"a": a_idx.tolist(), "b": b_idx.tolist(), "corr": kept.corr[b_idx].tolist()}
    cell["examples"] = _examples(kept, wa, wb)
    xa, yb = sa.decoder(), sb.decoder()
    if xa is None or yb is None:
        cell["note"] = ("raw neurons have the identity as their decoder, so decoder geometry is the same in every "
                        "space; this baseline compares pairing correlations and kept counts only")
        return cell
    if cfg.decoder_match and xa.shape[1] == yb.shape[1]:
        dm = decoder_matching(xa, yb, seed)
        cell["decoder_match"] = {"mean_abs_cos": dm.mean_abs_cos, "random_mean": dm.random_mean,
                                 "matched": int((dm.a_index >= 0).sum())}
    if len(a_idx) < MIN_PAIRS:
        cell["note"] = (f"only {len(a_idx)} pair(s) survived the filters (need at least {MIN_PAIRS}); no "
                        "similarity scores for this cell")
        return cell
    x, y = xa[a_idx], yb[b_idx]
    scores: dict[str, Any] = {}
    for name in ("svcca:variance_99", "svcca:reference_k1", "rsa"):
        obs, null, p = permutation_test(x, y, name, cfg.n_perm, seed)
        base_mean, base_std = random_subset_baseline(xa, yb, len(a_idx), name, n_draws=cfg.baseline_draws, seed=seed)
        scores[name] = {"score": obs, "null_mean": null, "p": p, "n_perm": cfg.n_perm,
                        "random_subset_mean": base_mean, "random_subset_std": base_std}
    if len(a_idx) <= max(x.shape[1], y.shape[1]):
        cell["warning"] = (f"{len(a_idx)} pairs in {x.shape[1]} and {y.shape[1]} dimensions: with no more pairs than "
                           "dimensions, variance_99 SVCCA is near 1 for any pairing; read it against its null")
    scores["cka"] = {"score": linear_cka(x, y)}
    scores["procrustes"] = {"score": procrustes_residual(x, y)}
    cell["scores"] = scores
    cell["subspaces"] = _subspaces(cfg, mom, xa, yb, wa, wb, concepts, seed, base.a_index)
    return cell


def _subspaces(cfg: CompareConfig, mom: CrossMoments, xa: np.ndarray, yb: np.ndarray, wa: dict[str, Any],
               wb: dict[str, Any], concepts: dict[str, tuple[str, ...]], seed: int,
               partners: np.ndarray) -> list[dict[str, Any]]:
    """Per concept: member features of each side, paired B→A inside the subspace, first-occurrence one-to-one,
    correlation > 0, and SVCCA/RSA against ``n_perm_concepts`` shuffles; plus the same scores of as many random B
    features with their best A partners (``partners``), which tells whether subspace size alone explains them."""
    out = []
    for name, words in concepts.items():
        ma = members(wa["tokens"], wa["contexts"], words)
        mb = members(wb["tokens"], wb["contexts"], words)
        row: dict[str, Any] = {"concept": name, "members_a": len(ma), "members_b": len(mb)}
        if len(ma) and len(mb):
            c = mom.correlation_block(ma, mb)
            v, arg = c.max(0)
            p = one_to_one(Pairing(ma[arg.numpy()], v.numpy(), "many_to_one", mom.n), "first")
            p = p.keep(p.corr > 0)
            a_idx, b_pos = p.pairs()
            row["pairs"] = len(a_idx)
            if len(a_idx) >= MIN_PAIRS:
                x, y = xa[a_idx], yb[mb[b_pos]]
                for key, score in (("svcca", "svcca:variance_99"), ("svcca_k1", "svcca:reference_k1"),
                                   ("rsa", "rsa")):
                    obs, null, pv = permutation_test(x, y, score, cfg.n_perm_concepts, seed)
                    rand, _ = random_subset_baseline(xa, yb, len(a_idx), score, n_draws=SUBSPACE_DRAWS, seed=seed,
                                                     partners=partners, kind="max_corr")
                    row[key] = {"score": obs, "null_mean": null, "p": pv, "random_subset_mean": rand}
        else:
            row["pairs"] = 0
        if row["pairs"] < MIN_PAIRS:
            row["note"] = f"{row['pairs']} pair(s); at least {MIN_PAIRS} are needed for a score"
        out.append(row)
    return out


def _examples(p: Pairing, wa: dict[str, Any], wb: dict[str, Any], n: int = 8) -> list[dict[str, Any]]:
    a_idx, b_idx = p.pairs()
    order = np.argsort(-p.corr[b_idx], kind="stable")[:n]
    return [{"a": int(a_idx[o]), "b": int(b_idx[o]), "corr": float(p.corr[b_idx[o]]),
             "a_top": wa["contexts"][a_idx[o]][:3], "b_top": wb["contexts"][b_idx[o]][:3]} for o in order]


def _hist(values: np.ndarray, bins: int = 20) -> dict[str, list[float]]:
    counts, edges = np.histogram(values[np.isfinite(values)], bins=bins, range=(-1.0, 1.0))
    return {"counts": counts.tolist(), "edges": [round(float(e), 3) for e in edges]}


def _set_info(s: UnitSet) -> dict[str, Any]:
    return {"name": s.name, "kind": s.kind, "hook": s.hook, "width": s.width,
            "path": str(s.path.resolve()) if s.path else None}


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN and infinities become null (never printed as NaN)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _write_csvs(tmp: Path, result: dict[str, Any]) -> None:
    with open(tmp / "grid.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "kind", "paired", "kept", "mean_corr_before", "mean_corr_after", "svcca", "svcca_null",
                    "svcca_p", "svcca_k1", "svcca_k1_null", "svcca_k1_p", "rsa", "rsa_null", "rsa_p", "cka",
                    "procrustes", "decoder_abs_cos", "decoder_abs_cos_random"])
        for c in result["cells"]:
            s = c.get("scores") or {}
            row = [c["a"], c["b"], c["kind"], c["counts"]["paired"], c["counts"]["kept"], c["mean_corr_before"],
                   c["mean_corr_after"]]
            for key in ("svcca:variance_99", "svcca:reference_k1", "rsa"):
                row += [s.get(key, {}).get(f) for f in ("score", "null_mean", "p")]
            dm = c.get("decoder_match") or {}
            row += [s.get("cka", {}).get("score"), s.get("procrustes", {}).get("score"), dm.get("mean_abs_cos"),
                    dm.get("random_mean")]
            w.writerow(_clean(row))
    with open(tmp / "pairs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "a_feature", "b_feature", "corr"])
        for c in result["cells"]:
            for fa, fb, r in zip(c["pairs"]["a"], c["pairs"]["b"], c["pairs"]["corr"], strict=True):
                w.writerow([c["a"], c["b"], fa, fb, round(r, 6)])

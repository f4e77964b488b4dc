"""``monosemantic compare``: pair SAE features of two stores over the same texts and score their geometry.

For every pair (an A set, a B set) of a layer × layer grid: stream the aligned units once, accumulate the cross
moments, pair B→A by correlation, filter (junk, shared top tokens, optional one-to-one, low correlation), then
SVCCA (both modes), RSA, linear CKA and Procrustes of the paired decoder rows against permutation nulls and a
random-subset baseline, plus per-concept semantic subspaces (Lan et al., arXiv 2410.06981, §3-4). Raw neurons are
paired the same way as a baseline. Writes ``compare.json``, ``grid.csv`` (one row per cell), ``pairs.csv`` (every
kept pair) and ``compare.html``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from monosemantic import log
from monosemantic.compare.align import Alignment
from monosemantic.compare.concepts import load_concepts, members
from monosemantic.compare.filters import apply_filters
from monosemantic.compare.inputs import UnitSet, align_stores, load_side, pooled_chunk
from monosemantic.compare.matching import decoder_matching
from monosemantic.compare.pairing import FLOAT64_MAX_ENTRIES, CrossMoments, Pairing, as_dense, compact, one_to_one
from monosemantic.compare.similarity import linear_cka, permutation_test, procrustes_residual, random_subset_baseline
from monosemantic.compare.tops import TopTexts, TopUnits
from monosemantic.errors import UserError
from monosemantic.experiment import Command, Result, Summary
from monosemantic.files import check_out, staged, write_atomic, write_json
from monosemantic.report.render import write_result_page
from monosemantic.report.sections.compare import KIND
from monosemantic.results import JSONDict, to_json
from monosemantic.store import ActivationStore

MIN_PAIRS = 3
SUBSPACE_DRAWS = 20  # random subsets per concept: small, so cheap, but a grid has many concepts × cells
NULL_SCORES = ("svcca:variance_99", "svcca:reference_k1", "rsa")
"""The scores tested against shuffled pairings and random subsets."""


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

    def __post_init__(self) -> None:
        if not math.isfinite(self.min_corr):  # before the range check, so NaN reads as on every other option
            raise UserError(f"--min-corr must be a finite number, got {self.min_corr}")
        for flag, value in (("--n-perm", self.n_perm), ("--n-perm-concepts", self.n_perm_concepts),
                            ("--chunk-units", self.chunk_units), ("--baseline-draws", self.baseline_draws)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{flag} must be a positive whole number; got {value!r}")
        if not -1 <= self.min_corr < 1:
            raise UserError(f"--min-corr must be a correlation in [-1, 1); got {self.min_corr}")
        if self.max_items is not None and self.max_items < 1:
            raise UserError(f"--max-items must be at least 1; got {self.max_items}")
        if not self.a or not self.b:
            raise UserError("give at least one SAE per side (--a and --b)")


# ------------------------------------------------------------------------------------------------ the result


@dataclass(frozen=True)
class SetInfo:
    """One unit set of a side: an SAE's features or a hook's raw neurons."""

    name: str
    kind: str
    hook: str
    width: int
    path: str | None


@dataclass(frozen=True)
class Side:
    store: str
    model: str | None
    sets: list[SetInfo]


@dataclass(frozen=True)
class Histogram:
    counts: list[int]
    edges: list[float]


@dataclass(frozen=True)
class PairList:
    """The kept pairs, in B order: A feature, B feature and their correlation."""

    a: list[int]
    b: list[int]
    corr: list[float]


@dataclass(frozen=True)
class PairExample:
    """One of the best-correlated kept pairs, with both features' top snippets."""

    a: int
    b: int
    corr: float
    a_top: list[str]
    b_top: list[str]


@dataclass(frozen=True)
class DecoderScore:
    mean_abs_cos: float
    random_mean: float
    """The same matching against as many random directions (chance)."""
    matched: int


@dataclass(frozen=True)
class NullTest:
    """A score of the paired decoder rows against shuffled pairings and random subsets."""

    score: float
    null_mean: float
    p: float
    n_perm: int
    random_subset_mean: float
    random_subset_std: float


@dataclass(frozen=True)
class Score:
    """A score with no null (CKA, Procrustes)."""

    score: float


@dataclass(frozen=True)
class SubspaceScore:
    score: float
    null_mean: float
    p: float
    random_subset_mean: float
    """The same score of as many random B features with their best A partners."""


@dataclass(frozen=True)
class Subspace:
    """One concept's member features on each side, paired inside the subspace and scored."""

    concept: str
    members_a: int
    members_b: int
    pairs: int
    svcca: SubspaceScore | None = None
    svcca_k1: SubspaceScore | None = None
    rsa: SubspaceScore | None = None
    note: str | None = None

    def to_json(self) -> JSONDict:
        return _without_none(to_json(self), ("svcca", "svcca_k1", "rsa", "note"))


@dataclass(frozen=True)
class Cell:
    """One (A set, B set) pair of the grid: the pairing, its filters, and the scores of the paired decoders."""

    a: str
    b: str
    kind: str
    """sae (two SAEs) or neurons (the raw-neuron baseline)."""
    hook_a: str
    hook_b: str
    width_a: int
    width_b: int
    pairing: str
    counts: dict[str, int]
    """Pairs left after each filter (paired, after_junk, after_shared_tokens, after_one_to_one, kept)."""
    mean_corr_before: float | None
    mean_corr_after: float | None
    corr_hist: Histogram
    corr_hist_kept: Histogram
    pairs: PairList
    examples: list[PairExample]
    decoder_match: DecoderScore | None = None
    note: str | None = None
    """Why the cell has no scores."""
    warning: str | None = None
    scores: dict[str, NullTest | Score] | None = None
    subspaces: list[Subspace] | None = None

    def to_json(self) -> JSONDict:
        data = to_json(self)
        if self.subspaces is not None:
            data["subspaces"] = [s.to_json() for s in self.subspaces]
        return _without_none(data, ("decoder_match", "note", "warning", "scores", "subspaces"))


@dataclass(frozen=True)
class CompareResult(Result):
    """The grid of cells comparing two sides' unit sets over the same texts."""

    KIND = KIND
    config: CompareConfig
    a: Side
    b: Side
    unit: str
    """token or word."""
    pool: str | None
    n_units: int
    n_items: int
    concepts: dict[str, list[str]]
    cells: list[Cell]

    def to_json(self) -> JSONDict:
        """compare.json as computed (NaN kept; ``write`` turns it into null)."""
        cfg = self.config
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()
                    if k not in ("a", "b", "acts_a", "acts_b", "out", "extra")}
        return {**KIND.header(), "a": to_json(self.a), "b": to_json(self.b), "unit": self.unit, "pool": self.pool,
                "n_units": self.n_units, "n_items": self.n_items, "settings": settings, "concepts": self.concepts,
                "extra": cfg.extra, "cells": [c.to_json() for c in self.cells]}

    def write(self, folder: Path) -> None:
        data = self.to_json()
        clean = _clean(data)
        write_json(folder / KIND.file, clean, allow_nan=False)
        write_atomic(folder / "grid.csv", _grid_csv(data["cells"]))
        write_atomic(folder / "pairs.csv", _pairs_csv(data["cells"]))
        write_result_page(folder, KIND, clean)

    def summary(self) -> Summary:
        lines: Summary = [f"{self.n_units:,} {self.unit}s over {self.n_items:,} items",
                          f"{'A':<24} {'B':<24} {'kept':>7} {'corr':>6} {'SVCCA':>6} {'null':>5} {'p':>6} {'RSA':>6} "
                          f"{'null':>5} {'p':>6} {'dec|cos|':>8}"]
        for c in self.cells:
            line = f"{c.a[:24]:<24} {c.b[:24]:<24} {c.counts['kept']:>7,} {_f(c.mean_corr_after)}"
            if c.scores:
                for key in ("svcca:variance_99", "rsa"):
                    s = c.scores[key]
                    assert isinstance(s, NullTest)
                    line += f" {_f(s.score)} {_f(s.null_mean, 5)} {s.p:>6.3f}"
                line += f" {_f(c.decoder_match.mean_abs_cos if c.decoder_match else None, 8)}"
            else:
                line += f"  ({c.note or ''})"
            lines.append(line)
        out = self.config.out
        lines.append(json.dumps({"compare": str(out / KIND.file), "html": str(out / str(KIND.page))}))
        return lines


def _f(v: float | None, width: int = 6) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.3f}"


def _without_none(data: JSONDict, optional: tuple[str, ...]) -> JSONDict:
    """``data`` without those of its ``optional`` keys whose value is None (absent from the file, not null)."""
    return {k: v for k, v in data.items() if not (k in optional and v is None)}


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


def _grid_csv(cells: list[JSONDict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["a", "b", "kind", "paired", "kept", "mean_corr_before", "mean_corr_after", "svcca", "svcca_null",
                "svcca_p", "svcca_k1", "svcca_k1_null", "svcca_k1_p", "rsa", "rsa_null", "rsa_p", "cka",
                "procrustes", "decoder_abs_cos", "decoder_abs_cos_random"])
    for c in cells:
        s = c.get("scores") or {}
        row = [c["a"], c["b"], c["kind"], c["counts"]["paired"], c["counts"]["kept"], c["mean_corr_before"],
               c["mean_corr_after"]]
        for key in NULL_SCORES:
            row += [s.get(key, {}).get(f) for f in ("score", "null_mean", "p")]
        dm = c.get("decoder_match") or {}
        row += [s.get("cka", {}).get("score"), s.get("procrustes", {}).get("score"), dm.get("mean_abs_cos"),
                dm.get("random_mean")]
        w.writerow(_clean(row))
    return buf.getvalue()


def _pairs_csv(cells: list[JSONDict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["a", "b", "a_feature", "b_feature", "corr"])
    for c in cells:
        for fa, fb, r in zip(c["pairs"]["a"], c["pairs"]["b"], c["pairs"]["corr"], strict=True):
            w.writerow([c["a"], c["b"], fa, fb, round(r, 6)])
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ the run


@dataclass
class _Streamed:
    """What one pass over the aligned units leaves: every cell's cross moments and every set's top units."""

    moments: dict[tuple[int, int], CrossMoments]
    tops_a: list[TopTexts]
    tops_b: list[TopTexts]


def run(cfg: CompareConfig) -> CompareResult:
    """Run the comparison described by ``cfg``; write it to ``cfg.out`` and return it."""
    inputs = [cfg.acts_a, cfg.acts_b, *cfg.a, *cfg.b, *([cfg.concepts] if cfg.concepts else [])]
    check_out(cfg.out, what="a compare folder", marker=KIND.file, overwrite=cfg.overwrite, inputs=inputs)
    concepts = load_concepts(cfg.concepts)
    store_a, store_b = ActivationStore.open(cfg.acts_a), ActivationStore.open(cfg.acts_b)
    sets_a = load_side(cfg.a, store_a, "a", cfg.neurons)
    sets_b = load_side(cfg.b, store_b, "b", cfg.neurons)
    al = align_stores(store_a, store_b, cfg.unit, cfg.max_items)
    cells = [(i, j) for i, sa in enumerate(sets_a) for j, sb in enumerate(sets_b) if sa.kind == sb.kind]
    _check_memory([(sets_a[i].width, sets_b[j].width) for i, j in cells])
    streamed = _stream(cfg, store_a, store_b, sets_a, sets_b, al, cells)
    scored = []
    for i, j in log.bar(cells, desc="score", unit="cell"):
        scored.append(_cell(cfg, sets_a[i], sets_b[j], streamed.moments.pop((i, j)), streamed.tops_a[i],
                            streamed.tops_b[j], concepts))
    result = CompareResult(
        config=cfg, a=_side(cfg.acts_a, store_a, sets_a), b=_side(cfg.acts_b, store_b, sets_b), unit=al.unit,
        pool=cfg.pool if al.unit == "word" else None, n_units=al.n_units, n_items=al.n_items,
        concepts={k: list(v) for k, v in concepts.items()}, cells=scored)
    with staged(cfg.out) as tmp:
        result.write(tmp)
    return result


def _side(acts: Path, store: ActivationStore, sets: list[UnitSet]) -> Side:
    return Side(str(Path(acts).resolve()), store.manifest.model.get("name"),
                [SetInfo(s.name, s.kind, s.hook, s.width, str(s.path.resolve()) if s.path else None) for s in sets])


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


def _stream(cfg: CompareConfig, store_a: ActivationStore, store_b: ActivationStore, sets_a: list[UnitSet],
            sets_b: list[UnitSet], al: Alignment, cells: list[tuple[int, int]]) -> _Streamed:
    """One pass over the aligned units, chunk by chunk: the cross moments of every cell and each set's top units."""
    moments = {(i, j): CrossMoments(sets_a[i].width, sets_b[j].width) for i, j in cells}
    tops = [TopUnits(s.width) for s in (*sets_a, *sets_b)]
    same_rows = (store_a.root.resolve() == store_b.root.resolve() and np.array_equal(al.rows_a, al.rows_b)
                 and np.array_equal(al.group_a, al.group_b))
    with log.bar(total=al.n_units, desc="compare", unit=al.unit) as bar:
        for lo in range(0, al.n_units, cfg.chunk_units):
            hi = min(lo + cfg.chunk_units, al.n_units)
            acts_a = _side_chunk(store_a, sets_a, al.rows_a, al.group_a, lo, hi, cfg)
            if same_rows:  # one store on both sides (layers or seeds of one model): encode each SAE once
                acts_b = _reuse(acts_a, sets_a, sets_b,
                                partial(_side_chunk, store_b, sets_b, al.rows_b, al.group_b, lo, hi, cfg))
            else:
                acts_b = _side_chunk(store_b, sets_b, al.rows_b, al.group_b, lo, hi, cfg)
            # sparse chunks become index/value lists once, not once per grid cell
            ca, cb = [compact(x) for x in acts_a], [compact(x) for x in acts_b]
            for (i, j), mom in moments.items():
                mom.add(ca[i], cb[j])
            for t, x in zip(tops, ca + cb, strict=True):
                t.add(as_dense(x), lo)
            bar.update(hi - lo)
    texts = [t.texts(al) for t in tops]
    return _Streamed(moments, texts[: len(sets_a)], texts[len(sets_a):])


def _reuse(acts_a: list[torch.Tensor], sets_a: list[UnitSet], sets_b: list[UnitSet],
           fresh: Callable[[], list[torch.Tensor]]) -> list[torch.Tensor]:
    """Side B's chunk when both sides read one store: A's activations of the same SAE and hook where there are
    some, the rest from ``fresh()``."""
    done = {(s.hook, s.path): x for s, x in zip(sets_a, acts_a, strict=True)}
    got = [done.get((s.hook, s.path)) for s in sets_b]
    if all(x is not None for x in got):
        return [x for x in got if x is not None]
    new = fresh()
    return [x if x is not None else f for x, f in zip(got, new, strict=True)]


def _side_chunk(store: ActivationStore, sets: list[UnitSet], rows: np.ndarray, group: np.ndarray, lo: int, hi: int,
                cfg: CompareConfig) -> list[torch.Tensor]:
    out: dict[int, torch.Tensor] = {}
    for hook in dict.fromkeys(s.hook for s in sets):
        idx = [k for k, s in enumerate(sets) if s.hook == hook]
        for k, x in zip(idx, pooled_chunk(store, hook, rows, group, lo, hi, [sets[k] for k in idx], cfg.activation,
                                          cfg.pool), strict=True):
            out[k] = x
    return [out[k] for k in range(len(sets))]


def _cell(cfg: CompareConfig, sa: UnitSet, sb: UnitSet, mom: CrossMoments, wa: TopTexts, wb: TopTexts,
          concepts: dict[str, tuple[str, ...]]) -> Cell:
    base = mom.pairing("hungarian" if cfg.pairing == "hungarian" else "many_to_one")
    how: Literal["first", "best"] | None = None
    if cfg.pairing in ("one_to_one_first", "one_to_one_best"):
        how = "first" if cfg.pairing == "one_to_one_first" else "best"
    kept, counts = apply_filters(base, wa.tokens, wb.tokens, junk=cfg.junk_filter, shared=cfg.shared_tokens,
                                 one_to_one_how=how, min_corr=cfg.min_corr)
    a_idx, b_idx = kept.pairs()
    cell = Cell(
        a=sa.name, b=sb.name, kind=sa.kind, hook_a=sa.hook, hook_b=sb.hook, width_a=sa.width, width_b=sb.width,
        pairing=cfg.pairing, counts=counts, mean_corr_before=base.mean_corr(), mean_corr_after=kept.mean_corr(),
        corr_hist=_hist(base.corr[base.kept]), corr_hist_kept=_hist(kept.corr[kept.kept]),
        pairs=PairList(a_idx.tolist(), b_idx.tolist(), kept.corr[b_idx].tolist()), examples=_examples(kept, wa, wb))
    xa, yb = sa.decoder(), sb.decoder()
    if xa is None or yb is None:
        return replace(cell, note="raw neurons have the identity as their decoder, so decoder geometry is the same "
                       "in every space; this baseline compares pairing correlations and kept counts only")
    if cfg.decoder_match and xa.shape[1] == yb.shape[1]:
        dm = decoder_matching(xa, yb, cfg.seed)
        cell = replace(cell, decoder_match=DecoderScore(dm.mean_abs_cos, dm.random_mean, int((dm.a_index >= 0).sum())))
    if len(a_idx) < MIN_PAIRS:
        return replace(cell, note=f"only {len(a_idx)} pair(s) survived the filters (need at least {MIN_PAIRS}); "
                       "no similarity scores for this cell")
    x, y = xa[a_idx], yb[b_idx]
    scores: dict[str, NullTest | Score] = {}
    for name in NULL_SCORES:
        obs, null, p = permutation_test(x, y, name, cfg.n_perm, cfg.seed)
        base_mean, base_std = random_subset_baseline(xa, yb, len(a_idx), name, n_draws=cfg.baseline_draws,
                                                     seed=cfg.seed)
        scores[name] = NullTest(obs, null, p, cfg.n_perm, base_mean, base_std)
    warning = None
    if len(a_idx) <= max(x.shape[1], y.shape[1]):
        warning = (f"{len(a_idx)} pairs in {x.shape[1]} and {y.shape[1]} dimensions: with no more pairs than "
                   "dimensions, variance_99 SVCCA is near 1 for any pairing; read it against its null")
    scores["cka"] = Score(linear_cka(x, y))
    scores["procrustes"] = Score(procrustes_residual(x, y))
    return replace(cell, warning=warning, scores=scores,
                   subspaces=_subspaces(cfg, mom, xa, yb, wa, wb, concepts, base.a_index))


def _subspaces(cfg: CompareConfig, mom: CrossMoments, xa: np.ndarray, yb: np.ndarray, wa: TopTexts, wb: TopTexts,
               concepts: dict[str, tuple[str, ...]], partners: np.ndarray) -> list[Subspace]:
    """Per concept: member features of each side, paired B→A inside the subspace, first-occurrence one-to-one,
    correlation > 0, and SVCCA/RSA against ``n_perm_concepts`` shuffles; plus the same scores of as many random B
    features with their best A partners (``partners``), which tells whether subspace size alone explains them."""
    out = []
    for name, words in concepts.items():
        ma = members(wa.tokens, wa.contexts, words)
        mb = members(wb.tokens, wb.contexts, words)
        n_pairs, scores = 0, {}
        if len(ma) and len(mb):
            c = mom.correlation_block(ma, mb)
            v, arg = c.max(0)
            p = one_to_one(Pairing(ma[arg.numpy()], v.numpy(), "many_to_one", mom.n), "first")
            p = p.keep(p.corr > 0)
            a_idx, b_pos = p.pairs()
            n_pairs = len(a_idx)
            if n_pairs >= MIN_PAIRS:
                scores = _subspace_scores(cfg, xa[a_idx], yb[mb[b_pos]], xa, yb, partners)
        note = f"{n_pairs} pair(s); at least {MIN_PAIRS} are needed for a score" if n_pairs < MIN_PAIRS else None
        out.append(Subspace(name, len(ma), len(mb), n_pairs, **scores, note=note))
    return out


def _subspace_scores(cfg: CompareConfig, x: np.ndarray, y: np.ndarray, xa: np.ndarray, yb: np.ndarray,
                     partners: np.ndarray) -> dict[str, SubspaceScore]:
    out = {}
    for key, score in (("svcca", "svcca:variance_99"), ("svcca_k1", "svcca:reference_k1"), ("rsa", "rsa")):
        obs, null, pv = permutation_test(x, y, score, cfg.n_perm_concepts, cfg.seed)
        rand, _ = random_subset_baseline(xa, yb, len(x), score, n_draws=SUBSPACE_DRAWS, seed=cfg.seed,
                                         partners=partners, kind="max_corr")
        out[key] = SubspaceScore(obs, null, pv, rand)
    return out


def _examples(p: Pairing, wa: TopTexts, wb: TopTexts, n: int = 8) -> list[PairExample]:
    a_idx, b_idx = p.pairs()
    order = np.argsort(-p.corr[b_idx], kind="stable")[:n]
    return [PairExample(int(a_idx[o]), int(b_idx[o]), float(p.corr[b_idx[o]]), wa.contexts[a_idx[o]][:3],
                        wb.contexts[b_idx[o]][:3]) for o in order]


def _hist(values: np.ndarray, bins: int = 20) -> Histogram:
    counts, edges = np.histogram(values[np.isfinite(values)], bins=bins, range=(-1.0, 1.0))
    return Histogram(counts.tolist(), [round(float(e), 3) for e in edges])


COMMAND = Command(
    "compare", CompareConfig, run,
    description="Pair every B feature with its best-correlated A feature over the same texts (token by token "
    "for one tokenizer, word by word across tokenizers), filter the pairs, and score the paired decoder "
    "vectors with SVCCA, RSA, CKA and Procrustes against permutation nulls and random subsets, for the whole "
    "space and for keyword concept subspaces (Lan et al., arXiv 2410.06981); SAEs writing into one space "
    "are also matched one-to-one by decoder |cos| (Hungarian). Several SAEs per side give a "
    "layer x layer grid; raw neurons are paired too, as a baseline. Writes compare.json, grid.csv, pairs.csv "
    "and compare.html.",
    flags={"a": ("--a",), "b": ("--b",)},
    skip=("extra",),
)

"""``monosemantic score``: every score of a layer's raw neurons and of its SAEs' latents, side by side.

Reads a store, SAE folders and encoder embeddings, turns token rows into item-level activations
(``monosemantic.metrics.items``) and calls the pure metric functions of ``monosemantic.metrics``: the
MonoSemanticity score (MS, Pach et al., arXiv 2504.02821) against an external encoder, FMS per label (Härle et
al., arXiv 2506.19382), MedSAE's label correlation, entropy and rank-normalised comparison (Renzulli et al., arXiv
2510.26411), firing rates, and for Matryoshka SAEs under a label hierarchy the depth of each nested group. Writes
``scores.json`` (summaries per unit set), ``units.csv`` (one row per unit) and ``top.safetensors`` (top and
weakest-firing items per unit, for cards); ``monosemantic.report.scores`` reads them back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from monosemantic import log
from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.experiment import Column, Command, Result, Summary, Table
from monosemantic.files import check_out, csv_text, staged, write_atomic, write_json
from monosemantic.metrics import (
    ScoreSummary,
    best_unit_per_class,
    correlation_entropy,
    fms,
    label_correlation,
    monosemanticity_score,
    summarize,
)
from monosemantic.metrics.hierarchy import (
    Hierarchy,
    HierarchyDepth,
    build_hierarchy,
    hierarchy_depth,
    load_parents,
    ranked_means,
)
from monosemantic.metrics.items import ItemActivations, item_activations, weakest_firing
from monosemantic.metrics.monosemanticity import default_encoder
from monosemantic.report.scores import MIN_ITEMS_FOR_CARD, SCORES_NAME, TOPS_NAME, UNITS_NAME
from monosemantic.results import to_json
from monosemantic.sae import SAE
from monosemantic.sae.paths import expand_sae_paths
from monosemantic.sources import load_dataset, load_model
from monosemantic.sources.datasets import fingerprint
from monosemantic.store import ActivationStore

EMBEDDINGS_KEY = "embeddings"
_EMBEDDINGS_SHAPE = f"a safetensors file with an {EMBEDDINGS_KEY!r} tensor of shape [n_items, dim]"
TOP_ITEMS = 16
"""Top- and weakest-firing items kept per unit in top.safetensors (the feature cards show them)."""


@dataclass(frozen=True)
class ScoreConfig:
    """MS, FMS, label correlation and entropy of a layer's raw neurons and of its SAEs' latents."""

    acts: Path
    """Activation store folder (from `monosemantic extract`)."""
    sae: list[Path]
    """SAE folder(s); a folder holding several SAE folders (a sweep) counts as all of them."""
    out: Path
    """Folder for scores.json, units.csv and top.safetensors."""
    encoder: str | None = None
    """External encoder for MS (default: efficientnet_lite0 for images, wordllama static embeddings for text; minilm
    sentence embeddings are the other bundled text encoder); with --embeddings, only the name recorded for them."""
    embeddings: Path | None = None
    """Precomputed encoder embeddings (.safetensors with an 'embeddings' [n_items, e] tensor) instead of --encoder."""
    labels: Path | None = None
    """File with one label per item (.txt, one per line, or .npy) replacing the store's labels."""
    hook: str | None = None
    """Hook of the store (default: its only hook)."""
    pool: Literal["max", "mean"] = "max"
    """How token activations become item activations (images are already items)."""
    fms_p: list[int] = field(default_factory=lambda: [1, 5])
    """FMS@p: how many top latents are removed for local disentanglement."""
    fms_balance: bool = True
    """FMS: score each one-vs-rest concept on its positives and as many seeded random negatives (the paper's
    balanced tasks); off (--no-fms-balance, False) scores every concept on all items."""
    hierarchy: str | None = None
    """Label hierarchy for Matryoshka SAEs: a TOML or JSON file mapping each label to its parent, or a bundled one
    (fashion-mnist: tops, bottoms, footwear, bags). Scores which nested group holds general vs specific latents."""
    chunk_rows: int = 16384
    """Rows encoded at a time."""
    device: str = "auto"
    """Where to encode rows and embed items: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps."""
    overwrite: bool = False
    """Replace an existing --out folder."""

    def __post_init__(self) -> None:
        if isinstance(self.chunk_rows, bool) or not isinstance(self.chunk_rows, int) or self.chunk_rows < 1:
            raise UserError(f"--chunk-rows must be a positive number of rows (default 16384); got {self.chunk_rows!r}")
        fms_p = list(self.fms_p)
        if not fms_p or any(isinstance(p, bool) or not isinstance(p, int) or p < 1 for p in fms_p):
            shown = " ".join(map(str, fms_p)) or "nothing"
            raise UserError(
                f"--fms-p takes positive whole numbers (how many top latents FMS@p removes, e.g. --fms-p 1 --fms-p 5); "
                f"got {shown}"
            )
        if self.pool not in ("max", "mean"):
            raise UserError(f"--pool must be 'max' or 'mean'; got {self.pool!r}")
        resolve_device(self.device)


# ------------------------------------------------------------------------------------------------ the result


@dataclass(frozen=True)
class ConceptFMS:
    """FMS of one concept (one-vs-rest label)."""

    fms: dict[int, float | None]
    """p -> FMS@p."""
    acc0: float | None
    """Accuracy of the best single-latent split."""
    root: int | None
    """That split's latent (None when there was none)."""
    n_rows: int
    """Items the concept was scored on (2·min(positives, negatives) balanced, all unbalanced)."""

    def to_json(self) -> dict[str, Any]:
        return {**{f"fms@{p}": v for p, v in self.fms.items()}, "acc0": self.acc0, "root": self.root,
                "n_rows": self.n_rows}


@dataclass(frozen=True)
class FMSSummary:
    """FMS of one unit set: the variant, the means over concepts, and each concept."""

    variant: str
    """"balanced" or "unbalanced" (see `monosemantic.metrics.fms`); first in the JSON, because the numbers of the
    two variants differ a lot and a reader must see which one this is."""
    fms: dict[int, float | None]
    """p -> FMS@p, the mean over concepts."""
    acc0: float | None
    per_concept: dict[str, ConceptFMS]
    """Label name -> its FMS."""

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, **{f"fms@{p}": v for p, v in self.fms.items()}, "acc0": self.acc0,
                "per_concept": {name: c.to_json() for name, c in self.per_concept.items()}}


@dataclass(frozen=True)
class LabelScores:
    """MedSAE's label metrics and FMS of one unit set (only when the items have labels)."""

    corr_mean: float | None
    """Mean over classes of the best alive unit's ρ (CorrScore)."""
    entropy_mean: float | None
    """Mean over classes of that unit's correlation entropy (EntropyScore)."""
    corr_per_class: list[float | None]
    entropy_per_class: list[float | None]
    fms: FMSSummary


@dataclass(frozen=True)
class HeldoutEval:
    """The SAE's own held-out evaluation (its eval.json)."""

    fvu: float | None
    heldout_l0: float | None
    heldout_dead_fraction: float | None


@dataclass(frozen=True)
class TrainingCurve:
    """The SAE's training log (train_log.jsonl), one value per logged step."""

    tokens: list[int | None]
    fvu: list[float | None]
    l0: list[float | None]
    dead_fraction: list[float | None]


@dataclass(frozen=True)
class SAEFacts:
    """What a unit set that is an SAE adds: its architecture, sparsity, width and training record."""

    arch: str
    """The training architecture (e.g. matryoshka), else the saved one."""
    k: float | None
    expansion: float
    """d_sae / d_in."""
    heldout: HeldoutEval | None
    """None when the folder has no eval.json."""
    training: TrainingCurve | None
    """None when the folder has no train_log.jsonl."""


@dataclass(frozen=True)
class RankNorm:
    """MedSAE's rank-normalised comparison across every unit set, per class and averaged: 1 for the set with the
    best label correlation (lowest entropy) of a class, 0 for the worst."""

    corr_mean: float | None
    corr_per_class: list[float | None]
    entropy_mean: float | None
    entropy_per_class: list[float | None]


@dataclass(frozen=True)
class UnitSetScores:
    """The summary of one unit set: the raw neurons, or one SAE's latents."""

    id: str
    """``neurons`` or the SAE folder's name."""
    kind: Literal["neurons", "sae"]
    width: int
    l0: float
    """Mean number of units > 0 per row."""
    dead_fraction: float
    """Share of units that never fire on any row."""
    ms: ScoreSummary
    ms_values: list[float | None]
    """Every unit's MS (None where it is undefined), stored as ``ms.values`` in scores.json."""
    ms_16: ScoreSummary
    """MS over the units that fire on at least 16 items (those that get a card)."""
    sae: SAEFacts | None = None
    labels: LabelScores | None = None
    hierarchy: HierarchyDepth | None = None
    """Only for nested (Matryoshka) SAEs scored with --hierarchy."""
    rank_norm: RankNorm | None = None
    """Only when at least two unit sets have label scores."""

    def to_json(self) -> dict[str, Any]:
        """The set's entry in scores.json: the keys of the groups that apply, in a fixed order."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "width": self.width, "l0": self.l0,
                               "dead_fraction": self.dead_fraction,
                               "ms": {**to_json(self.ms), "values": self.ms_values}, "ms_16": to_json(self.ms_16)}
        if self.sae is not None:
            out.update(arch=self.sae.arch, k=self.sae.k, expansion=self.sae.expansion)
            if self.sae.heldout is not None:
                out.update(to_json(self.sae.heldout))
            if self.sae.training is not None:
                out["training"] = to_json(self.sae.training)
        if self.labels is not None:
            lab = self.labels
            out.update(corr_mean=lab.corr_mean, entropy_mean=lab.entropy_mean, corr_per_class=lab.corr_per_class,
                       entropy_per_class=lab.entropy_per_class, fms=lab.fms.to_json())
        if self.hierarchy is not None:
            out["hierarchy"] = to_json(self.hierarchy)
        if self.rank_norm is not None:
            out["rank_norm"] = to_json(self.rank_norm)
        return out


@dataclass(frozen=True)
class UnitRow:
    """One unit's row of units.csv."""

    set: str
    unit: int
    ms: float | None
    fms: float | None
    """The best FMS@1 among the concepts the unit is the root latent of."""
    firing_rate: float
    """Share of rows where the unit is > 0."""
    active_items: int
    """Items on which the unit is > 0."""
    best_label: str | None
    """The label it correlates with most (by |ρ|)."""
    best_corr: float | None
    entropy: float | None


@dataclass(frozen=True)
class ScoreResult(Result):
    """The scores of a layer's raw neurons and of every SAE, as written to a score folder."""

    config: ScoreConfig
    store: str
    """The store's resolved path."""
    hook: str
    model: str
    dataset: str
    n_items: int
    n_rows: int
    tokens: str
    pool: str
    encoder: str
    label_names: list[str]
    unit_sets: list[UnitSetScores]
    units: list[UnitRow]
    """One row per unit of every set (units.csv)."""
    tops: dict[str, torch.Tensor]
    """``SET/top_values``, ``SET/top_items``, ``SET/weak_values``, ``SET/weak_items`` per set (top.safetensors)."""

    def to_json(self) -> dict[str, Any]:
        """scores.json (it has no format tag: the report, the namer and the study read it as it always was)."""
        return {"store": self.store, "hook": self.hook, "model": self.model, "dataset": self.dataset,
                "n_items": self.n_items, "n_rows": self.n_rows, "tokens": self.tokens, "pool": self.pool,
                "encoder": self.encoder, "label_names": self.label_names,
                "unit_sets": [s.to_json() for s in self.unit_sets]}

    def write(self, folder: Path) -> None:
        write_json(folder / SCORES_NAME, self.to_json())
        if self.units:
            write_atomic(folder / UNITS_NAME, csv_text([to_json(u) for u in self.units]))
        save_file(self.tops, str(folder / TOPS_NAME))

    def summary(self) -> Summary:
        variant = "balanced" if self.config.fms_balance else "unbalanced"
        rows = [(s.id, s.width, s.dead_fraction, s.ms.mean, s.ms.best, s.ms.worst,
                 s.labels.fms.fms.get(1) if s.labels is not None else None) for s in self.unit_sets]
        table = Table((Column("unit set", 28, "<"), Column("width", 6), Column("dead", 6, digits=2),
                       Column("MS mean", 8), Column("best", 6), Column("worst", 6), Column("FMS@1", 6)), rows)
        return [f"encoder: {self.encoder}  ({self.n_items:,} items, pool={self.pool}; FMS {variant})", table,
                json.dumps({"scores": str(self.config.out / SCORES_NAME)})]


# ------------------------------------------------------------------------------------------------ the run


def run(cfg: ScoreConfig) -> ScoreResult:
    """Score the raw neurons of the store's layer and every SAE; write the score folder and return the result."""
    sae_paths = expand_sae_paths(cfg.sae)  # only looks for cfg.json, and a wrong --sae is the clearer message
    out = Path(cfg.out)
    # every file read is an input: --out must not replace any of them, whatever --overwrite says
    inputs = [cfg.acts, *cfg.sae, *(p for p in (cfg.embeddings, cfg.labels) if p is not None)]
    check_out(out, what="a score folder", marker=SCORES_NAME, overwrite=cfg.overwrite, inputs=inputs)
    store = ActivationStore.open(cfg.acts)
    hook = store.hook(cfg.hook)
    d_in = store.width(hook)
    labels, label_names = _labels(cfg, store)
    if labels is not None and len(np.unique(labels)) < 2:
        raise UserError("the labels hold a single class; FMS and label correlation need at least two")
    hierarchy = None if cfg.hierarchy is None else _hierarchy(cfg.hierarchy, labels, label_names)
    device = resolve_device(cfg.device)
    saes = [(p, SAE.load(p, device=device)) for p in sae_paths]
    for p, sae in saes:
        if sae.cfg.d_in != d_in:
            raise UserError(f"SAE {p} reads width {sae.cfg.d_in} but the store's hook {hook!r} has width {d_in}")
    emb, encoder = _embeddings(cfg, store, device)

    sets: list[UnitSetScores] = []
    rows: list[UnitRow] = []
    tops: dict[str, torch.Tensor] = {}
    todo: list[tuple[str, tuple[Path, SAE] | None]] = [("neurons", None), *((p.name, (p, sae)) for p, sae in saes)]
    for set_id, sae_info in log.bar(todo, desc="score", unit="unit set"):
        if sae_info is None:
            acts = item_activations(store, hook, lambda x: x, d_in, cfg.pool, cfg.chunk_rows, device)
        else:
            acts = item_activations(store, hook, sae_info[1].encode, sae_info[1].cfg.d_sae, cfg.pool, cfg.chunk_rows,
                                    device)
        scores, per_unit = _score_set(set_id, sae_info, acts, emb, labels, label_names, cfg.fms_p, cfg.fms_balance)
        groups = None if sae_info is None else sae_info[1].cfg.group_sizes
        if hierarchy is not None and groups:
            ms = torch.tensor([math.nan if v is None else v for v in scores.ms_values])
            scores = replace(scores, hierarchy=hierarchy_depth(acts.acts.cpu(), torch.as_tensor(labels), hierarchy,
                                                               groups, ms))
        sets.append(scores)
        rows.extend(per_unit)
        tops.update(_tops(set_id, acts.acts, store.n_items))
    result = ScoreResult(
        config=cfg, store=str(Path(cfg.acts).resolve()), hook=hook, model=store.manifest.model["name"],
        dataset=store.manifest.dataset["name"], n_items=store.n_items, n_rows=store.n_rows,
        tokens=store.manifest.tokens, pool=cfg.pool, encoder=encoder, label_names=label_names,
        unit_sets=_rank_sets(sets), units=rows, tops=tops,
    )
    with staged(out) as tmp:
        result.write(tmp)
    return result


def _tops(set_id: str, acts: torch.Tensor, n_items: int) -> dict[str, torch.Tensor]:
    top_v, top_i = torch.topk(acts, min(TOP_ITEMS, n_items), dim=0)
    weak_v, weak_i = weakest_firing(acts, TOP_ITEMS)
    return {f"{set_id}/top_values": top_v.T.contiguous(), f"{set_id}/top_items": top_i.T.contiguous(),
            f"{set_id}/weak_values": weak_v, f"{set_id}/weak_items": weak_i}


def _labels(cfg: ScoreConfig, store: ActivationStore) -> tuple[np.ndarray | None, list[str]]:
    if cfg.labels is None:
        return store.labels, store.label_names
    path = Path(cfg.labels)
    if not path.is_file():
        raise UserError(f"labels file {path} does not exist")
    if path.suffix == ".npy":
        values = _npy_labels(path)
    else:
        values = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if len(values) != store.n_items:
        raise UserError(f"{path} holds {len(values)} labels but the store has {store.n_items} items; give one per item")
    names = sorted(set(values))
    lookup = {v: i for i, v in enumerate(names)}
    return np.array([lookup[v] for v in values]), names


def _npy_labels(path: Path) -> list[str]:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"labels file {path} is not a readable .npy array ({exc})") from None
    if array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array))):
        raise UserError(f"{path} holds fractional values; labels are classes: whole numbers or names, one per item")
    if array.ndim != 1:
        raise UserError(f"{path} has shape {list(array.shape)}; give one label per item, shape [n_items]")
    return [str(int(v)) if array.dtype.kind == "f" else str(v) for v in array]


def _embeddings(cfg: ScoreConfig, store: ActivationStore, device: torch.device) -> tuple[torch.Tensor, str]:
    if cfg.embeddings is not None:
        path = Path(cfg.embeddings)
        emb = _read_embeddings(path)
        name = cfg.encoder or path.name
        source = f"--embeddings {path}"
    else:
        emb, name = _embed(cfg, store, device)
        source = f"encoder {name!r}"
    if emb.shape[0] != store.n_items:
        raise UserError(f"{source} has {emb.shape[0]} rows but the store has {store.n_items} items; give one per item")
    emb = emb.float()
    bad = ~torch.isfinite(emb).all(1)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise UserError(
            f"{source} holds NaN or infinite values in {int(bad.sum())} of {len(emb)} rows (first: item {first}); "
            "give finite embeddings, one row per item"
        )
    return emb, name


def _embed(cfg: ScoreConfig, store: ActivationStore, device: torch.device) -> tuple[torch.Tensor, str]:
    """The store's items embedded by the external encoder (the store's own data, read again)."""
    modality = store.manifest.model.get("modality")
    if modality not in ("image", "text"):
        # stores written from in-memory arrays have no dataset an encoder could read
        raise UserError(
            f"{cfg.acts} holds {modality} activations with no dataset to embed; pass --embeddings FILE "
            f"({_EMBEDDINGS_SHAPE})"
        )
    name = cfg.encoder or default_encoder(modality)
    settings = store.manifest.settings
    _check_data_unchanged(store, settings.get("data"))
    dataset = load_dataset(settings.get("data", store.manifest.dataset["name"]), settings.get("text_field", "text"),
                           tuple(settings.get("label_columns", ())), recorded_in=store.root)
    small = dataset.native_size is not None and dataset.native_size <= 64
    model = load_model(name, image_size=96 if small else None)
    if model.modality != modality:
        # the same check as the pipeline's embed stage, made before embedding fails deep inside the model
        raise UserError(
            f"encoder {name!r} reads {model.modality} but the store holds {modality} items; pass a {modality} "
            f"encoder (e.g. --encoder {default_encoder(modality)}) or --embeddings FILE"
        )
    return model.to_device(device).embed_items(dataset.load(0, store.n_items)), name


def _check_data_unchanged(store: ActivationStore, ref: str | None) -> None:
    """Embedding items from data that changed since extraction would pair activations with other inputs."""
    recorded = store.manifest.dataset.get("fingerprint")
    if ref is None or recorded is None or not Path(ref).exists():
        return  # bundled data, an older store, or data gone (load_dataset names that)
    if fingerprint(ref) != recorded:
        raise UserError(
            f"data {ref} changed since the store {store.root} was extracted (size or modification time differ); "
            "re-extract the store, or pass --embeddings computed on the original data"
        )


def _read_embeddings(path: Path) -> torch.Tensor:
    """The ``embeddings`` tensor of a safetensors file, or a one-line error saying what the file must hold."""
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(f"--embeddings {path} {problem}; give {_EMBEDDINGS_SHAPE}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            keys = sorted(fh.keys())
            emb = fh.get_tensor(EMBEDDINGS_KEY) if EMBEDDINGS_KEY in keys else None
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--embeddings {path} is not a readable safetensors file ({reason}); give {_EMBEDDINGS_SHAPE}"
                        ) from exc
    if emb is None:
        held = ", ".join(repr(k) for k in keys) or "no tensors"
        raise UserError(
            f"--embeddings {path} has no {EMBEDDINGS_KEY!r} tensor (it holds {held}); give {_EMBEDDINGS_SHAPE}"
        )
    if emb.ndim != 2 or emb.shape[1] < 1:
        raise UserError(
            f"--embeddings {path}: {EMBEDDINGS_KEY!r} has shape {list(emb.shape)}; it must be [n_items, dim]"
        )
    return emb


def _hierarchy(spec: str, labels: np.ndarray | None, names: list[str]) -> Hierarchy:
    if labels is None or np.ndim(labels) != 1:
        raise UserError("--hierarchy needs one class label per item (the store's labels or --labels)")
    return build_hierarchy(load_parents(spec), names)


# ------------------------------------------------------------------------------------------------ one unit set


def _finite(values: torch.Tensor) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), 5) for v in values.tolist()]


def _num(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class _PerUnitLabels:
    """Per unit: the label it correlates with most, that ρ, its correlation entropy and its FMS."""

    best_label: list[str | None]
    best_corr: torch.Tensor
    entropy: torch.Tensor
    fms: torch.Tensor


def _score_set(
    set_id: str, sae_info: tuple[Path, SAE] | None, acts: ItemActivations, emb: torch.Tensor,
    labels: np.ndarray | None, label_names: list[str], fms_p: list[int], fms_balance: bool = True,
) -> tuple[UnitSetScores, list[UnitRow]]:
    x = acts.acts
    k = x.shape[1]
    ms = monosemanticity_score(x, emb)
    active_items = (x > 0).sum(0)
    if labels is not None:
        label_scores, per = _label_scores(x, labels, label_names, fms_p, fms_balance)
    else:
        label_scores = None
        per = _PerUnitLabels(best_label=[None] * k, best_corr=torch.full((k,), float("nan")),
                             entropy=torch.full((k,), float("nan")), fms=torch.full((k,), float("nan")))
    scores = UnitSetScores(
        id=set_id, kind="neurons" if sae_info is None else "sae", width=int(k), l0=acts.l0,
        dead_fraction=float((acts.fired_rows == 0).float().mean()), ms=summarize(ms), ms_values=_finite(ms),
        ms_16=summarize(torch.where(active_items >= MIN_ITEMS_FOR_CARD, ms, torch.nan)),
        sae=None if sae_info is None else _sae_facts(*sae_info), labels=label_scores,
    )
    firing = acts.fired_rows.double() / max(acts.n_rows, 1)
    per_unit = [
        UnitRow(set=set_id, unit=j, ms=_finite(ms[j : j + 1])[0], fms=_finite(per.fms[j : j + 1])[0],
                firing_rate=round(float(firing[j]), 6), active_items=int(active_items[j]),
                best_label=per.best_label[j], best_corr=_finite(per.best_corr[j : j + 1])[0],
                entropy=_finite(per.entropy[j : j + 1])[0])
        for j in range(k)
    ]
    return scores, per_unit


def _label_scores(x: torch.Tensor, labels: np.ndarray, label_names: list[str], fms_p: list[int],
                  fms_balance: bool) -> tuple[LabelScores, _PerUnitLabels]:
    corr = label_correlation(x, torch.as_tensor(labels))
    best = corr.abs().argmax(1)
    per_class = best_unit_per_class(corr)
    summary = _fms_summary(fms(x, torch.as_tensor(labels), p=tuple(fms_p), balance=fms_balance), label_names, fms_p)
    unit_fms = torch.full((x.shape[1],), float("nan"))
    for concept in summary.per_concept.values():
        root, value = concept.root, concept.fms.get(1)
        if root is not None and value is not None and not value <= unit_fms[root]:
            unit_fms[root] = value  # a unit's FMS: the best FMS@1 among concepts it is the root latent of
    scores = LabelScores(corr_mean=_num(per_class.corr_mean), entropy_mean=_num(per_class.entropy_mean),
                         corr_per_class=_finite(per_class.scores), entropy_per_class=_finite(per_class.entropy),
                         fms=summary)
    per = _PerUnitLabels(best_label=[label_names[int(c)] for c in best],
                         best_corr=corr.gather(1, best[:, None]).squeeze(1), entropy=correlation_entropy(corr),
                         fms=unit_fms)
    return scores, per


def _rank_sets(sets: list[UnitSetScores]) -> list[UnitSetScores]:
    """The sets with MedSAE's rank-normalised comparison added, when at least two have label scores."""
    labelled = [s.labels for s in sets if s.labels is not None]
    if len(labelled) < 2:
        return sets

    def nan(values: list[float | None]) -> list[float]:
        return [math.nan if v is None else v for v in values]

    corr = ranked_means([nan(lab.corr_per_class) for lab in labelled], higher_is_better=True)
    entropy = ranked_means([nan(lab.entropy_per_class) for lab in labelled], higher_is_better=False)
    out, i = [], 0
    for s in sets:
        if s.labels is not None:
            s = replace(s, rank_norm=RankNorm(corr_mean=corr.means[i], corr_per_class=_finite(corr.per_class[i]),
                                              entropy_mean=entropy.means[i],
                                              entropy_per_class=_finite(entropy.per_class[i])))
            i += 1
        out.append(s)
    return out


def _fms_summary(result: Any, label_names: list[str], fms_p: list[int]) -> FMSSummary:
    """The FMS result with its variant, its means, and per concept the root (best single) latent and the number of
    items it was scored on."""
    per = {}
    for c, concept in enumerate(result["concepts"]):
        name = label_names[int(concept)] if int(concept) < len(label_names) else str(concept)
        root = int(np.asarray(result["root"])[c])
        per[name] = ConceptFMS(fms={p: _num(np.asarray(result["fms"][p])[c]) for p in fms_p},
                               acc0=_num(np.asarray(result["acc0"])[c]), root=root if root >= 0 else None,
                               n_rows=int(np.asarray(result["n_rows"])[c]))
    return FMSSummary(variant=fms_variant(result["balance"]), fms={p: _num(result["fms_mean"][p]) for p in fms_p},
                      acc0=_num(result["acc0_mean"]), per_concept=per)


def fms_variant(balance: bool) -> str:
    """The name scores.json gives an FMS variant: "balanced" or "unbalanced" (see `metrics.fms`)."""
    return "balanced" if balance else "unbalanced"


def _sae_facts(path: Path, sae: SAE) -> SAEFacts:
    heldout = training = None
    ev = path / "eval.json"
    if ev.is_file():
        e = json.loads(ev.read_text())
        heldout = HeldoutEval(fvu=e.get("fvu"), heldout_l0=e.get("l0"), heldout_dead_fraction=e.get("dead_fraction"))
    log_file = path / "train_log.jsonl"
    if log_file.is_file():
        lines = [json.loads(ln) for ln in log_file.read_text().splitlines() if ln.strip()]
        training = TrainingCurve(**{key: [ln.get(key) for ln in lines] for key in ("tokens", "fvu", "l0",
                                                                                    "dead_fraction")})
    arch = sae.cfg.metadata.get("monosemantic", {}).get("training_architecture", sae.cfg.architecture)
    return SAEFacts(arch=arch, k=sae.cfg.k, expansion=sae.cfg.d_sae / sae.cfg.d_in, heldout=heldout,
                    training=training)


COMMAND = Command(
    "score", ScoreConfig, run,
    description="Score the raw neurons of the store's layer and every SAE's latents in one run: "
    "MonoSemanticity score (MS, against an external encoder), FMS per label, label correlation and entropy, "
    "firing rates. Writes scores.json (summaries), units.csv (one row per unit) and top.safetensors.",
    flags={"acts": ("--acts",), "sae": ("--sae",)},
)

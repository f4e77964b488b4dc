"""`monosemantic score`: every score of a layer's raw neurons and of its SAEs' latents, side by side.

This is the I/O edge of the metrics stage: it reads a store, SAE folders and encoder embeddings, turns token rows
into item-level activations, and calls the pure metric functions. It writes ``scores.json`` (summaries per unit
set), ``units.csv`` (one row per unit) and ``top.safetensors`` (top and weakest-firing items per unit, for cards).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from monosemantic.devices import resolve_device
from monosemantic.errors import UserError
from monosemantic.files import check_out, staged
from monosemantic.metrics.hierarchy import Hierarchy, build_hierarchy, hierarchy_depth, load_parents, rank_normalised
from monosemantic.metrics.items import ItemActivations, item_activations, weakest_firing
from monosemantic.metrics.monosemanticity import default_encoder
from monosemantic.report.scores import MIN_ITEMS_FOR_CARD, SCORES_NAME
from monosemantic.sae.paths import expand_sae_paths
from monosemantic.store import ActivationStore

EMBEDDINGS_KEY = "embeddings"
_EMBEDDINGS_SHAPE = f"a safetensors file with an {EMBEDDINGS_KEY!r} tensor of shape [n_items, dim]"


@dataclass(frozen=True)
class ScoreConfig:
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


def _labels(cfg: ScoreConfig, store: ActivationStore) -> tuple[np.ndarray | None, list[str]]:
    if cfg.labels is None:
        return store.labels, store.label_names
    path = Path(cfg.labels)
    if not path.is_file():
        raise UserError(f"labels file {path} does not exist")
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"labels file {path} is not a readable .npy array ({exc})") from None
        if array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array))):
            raise UserError(f"{path} holds fractional values; labels are classes: whole numbers or names, one per item")
        if array.ndim != 1:
            raise UserError(f"{path} has shape {list(array.shape)}; give one label per item, shape [n_items]")
        values = [str(int(v)) if array.dtype.kind == "f" else str(v) for v in array]
    else:
        values = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if len(values) != store.n_items:
        raise UserError(f"{path} holds {len(values)} labels but the store has {store.n_items} items; give one per item")
    names = sorted(set(values))
    lookup = {v: i for i, v in enumerate(names)}
    return np.array([lookup[v] for v in values]), names


def _embeddings(cfg: ScoreConfig, store: ActivationStore, device: torch.device) -> tuple[torch.Tensor, str]:
    if cfg.embeddings is not None:
        path = Path(cfg.embeddings)
        emb = _read_embeddings(path)
        name = cfg.encoder or path.name
        source = f"--embeddings {path}"
    else:
        from monosemantic.sources import load_dataset, load_model

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
        emb = model.to_device(device).embed_items(dataset.load(0, store.n_items))
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


def _check_data_unchanged(store: ActivationStore, ref: str | None) -> None:
    """Embedding items from data that changed since extraction would pair activations with other inputs."""
    from monosemantic.sources.datasets import fingerprint

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


def _validate(cfg: ScoreConfig) -> None:
    """Refuse impossible settings before anything is read or written."""
    if isinstance(cfg.chunk_rows, bool) or not isinstance(cfg.chunk_rows, int) or cfg.chunk_rows < 1:
        raise UserError(f"--chunk-rows must be a positive number of rows (default 16384); got {cfg.chunk_rows!r}")
    fms_p = list(cfg.fms_p)
    if not fms_p or any(isinstance(p, bool) or not isinstance(p, int) or p < 1 for p in fms_p):
        shown = " ".join(map(str, fms_p)) or "nothing"
        raise UserError(
            f"--fms-p takes positive whole numbers (how many top latents FMS@p removes, e.g. --fms-p 1 --fms-p 5); "
            f"got {shown}"
        )
    if cfg.pool not in ("max", "mean"):
        raise UserError(f"--pool must be 'max' or 'mean'; got {cfg.pool!r}")
    resolve_device(cfg.device)


def score(cfg: ScoreConfig, *, progress: bool = True) -> dict[str, Any]:
    """Score the raw neurons of the store's layer and every SAE; write and return the summaries."""
    from monosemantic.sae import SAE

    _validate(cfg)
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

    summaries, rows, tops = [], [], {}
    todo: list[tuple[str, tuple[Path, Any] | None]] = [("neurons", None), *((p.name, (p, sae)) for p, sae in saes)]
    for set_id, sae_info in tqdm(todo, desc="score", unit="unit set", disable=not progress, dynamic_ncols=True):
        if sae_info is None:
            acts = item_activations(store, hook, lambda x: x, d_in, cfg.pool, cfg.chunk_rows, device)
        else:
            acts = item_activations(store, hook, sae_info[1].encode, sae_info[1].cfg.d_sae, cfg.pool, cfg.chunk_rows,
                                    device)
        summary, per_unit = _score_set(set_id, sae_info, acts, emb, labels, label_names, cfg.fms_p, cfg.fms_balance)
        groups = None if sae_info is None else sae_info[1].cfg.group_sizes
        if hierarchy is not None and groups:
            ms = torch.tensor([math.nan if v is None else v for v in summary["ms"]["values"]])
            summary["hierarchy"] = hierarchy_depth(acts.acts.cpu(), torch.as_tensor(labels), hierarchy, groups, ms)
        summaries.append(summary)
        rows.extend(per_unit)
        top_v, top_i = torch.topk(acts.acts, min(16, store.n_items), dim=0)
        weak_v, weak_i = weakest_firing(acts.acts, 16)
        tops.update({f"{set_id}/top_values": top_v.T.contiguous(), f"{set_id}/top_items": top_i.T.contiguous(),
                     f"{set_id}/weak_values": weak_v, f"{set_id}/weak_items": weak_i})
    _rank_sets(summaries)
    result = {
        "store": str(Path(cfg.acts).resolve()), "hook": hook, "model": store.manifest.model["name"],
        "dataset": store.manifest.dataset["name"], "n_items": store.n_items, "n_rows": store.n_rows,
        "tokens": store.manifest.tokens, "pool": cfg.pool, "encoder": encoder, "label_names": label_names,
        "unit_sets": summaries,
    }
    with staged(out) as tmp:
        (tmp / SCORES_NAME).write_text(json.dumps(result, indent=1))
        _write_csv(tmp / "units.csv", rows)
        save_file(tops, str(tmp / "top.safetensors"))
    return result


def _finite(values: torch.Tensor) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), 5) for v in values.tolist()]


def _score_set(
    set_id: str, sae_info: tuple[Path, Any] | None, acts: ItemActivations, emb: torch.Tensor,
    labels: np.ndarray | None, label_names: list[str], fms_p: list[int], fms_balance: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from monosemantic import metrics as M

    x = acts.acts
    ms = M.monosemanticity_score(x, emb)
    active_items = (x > 0).sum(0)
    summary: dict[str, Any] = {
        "id": set_id, "kind": "neurons" if sae_info is None else "sae", "width": int(x.shape[1]), "l0": acts.l0,
        "dead_fraction": float((acts.fired_rows == 0).float().mean()),
        "ms": {**M.summarize(ms), "values": _finite(ms)},
        "ms_16": M.summarize(torch.where(active_items >= MIN_ITEMS_FOR_CARD, ms, torch.nan)),
    }
    if sae_info is not None:
        path, sae = sae_info
        summary.update(_sae_facts(path, sae))
    firing = acts.fired_rows.double() / max(acts.n_rows, 1)
    best_label: list[str | None] = [None] * x.shape[1]
    best_corr = torch.full((x.shape[1],), float("nan"))
    entropy = torch.full((x.shape[1],), float("nan"))
    unit_fms = torch.full((x.shape[1],), float("nan"))
    if labels is not None:
        corr = M.label_correlation(x, torch.as_tensor(labels))
        entropy = M.correlation_entropy(corr)
        best = corr.abs().argmax(1)
        best_corr = corr.gather(1, best[:, None]).squeeze(1)
        best_label = [label_names[int(c)] for c in best]
        per_class = M.best_unit_per_class(corr)
        summary["corr_mean"] = _num(per_class["corr_mean"])
        summary["entropy_mean"] = _num(per_class["entropy_mean"])
        summary["corr_per_class"] = _finite(per_class["scores"])
        summary["entropy_per_class"] = _finite(per_class["entropy"])
        result = M.fms(x, torch.as_tensor(labels), p=tuple(fms_p), balance=fms_balance)
        summary["fms"] = _fms_summary(result, label_names, fms_p)
        for info in summary["fms"]["per_concept"].values():
            root, value = info["root"], info.get("fms@1")
            if root is not None and value is not None and not value <= unit_fms[root]:
                unit_fms[root] = value  # a unit's FMS: the best FMS@1 among concepts it is the root latent of
    per_unit = [
        {"set": set_id, "unit": j, "ms": _finite(ms[j : j + 1])[0], "fms": _finite(unit_fms[j : j + 1])[0],
         "firing_rate": round(float(firing[j]), 6), "active_items": int(active_items[j]),
         "best_label": best_label[j], "best_corr": _finite(best_corr[j : j + 1])[0],
         "entropy": _finite(entropy[j : j + 1])[0]}
        for j in range(x.shape[1])
    ]
    return summary, per_unit


def _rank_sets(summaries: list[dict[str, Any]]) -> None:
    """MedSAE's rank-normalised comparison across every unit set (raw neurons included), per class, then averaged:
    1 for the set with the best label correlation (lowest entropy) of a class, 0 for the worst."""
    sets = [s for s in summaries if "corr_per_class" in s]
    if len(sets) < 2:
        return
    for key, higher in (("corr", True), ("entropy", False)):
        table = [[math.nan if v is None else v for v in s[f"{key}_per_class"]] for s in sets]
        ranked = rank_normalised(table, higher_is_better=higher)
        for s, row in zip(sets, ranked, strict=True):
            ok = row[~torch.isnan(row)]
            s.setdefault("rank_norm", {})[f"{key}_mean"] = float(ok.mean()) if len(ok) else None
            s["rank_norm"][f"{key}_per_class"] = _finite(row)


def _hierarchy(spec: str, labels: np.ndarray | None, names: list[str]) -> Hierarchy:
    if labels is None or np.ndim(labels) != 1:
        raise UserError("--hierarchy needs one class label per item (the store's labels or --labels)")
    return build_hierarchy(load_parents(spec), names)


def _fms_summary(result: Any, label_names: list[str], fms_p: list[int]) -> dict[str, Any]:
    """The FMS result as plain JSON: the variant, means, and one entry per concept with its root (best single)
    latent and the number of items it was scored on."""
    # "variant" first: the numbers of the two variants differ a lot, so a reader must see which one this is
    out: dict[str, Any] = {"variant": fms_variant(result["balance"])}
    out.update({f"fms@{p}": _num(result["fms_mean"][p]) for p in fms_p})
    out["acc0"] = _num(result["acc0_mean"])
    per = {}
    for c, concept in enumerate(result["concepts"]):
        name = label_names[int(concept)] if int(concept) < len(label_names) else str(concept)
        entry: dict[str, Any] = {f"fms@{p}": _num(np.asarray(result["fms"][p])[c]) for p in fms_p}
        entry["acc0"] = _num(np.asarray(result["acc0"])[c])
        root = int(np.asarray(result["root"])[c])
        entry["root"] = root if root >= 0 else None
        entry["n_rows"] = int(np.asarray(result["n_rows"])[c])
        per[name] = entry
    out["per_concept"] = per
    return out


def fms_variant(balance: bool) -> str:
    """The name scores.json gives an FMS variant: "balanced" or "unbalanced" (see `metrics.fms`)."""
    return "balanced" if balance else "unbalanced"


def _num(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _sae_facts(path: Path, sae: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {"arch": sae.cfg.metadata.get("monosemantic", {}).get("training_architecture",
                                                                                   sae.cfg.architecture),
                             "k": sae.cfg.k, "expansion": sae.cfg.d_sae / sae.cfg.d_in}
    ev = path / "eval.json"
    if ev.is_file():
        e = json.loads(ev.read_text())
        facts.update({"fvu": e.get("fvu"), "heldout_l0": e.get("l0"), "heldout_dead_fraction": e.get("dead_fraction")})
    log = path / "train_log.jsonl"
    if log.is_file():
        lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]
        facts["training"] = {key: [ln.get(key) for ln in lines] for key in ("tokens", "fvu", "l0", "dead_fraction")}
    return facts


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

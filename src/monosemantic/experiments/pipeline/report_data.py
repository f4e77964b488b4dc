"""Turn a run's scores into ``report_data.json``: summaries, the features table and feature cards."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

import monosemantic
from monosemantic.experiments.pipeline.config import RunConfig
from monosemantic.metrics.items import rows_of_items
from monosemantic.report.scores import MIN_ITEMS_FOR_CARD, load_tops
from monosemantic.sae.paths import expand_sae_paths
from monosemantic.store import ActivationStore

REPORT_FORMAT = 1
SNIPPET_RADIUS = 12


def build_report_data(cfg: RunConfig, track_scores: list[dict[str, Any]]) -> dict[str, Any]:
    tracks = [_track(t) for t in track_scores]
    return {
        "format_version": REPORT_FORMAT, "title": cfg.title,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "monosemantic_version": monosemantic.__version__,
        "headline": [line for t in tracks for line in _headline(t)], "tracks": tracks,
    }


def _headline(track: dict[str, Any]) -> list[str]:
    sets = track["unit_sets"]
    neurons = next(s for s in sets if s["kind"] == "neurons")
    saes = [s for s in sets if s["kind"] == "sae" and s["ms"]["mean"] is not None]
    if not saes:
        return []
    best = max(saes, key=lambda s: s["ms"]["mean"])
    lines = [
        f"{track['name']}: {track['model']} {track['hook']} on {track['dataset']} (MS encoder {track['encoder']}): "
        f"mean MS of raw neurons {neurons['ms']['mean']:.3f}; SAE latents {min(s['ms']['mean'] for s in saes):.3f}"
        f" to {best['ms']['mean']:.3f} (best: {best['id']})."
    ]
    if "fms" in neurons and all("fms" in s for s in saes):
        top = max(saes, key=lambda s: s["fms"]["fms@1"])
        variant = neurons["fms"].get("variant") or "unbalanced"  # scores without one predate the balanced variant
        lines.append(f"{track['name']}: FMS@1 ({variant}) of raw neurons {neurons['fms']['fms@1']:.3f}; best SAE "
                     f"{top['fms']['fms@1']:.3f} ({top['id']}).")
    return lines


def _track(t: dict[str, Any]) -> dict[str, Any]:
    track, scores = t["track"], t["scores"]
    store = ActivationStore.open(t["store"])
    tops = load_tops(t["score_dir"])
    features = _features(t["score_dir"] / "units.csv")
    saes = {p.name: p for p in expand_sae_paths(t["saes"])} if t["saes"] else {}
    modality = store.manifest.model["modality"]
    cards = []
    for s in scores["unit_sets"]:
        chosen = _choose(features, s["id"], track.n_cards)
        encode = _encoder_for(s["id"], saes)
        for row in chosen:
            cards.append(unit_card(row, tops, store, modality, encode, scores["label_names"]))
    return {
        "name": track.name, "modality": modality, "model": scores["model"], "hook": scores["hook"],
        "dataset": scores["dataset"], "n_items": scores["n_items"], "n_rows": scores["n_rows"],
        "tokens": scores["tokens"], "encoder": scores["encoder"], "label_names": scores["label_names"],
        "pool": scores["pool"], "unit_sets": scores["unit_sets"], "features": features, "cards": cards,
    }


def _features(path: Path) -> list[dict[str, Any]]:
    def num(v: str) -> float | None:
        return None if v in ("", "None", "nan") else float(v)

    with open(path, newline="") as fh:
        return [
            {"set": r["set"], "id": int(r["unit"]), "ms": num(r["ms"]), "fms": num(r["fms"]),
             "firing_rate": num(r["firing_rate"]), "active_items": int(r["active_items"]),
             "best_label": r["best_label"] or None, "best_corr": num(r["best_corr"]), "entropy": num(r["entropy"])}
            for r in csv.DictReader(fh)
        ]


def _choose(features: list[dict[str, Any]], set_id: str, n: int) -> list[dict[str, Any]]:
    """The n highest-MS units that fire on enough items for the score to mean something."""
    rows = [f for f in features if f["set"] == set_id and f["ms"] is not None]
    live = [f for f in rows if f["active_items"] >= MIN_ITEMS_FOR_CARD] or rows
    return sorted(live, key=lambda f: -f["ms"])[:n]


def _encoder_for(set_id: str, saes: dict[str, Path]):
    if set_id == "neurons":
        return lambda x: x
    from monosemantic.sae import SAE

    sae = SAE.load(saes[set_id])
    return sae.encode


def unit_card(row: dict[str, Any], tops: dict[str, torch.Tensor], store: ActivationStore, modality: str, encode,
          label_names: list[str]) -> dict[str, Any]:
    sid, unit = row["set"], row["id"]
    top = list(zip(tops[f"{sid}/top_items"][unit].tolist(), tops[f"{sid}/top_values"][unit].tolist(), strict=True))
    weak = [(i, v) for i, v in zip(tops[f"{sid}/weak_items"][unit].tolist(), tops[f"{sid}/weak_values"][unit].tolist(),
                                   strict=True) if i >= 0]
    card = {k: row[k] for k in ("set", "id", "ms", "fms", "firing_rate", "best_label", "active_items")}
    labels = store.labels
    if labels is not None and labels.ndim == 1:
        hist: dict[str, int] = {}
        for i, _ in top:
            name = label_names[int(labels[i])] if labels[i] < len(label_names) else str(labels[i])
            hist[name] = hist.get(name, 0) + 1
        card["label_hist"] = hist
    if modality == "image":
        card["top"] = [{"item": i, "value": round(v, 4), "image": _thumb(store, i)} for i, v in top]
        card["weak"] = [{"item": i, "value": round(v, 4), "image": _thumb(store, i)} for i, v in weak]
    else:
        peak = max((v for _, v in top), default=1.0) or 1.0
        card["top"] = [_snippet(store, i, unit, encode, peak) for i, _ in top[:8]]
        card["weak"] = [_snippet(store, i, unit, encode, peak) for i, _ in weak[:4]]
    return card


def _thumb(store: ActivationStore, item: int, size: int = 56) -> str:
    from PIL import Image

    from monosemantic.sources import load_image

    ref = store.items[item]["ref"]
    img = Image.fromarray(np.asarray(load_image(ref)).astype(np.uint8))
    if max(img.size) < size:
        img = img.resize((size, size), Image.NEAREST)
    img.thumbnail((size * 2, size * 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@torch.inference_mode()
def _snippet(store: ActivationStore, item: int, unit: int, encode, peak: float) -> dict[str, Any]:
    rows = rows_of_items(store, np.array([item]))[item]
    values = encode(store.gather(None, rows))[:, unit].float()
    tokens = store.item_tokens(item)
    centre = int(values.argmax()) if len(values) else 0
    a, b = max(0, centre - SNIPPET_RADIUS), min(len(tokens), centre + SNIPPET_RADIUS + 1)
    weights = (values[a:b].clamp_min(0) / peak).clamp(0, 1)
    return {"item": item, "value": round(float(values.max()), 4) if len(values) else 0.0,
            "tokens": tokens[a:b], "weights": [round(float(w), 3) for w in weights]}

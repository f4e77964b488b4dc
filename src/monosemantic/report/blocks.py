"""A track of the report as template contexts: the headline tiles, the provenance facts, the summary table, the
Matryoshka hierarchy tables, the plots, the features table (its controls, and the JSON island report.js fills it
from) and the feature cards.

The markup is in ``templates/track.html.j2``; ``summary_table`` and ``hierarchy_block`` render one part alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from monosemantic.report.cards import ImageClasses, cards_context
from monosemantic.report.figures import FigureSpec, best_sae, fms_title
from monosemantic.report.numbers import fmt, fmt_count, num
from monosemantic.report.sections.names import naming_notes
from monosemantic.report.style import set_colors
from monosemantic.report.templating import Context, macro
from monosemantic.results import JSONDict

MIN_ACTIVE_DEFAULT = 16
"""Units active on fewer items than this are hidden from the features table until the filter is changed."""


def track_context(track: JSONDict, t: int, specs: Sequence[FigureSpec], pngs: dict[str, tuple[str, int]],
                  images: ImageClasses) -> Context:
    """Track ``t`` with its plots (``specs``, drawn as ``pngs``: id -> (data URI, width in CSS pixels))."""
    card_keys = {(str(c["set"]), str(c["id"])) for c in track.get("cards") or []}
    return {
        "t": t, "name": track["name"], "modality": track["modality"], "facts": facts(track),
        "summary": summary_context(track, t), "hierarchy": hierarchy_context(track),
        "figures": [{"id": s.id, "title": s.title, "caption": s.caption, "uri": pngs[s.id][0],
                     "width": pngs[s.id][1]} for s in specs],
        "n_features": len(track.get("features") or []), "n_cards": len(track.get("cards") or []),
        "names": naming_notes(track), "features": features_context(track, t, card_keys),
        "cards": cards_context(track, t, images),
    }


def _round(x: Any) -> float | None:
    v = num(x)
    return None if v is None else float(f"{v:.4g}")


# ------------------------------------------------------------------------------------------------- summary


def summary_context(track: JSONDict, t: int) -> Context:
    """Per unit set: size, reconstruction and sparsity, MS and FMS, with the raw neurons as the baseline row."""
    colors = set_colors(track)
    sets = track["unit_sets"]
    neurons = next((s for s in sets if s["kind"] == "neurons"), None)
    base = None if neurons is None else num(neurons["ms"].get("mean"))
    means = [num(s["ms"].get("mean")) for s in sets]
    top = max((m for m in means if m is not None), default=None)
    best = {key: _best(sets, key) for key in ("fms@1", "fms@5")}
    ranked = any(s.get("rank_norm") for s in sets)
    rows = []
    for s, mean in zip(sets, means, strict=True):
        ms, fms = s["ms"], s.get("fms") or {}
        is_base = s["kind"] == "neurons"
        rows.append({
            "base": is_base, "id": s["id"], "color": colors[str(s["id"])], "describe": _describe(s),
            "width": fmt_count(s.get("width")), "k": fmt_count(s.get("k")), "l0": fmt(s.get("l0"), 1),
            "fvu": fmt(s.get("fvu"), 3), "dead_ms": fmt_count(ms.get("dead")),
            "dead": fmt(s.get("dead_fraction"), 2, pct=True),
            "bar": None if mean is None or not top or top <= 0 else f"{max(0.0, 100 * mean / top):.1f}",
            "top": mean is not None and fmt(mean) == fmt(top), "mean": fmt(mean), "std": fmt(ms.get("std")),
            "best": fmt(ms.get("best")), "worst": fmt(ms.get("worst")),
            "fms": [(fmt(fms.get(key)), best[key] is not None and fmt(fms.get(key)) == fmt(best[key]))
                    for key in ("fms@1", "fms@5")],
            "delta": None if is_base or mean is None or base is None else _delta(mean, base),
            "ranks": [fmt((s.get("rank_norm") or {}).get(key)) for key in ("corr_mean", "entropy_mean")]
            if ranked else [],
        })
    return {"t": t, "rows": rows, "ranked": ranked, "fms1": fms_title(track, "FMS@1"),
            "fms5": fms_title(track, "FMS@5")}


def summary_table(track: JSONDict, t: int) -> Markup:
    """The summary table of track ``t`` alone."""
    return macro("track.html.j2", "summary_table")(summary_context(track, t))


def _best(sets: list[JSONDict], key: str) -> float | None:
    values = [num((s.get("fms") or {}).get(key)) for s in sets]
    return max((v for v in values if v is not None), default=None)


def _describe(s: JSONDict) -> str:
    if s["kind"] == "neurons":
        return "raw neurons of the layer"
    parts = [str(s.get("arch", "sae"))]
    if (expansion := num(s.get("expansion"))) is not None:
        parts.append(f"×{expansion:g}")
    if (k := num(s.get("k"))) is not None:
        parts.append(f"k={k:g}")
    return " ".join(parts)


def _delta(mean: float, base: float) -> Context:
    d = mean - base
    ratio = f" (×{mean / base:.1f})" if base > 0 else ""
    return {"up": d >= 0, "text": f"{d:+.2f}{ratio}"}


# ------------------------------------------------------------------------------------------------- headline


def kpi_context(track: JSONDict, t: int) -> Context:
    """The two headline contrasts of a track (MS and FMS@1, raw neurons against the best SAE) and the best SAE's
    fit."""
    neurons = next((s for s in track["unit_sets"] if s["kind"] == "neurons"), None)
    best = best_sae(track)
    fms_best = max(
        (s for s in track["unit_sets"] if s["kind"] != "neurons"),
        key=lambda s: num((s.get("fms") or {}).get("fms@1")) or -1.0, default=None,
    )

    def tile(title: str, base: Any, value: Any, who: Any) -> Context:
        return {"title": title, "base": fmt(base), "value": fmt(value), "who": who if who is not None else "no SAE"}

    tiles = [
        tile("Mean MS", None if neurons is None else neurons["ms"].get("mean"),
             None if best is None else best["ms"].get("mean"), None if best is None else best["id"]),
        tile(fms_title(track), None if neurons is None else (neurons.get("fms") or {}).get("fms@1"),
             None if fms_best is None else (fms_best.get("fms") or {}).get("fms@1"),
             None if fms_best is None else fms_best["id"]),
    ]
    fit = None if best is None else {"fvu": fmt(best.get("fvu"), 3), "l0": fmt(best.get("l0"), 1), "id": best["id"]}
    where = " · ".join(str(track[k]) for k in ("model", "hook", "dataset") if track.get(k) not in (None, ""))
    return {"t": t, "name": track["name"], "where": where, "tiles": tiles, "fit": fit}


def facts(track: JSONDict) -> list[tuple[str, Any]]:
    """The provenance line of a track: model, hook, data, sizes, token pooling, MS encoder, labels."""
    items = [
        ("model", track.get("model")), ("hook", track.get("hook")), ("dataset", track.get("dataset")),
        ("items", fmt_count(track.get("n_items")) if track.get("n_items") is not None else None),
        ("rows", fmt_count(track.get("n_rows")) if track.get("n_rows") is not None else None),
        ("tokens", track.get("tokens")), ("pooling", track.get("pool")), ("MS encoder", track.get("encoder")),
        ("labels", ", ".join(map(str, track.get("label_names") or [])) or None),
    ]
    return [(k, v) for k, v in items if v not in (None, "")]


# ------------------------------------------------------------------------------------------------ hierarchy


def hierarchy_context(track: JSONDict) -> list[Context]:
    """Per unit set scored with ``--hierarchy``: its nested groups' depths and each level's best latents."""
    out = []
    for s in (s for s in track["unit_sets"] if s.get("hierarchy")):
        h = s["hierarchy"]
        groups = [{**g, "mean_depth": fmt(g.get("mean_depth")), "ms_mean": fmt(g.get("ms_mean"))} for g in h["groups"]]
        levels = [{"level": lv["level"], "mean_group": fmt(lv["mean_group"]),
                   "nodes": [{**n, "corr": fmt(n["corr"])} for n in lv["nodes"]]} for lv in h["levels"]]
        out.append({"id": s["id"], "groups": groups, "levels": levels})
    return out


def hierarchy_block(track: JSONDict, t: int) -> Markup:
    """The hierarchy tables of track ``t`` alone; empty when no unit set was scored with ``--hierarchy``."""
    return macro("track.html.j2", "hierarchy")(hierarchy_context(track), t)


# ---------------------------------------------------------------------------------------------- features


def features_payload(track: JSONDict, card_keys: set[tuple[str, str]]) -> JSONDict:
    """Column-wise, rounded feature rows for the JS table (columns keep tens of thousands of rows small)."""
    sets = [str(s["id"]) for s in track["unit_sets"]]
    set_index = {name: i for i, name in enumerate(sets)}
    labels: list[str] = []
    label_index: dict[str, int] = {}
    cols: dict[str, list[Any]] = {
        k: [] for k in ("set", "id", "ms", "fms", "fr", "active", "label", "corr", "ent", "card")
    }
    names: list[str | None] = []
    for f in track.get("features") or []:
        label = f.get("best_label")
        if label is None:
            li = -1
        else:
            li = label_index.setdefault(str(label), len(labels))
            if li == len(labels):
                labels.append(str(label))
        cols["set"].append(set_index[str(f["set"])])
        cols["id"].append(f["id"] if isinstance(f["id"], int) else str(f["id"]))
        cols["ms"].append(_round(f.get("ms")))
        cols["fms"].append(_round(f.get("fms")))
        cols["fr"].append(_round(f.get("firing_rate")))
        active = num(f.get("active_items"))
        cols["active"].append(None if active is None else int(active))
        cols["label"].append(li)
        cols["corr"].append(_round(f.get("best_corr")))
        cols["ent"].append(_round(f.get("entropy")))
        cols["card"].append(1 if (str(f["set"]), str(f["id"])) in card_keys else 0)
        names.append(f.get("name") or None)
    if all(v is None for v in cols["active"]):
        del cols["active"]  # older runs have no per-unit item counts: no empty column
    if any(names):  # automated names (`monosemantic name`): a column, and the search matches them
        cols["name"] = names
    return {"sets": sets, "colors": [set_colors(track)[s] for s in sets], "labels": labels, **cols}


_FEATURE_COLUMNS = (
    ("set", "Units", "s"), ("id", "Id", "n"), ("name", "Name", "s"), ("ms", "MS", "n"), ("fms", "FMS", "n"),
    ("fr", "Firing rate", "n"), ("active", "Active items", "n"), ("label", "Best label", "s"),
    ("corr", "Best corr", "n"), ("ent", "Label entropy", "n"), ("card", "Card", "s"),
)


def features_context(track: JSONDict, t: int, card_keys: set[tuple[str, str]]) -> Context:
    """Controls and an empty table that report.js fills from the JSON island beside it."""
    payload = features_payload(track, card_keys)
    columns = [(c, fms_title(track, "FMS") if c == "fms" else name, kind)
               for c, name, kind in _FEATURE_COLUMNS if c in payload]
    return {"t": t, "payload": payload, "columns": columns, "min_active": MIN_ACTIVE_DEFAULT,
            "sets": list(enumerate(payload["sets"])),
            "labels": sorted(enumerate(payload["labels"]), key=lambda p: p[1])}

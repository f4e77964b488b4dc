"""The data behind each plot of a track (a JSON-ready spec), and the track facts the plots and tables share.

The spec is the single source of each plot, so ``figures.json`` holds exactly what the PNGs show and anyone can
re-plot a figure in their own style; ``monosemantic.report.plots`` draws them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from monosemantic.report.numbers import num
from monosemantic.report.style import NEURON_COLOR, set_colors
from monosemantic.results import JSONDict

_MAX_BAR_SETS = 8


@dataclass(frozen=True)
class FigureSpec:
    """One plot: what it shows and the numbers behind it (a ``figures.json`` entry)."""

    id: str
    """``t<track index>-<kind>``: the plot's element id in the page."""
    track: str
    """The track's name."""
    kind: str
    """Which drawing of ``monosemantic.report.plots`` shows it."""
    title: str
    caption: str
    data: JSONDict

    def to_json(self) -> JSONDict:
        return asdict(self)


def _finite(values: Any) -> list[float]:
    return [v for v in (num(x) for x in values or []) if v is not None]


def _ms_mean(unit_set: JSONDict) -> float | None:
    return num(unit_set["ms"].get("mean"))


def fms_variant(track: JSONDict) -> str | None:
    """Which FMS variant produced a track's FMS numbers: "balanced" or "unbalanced" (see `metrics.fms`), "mixed"
    when its unit sets disagree, None when no set has FMS. Scores from before the variant was recorded are
    unbalanced: that was the only variant then."""
    found = {str(s["fms"].get("variant") or "unbalanced") for s in track["unit_sets"] if isinstance(s.get("fms"), dict)}
    if not found:
        return None
    return found.pop() if len(found) == 1 else "mixed"


def fms_title(track: JSONDict, name: str = "FMS@1") -> str:
    """A label for FMS numbers that names their variant, e.g. "FMS@1 (balanced)"."""
    variant = fms_variant(track)
    return name if variant is None else f"{name} ({variant})"


def best_sae(track: JSONDict) -> JSONDict | None:
    """The SAE of a track with the highest mean MS (None if the track has no scored SAE)."""
    saes = [s for s in track["unit_sets"] if s["kind"] != "neurons" and _ms_mean(s) is not None]
    return max(saes, key=lambda s: _ms_mean(s) or 0.0) if saes else None


def figure_specs(data: JSONDict) -> list[FigureSpec]:
    """Every figure of the report, in page order; a figure whose data is absent is left out."""
    specs: list[FigureSpec] = []
    for t, track in enumerate(data["tracks"]):
        for make in (_ms_distribution, _ms_vs_size, _training, _fms_per_concept, _ms_vs_firing):
            spec = make(track)
            if spec is not None:
                specs.append(replace(spec, id=f"t{t}-{spec.kind}", track=str(track["name"])))
    return specs


def _spec(kind: str, title: str, caption: str, data: JSONDict) -> FigureSpec:
    return FigureSpec(id="", track="", kind=kind, title=title, caption=caption, data=data)


def _ms_distribution(track: JSONDict) -> FigureSpec | None:
    colors = set_colors(track)
    sets = []
    for s in track["unit_sets"]:
        values = _finite(s["ms"].get("values"))
        n_all = len(s["ms"].get("values") or [])
        sets.append(
            {"id": str(s["id"]), "kind": s["kind"], "color": colors[str(s["id"])], "values": values,
             "mean": _ms_mean(s), "dead": n_all - len(values)}
        )
    if not any(len(s["values"]) for s in sets):
        return None
    best = best_sae(track)
    neurons = next((s for s in sets if s["kind"] == "neurons"), None)
    caption = "MonoSemanticity score of every unit (dead units, MS undefined, left out)."
    if neurons is not None and best is not None:
        caption += " Left: raw neurons against the SAE with the highest mean MS. Right: every unit set."
    return _spec(
        "ms_distribution", "MS distribution: neurons vs SAE latents", caption,
        {"sets": sets, "best_sae": None if best is None else str(best["id"])},
    )


def _ms_vs_size(track: JSONDict) -> FigureSpec | None:
    colors = set_colors(track)
    saes = [
        {"id": str(s["id"]), "arch": str(s.get("arch", "sae")), "expansion": num(s.get("expansion")),
         "k": num(s.get("k")), "width": num(s.get("width")), "ms_mean": _ms_mean(s),
         "ms_std": num(s["ms"].get("std")), "color": colors[str(s["id"])]}
        for s in track["unit_sets"]
        if s["kind"] != "neurons" and _ms_mean(s) is not None
    ]
    if not saes:
        return None
    neurons = next((s for s in track["unit_sets"] if s["kind"] == "neurons"), None)
    return _spec(
        "ms_vs_size", "Mean MS against dictionary width and k",
        "Mean MS (± one std over units) of each SAE; the dashed line is the raw neurons of the same layer.",
        {"saes": saes, "neurons_mean": None if neurons is None else _ms_mean(neurons)},
    )


def _training(track: JSONDict) -> FigureSpec | None:
    colors = set_colors(track)
    curves = []
    for s in track["unit_sets"]:
        tr = s.get("training")
        if not isinstance(tr, dict) or not tr.get("tokens"):
            continue
        curve: JSONDict = {"id": str(s["id"]), "color": colors[str(s["id"])],
                                 "tokens": [num(v) for v in tr["tokens"]]}
        for key in ("fvu", "l0", "dead_fraction"):
            curve[key] = [num(v) for v in tr.get(key) or []]
        curves.append(curve)
    if not curves:
        return None
    return _spec(
        "training", "Training curves",
        "Fraction of variance unexplained, L0 and dead fraction against training tokens.", {"curves": curves},
    )


def _fms_per_concept(track: JSONDict) -> FigureSpec | None:
    colors = set_colors(track)
    rows = []
    concepts: list[str] = []
    for s in track["unit_sets"]:
        per = (s.get("fms") or {}).get("per_concept") or {}
        if not isinstance(per, dict) or not per:
            continue
        for name in per:
            if str(name) not in concepts:
                concepts.append(str(name))
        rows.append({"id": str(s["id"]), "kind": s["kind"], "color": colors[str(s["id"])],
                     "fms@1_total": num((s.get("fms") or {}).get("fms@1")), "per": per})
    if not rows:
        return None
    # Many SAEs make grouped bars unreadable: keep the neurons and the SAEs with the best FMS@1.
    neurons = [r for r in rows if r["kind"] == "neurons"]
    saes = sorted((r for r in rows if r["kind"] != "neurons"), key=lambda r: -(r["fms@1_total"] or 0.0))
    chosen = {id(r) for r in neurons + saes[: _MAX_BAR_SETS - len(neurons)]}
    kept = [r for r in rows if id(r) in chosen]  # in track order, like every other plot
    sets = [
        {"id": r["id"], "kind": r["kind"], "color": r["color"],
         "fms@1": [num((r["per"].get(c) or {}).get("fms@1")) for c in concepts],
         "fms@5": [num((r["per"].get(c) or {}).get("fms@5")) for c in concepts]}
        for r in kept
    ]
    variant = fms_variant(track)
    scored_on = {"balanced": ", each scored on its items and as many random other items",
                 "unbalanced": ", each scored on all items"}.get(str(variant), "")
    caption = f"{fms_title(track)} of the best single unit for each labelled concept (concept vs rest{scored_on})."
    if len(kept) < len(rows):
        caption += f" Showing the neurons and the {len(kept) - len(neurons)} SAEs with the highest FMS@1."
    return _spec("fms_per_concept", "FMS per concept", caption,
                 {"concepts": concepts, "sets": sets, "ylabel": fms_title(track)})


def _ms_vs_firing(track: JSONDict) -> FigureSpec | None:
    colors = set_colors(track)
    by_set: dict[str, JSONDict] = {}
    for f in track.get("features") or []:
        ms, rate = num(f.get("ms")), num(f.get("firing_rate"))
        if ms is None or rate is None or rate <= 0:
            continue
        key = str(f["set"])
        entry = by_set.setdefault(key, {"id": key, "color": colors.get(key, NEURON_COLOR), "ms": [], "firing_rate": []})
        entry["ms"].append(ms)
        entry["firing_rate"].append(rate)
    if not by_set:
        return None
    order = [str(s["id"]) for s in track["unit_sets"]]
    sets = [by_set[k] for k in order if k in by_set]
    return _spec(
        "ms_vs_firing", "MS against firing rate",
        "Each dot is a unit. Units that fire on very few inputs can score a trivially high MS.", {"sets": sets},
    )

"""The report section of steering tracks (Härle et al., arXiv 2506.19382): per task, how monosemantic the vanilla
SAE's and the G-SAE's concept latents are (balanced FMS@1 / FMS@5, detection AUROC), the α sweep (success rate,
perplexity, repetition), success-vs-perplexity curves, and example generations baseline | vanilla | G-SAE.

Shown when the run folder holds ``steer/steer.json`` (written by the ``[[steer]]`` tables of a run config).
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from monosemantic.report.plots import to_png_data_uri
from monosemantic.report.tables import value_table
from monosemantic.results import JSONDict, ResultKind
from monosemantic.steer.evaluate import REPETITION_MARGIN

KIND = ResultKind(name="steer", file="steer.json", format="monosemantic-steer", title="Steering: vanilla SAE vs G-SAE")
ORDER = 4

METHOD_NAMES = {"vanilla": "vanilla TopK SAE (root latent of its FMS tree)", "gsae": "G-SAE (reserved latent)"}
_SWEEP_COLUMNS = (("method", "method", None), ("alpha", "α", 2), ("success_rate", "success", 3),
                  ("ppl_median", "median PPL", 2), ("ppl_ratio", "PPL ratio", 2), ("repetition", "repetition", 3))


def _curve(track: JSONDict) -> tuple[str, str, str]:
    sweep = track["sweep"]
    fig = Figure(figsize=(5.2, 3.2))
    ax = fig.add_subplot()
    for method in ("vanilla", "gsae"):
        rows = [r for r in sweep["rows"] if r["method"] == method and r["ppl_ratio"] is not None
                and r["success_rate"] is not None]
        ax.plot([r["ppl_ratio"] for r in rows], [r["success_rate"] for r in rows], marker="o",
                label=METHOD_NAMES[method])
        for r in rows:
            ax.annotate(f"{r['alpha']:g}", (r["ppl_ratio"], r["success_rate"]), fontsize=6, alpha=0.7)
    ax.axvline(sweep["max_ppl_ratio"], color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("median perplexity / unsteered median (log scale)")
    ax.set_ylabel("success rate")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return (f"{track['task']}: success against perplexity",
            f"each point one α (labelled); the dashed line is the {sweep['max_ppl_ratio']:g}× perplexity bound.",
            to_png_data_uri(fig))


def _examples(track: JSONDict) -> dict[str, Any]:
    """The unsteered continuation of each prompt beside each method's at its headline α."""
    sweep = track["sweep"]
    head = sweep["headline"]
    cols = [("baseline (α = 0)", sweep["baseline"]["examples"])]
    for method in ("vanilla", "gsae"):
        if method not in head:
            continue
        alpha = head[method]["alpha"]
        row = next(r for r in sweep["rows"] if r["method"] == method and r["alpha"] == alpha)
        cols.append((f"{method} (α = {alpha:g})", row["examples"]))
    return {"headers": [c for c, _ in cols],
            "rows": [(prompt, [ex[i] if i < len(ex) else "" for _, ex in cols])
                     for i, prompt in enumerate(sweep["prompts"])]}


def oriented_auroc(entry: JSONDict) -> float | None:
    """Mean detection AUROC over concepts, each taken in the direction the latent steers (a root latent that fires
    for the concept's absence is steered with −α, so its AUROC counts as 1 − AUROC)."""
    vals = [a if s > 0 else 1.0 - a for a, s in zip(entry["auroc"], entry.get("signs") or [1.0] * len(entry["auroc"]),
                                                    strict=True) if a is not None]
    return sum(vals) / len(vals) if vals else None


def _track(track: JSONDict) -> dict[str, Any]:
    sae, sweep = track["sae"], track["sweep"]
    quality = [{"method": METHOD_NAMES[m], "fms1": sae[m]["fms@1"], "fms5": sae[m]["fms@5"],
                "auroc": oriented_auroc(sae[m]), "latents": ", ".join(str(j) for j in sae[m]["latents"]),
                "fvu": sae[m].get("fvu"), "l0": sae[m].get("l0")} for m in ("vanilla", "gsae")]
    head = sweep["headline"]
    base = sweep["baseline"]
    fluent = sweep["headline_fluent"]  # the best α with repetition bounded too, as the experiment chose it
    heads = [{"method": "unsteered", "alpha": 0.0, "success_rate": base["success_rate"],
              "ppl_median": base["ppl_median"], "ppl_ratio": 1.0, "repetition": base["repetition"]}]
    heads += [{"method": METHOD_NAMES[m], **head[m]} for m in ("vanilla", "gsae") if m in head]
    heads += [{"method": f"{METHOD_NAMES[m]}, repetition bounded", **fluent[m]} for m in ("vanilla", "gsae")
              if m in fluent]
    accuracy = track.get("style_classifier_heldout_accuracy")
    return {
        "t": track, "sweep": sweep, "repetition": f"{base['repetition']:.2f}", "margin": f"{REPETITION_MARGIN:g}",
        "title": track["track"] if track["track"] == track["task"] else track["track"] + ": " + track["task"],
        "accuracy": None if accuracy is None else f"{accuracy:.3f}",
        "quality": value_table(quality, (("method", "SAE", None), ("fms1", "FMS@1", 3), ("fms5", "FMS@5", 3),
                                         ("auroc", "AUROC", 3), ("latents", "concept latent(s)", None),
                                         ("fvu", "FVU", 3), ("l0", "L0", 1))),
        "heads": value_table(heads, _SWEEP_COLUMNS), "rows": value_table(sweep["rows"], _SWEEP_COLUMNS),
        "figures": [_curve(track)], "examples": _examples(track),
    }


def context(result: JSONDict) -> dict[str, Any]:
    return {"tracks": [_track(t) for t in result.get("tracks") or []]}

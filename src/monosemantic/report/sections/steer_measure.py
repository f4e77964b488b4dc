"""The report section of steering through a vision encoder (Pach et al., arXiv 2504.02821, §5): the success rates
of clamped latents against random ones, and per latent its top images, its class and the predictions on the
neutral photos before and after the clamp.

Shown in the main report when the run folder holds ``steer_measure.json`` (written by ``monosemantic
steer-measure``), and on a page of its own.
"""

from __future__ import annotations

from typing import Any

from monosemantic.report.tables import value_table
from monosemantic.results import JSONDict, ResultKind

KIND = ResultKind(name="steer_measure", file="steer_measure.json", format="monosemantic-steer-measure",
                  title="Steering through a vision encoder", page="steer_measure.html")
ORDER = 6
ANCHOR = "vision-steer"

_COLUMNS = (("group", "latents", None), ("alpha_multiple", "α (× peak)", 1), ("latents", "n", None),
            ("hits", "top-1 → class", None), ("rate", "rate", 3),
            ("moved", "among photos not already that class", None), ("changed", "top-1 changed", None),
            ("top5", "class in top-5 (before → after)", None),
            ("mean_logp_delta", "mean Δ log p(class)", 2))


def _latent(result: JSONDict, lat: JSONDict) -> dict[str, Any]:
    """A latent's top images and the neutral photos' top-1 class before and after each α."""
    rows = [r for r in result["rows"] if r["latent"] == lat["latent"]]
    return {
        "lat": lat, "purity": f"{lat['purity']:.0%}", "hits": sum(sum(r["success"]) for r in rows),
        "pairs": sum(len(r["success"]) for r in rows),
        "thumbs": list(zip(lat["top_images"], lat["top_classes"], strict=True)),
        "after": [{"alpha": f"{r['alpha_multiple']:g} × peak ({r['alpha']:.2f})",
                   "cells": list(zip(r["after"], r["success"], strict=True))} for r in rows],
    }


def context(result: JSONDict) -> dict[str, Any]:
    summary = [{**s, "group": "most class-pure latents" if s["group"] == "chosen" else "random latents (control)",
                "hits": f"{s['successes']}/{s['pairs']}", "moved": f"{s['moved_successes']}/{s['moved_pairs']}",
                "changed": f"{s['top1_changed']}/{s['pairs']}",
                "top5": f"{s.get('top5_before', '–')} → {s.get('top5_after', '–')}"} for s in result["summary"]]
    return {"result": result, "cfg": result.get("config") or {}, "table": value_table(summary, _COLUMNS),
            "latents": [_latent(result, lat) for lat in result["latents"]]}

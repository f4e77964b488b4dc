"""The report section of a `monosemantic compare` result: layer-pair heatmaps, kept pairs, correlation histograms,
the semantic-subspace table and example pairs side by side (Lan et al., arXiv 2410.06981).

Shown in the main report when the run folder holds a compare result, and on a page of its own, ``compare.html``.
"""

from __future__ import annotations

from typing import Any

from monosemantic.results import JSONDict, ResultKind

KIND = ResultKind(name="compare", file="compare.json", format="monosemantic-compare",
                  title="Comparing feature spaces", page="compare.html")
ORDER = 1

SCORES = (("svcca:variance_99", "SVCCA"), ("svcca:reference_k1", "SVCCA k=1 (reference)"), ("rsa", "RSA"))


def _num(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _p(v: Any) -> str:
    return "–" if v is None else (f"{v:.3f}" if v >= 0.001 else f"{v:.1e}")


def _colour(v: Any) -> str:
    if v is None:
        return "#eee"
    t = max(0.0, min(1.0, float(v)))
    return f"hsl(210, 70%, {int(96 - 50 * t)}%)"


def _histogram(cell: JSONDict) -> list[dict[str, str]]:
    """The bars of the inline SVG chart of the paired correlations (all pairs light, kept pairs dark) in the
    template's 240 x 60 pixels."""
    allc, kept = cell["corr_hist"]["counts"], cell["corr_hist_kept"]["counts"]
    top = max(max(allc, default=0), 1)
    w, h, n = 240, 60, len(allc)
    return [{"x": f"{i * w / n:.1f}", "width": f"{w / n - 1:.1f}",
             "all_y": f"{h - h * a / top:.1f}", "all_h": f"{h * a / top:.1f}",
             "kept_y": f"{h - h * k / top:.1f}", "kept_h": f"{h * k / top:.1f}"}
            for i, (a, k) in enumerate(zip(allc, kept, strict=True))]


def context(result: JSONDict) -> dict[str, Any]:
    cells = result["cells"]
    sae_cells = [c for c in cells if c["kind"] == "sae"]
    return {
        "result": result, "cells": cells, "sae_cells": sae_cells, "scores": SCORES,
        "rows": list(dict.fromkeys(c["a"] for c in sae_cells)), "cols": list(dict.fromkeys(c["b"] for c in sae_cells)),
        "at": {(c["a"], c["b"]): c for c in sae_cells}, "histograms": [_histogram(c) for c in cells],
        "subspaces": [(c, s) for c in sae_cells for s in c.get("subspaces") or []],
        "decoders": [c for c in sae_cells if c.get("decoder_match")],
        "examples": [c for c in sae_cells if c.get("examples")],
        "num": _num, "p": _p, "colour": _colour,
    }

"""The report section of a ``monosemantic atoms`` result (Hu et al., arXiv 2509.20784): R², unique fraction and q*
of neurons, SAE features and threshold-SAE atoms side by side, the capacity sweep, and the angle histograms of the
activations and of the atoms, Euclidean against the atomic inner product.

Shown in the main report when the run folder holds ``atoms.json``, and on a page of its own, ``atoms.html``.
"""

from __future__ import annotations

import itertools
from typing import Any

from matplotlib.figure import Figure

from monosemantic.report.plots import to_png_data_uri
from monosemantic.report.tables import value_table
from monosemantic.results import JSONDict, ResultKind

KIND = ResultKind(name="atoms", file="atoms.json", format="monosemantic-atoms", title="Neurons, features and atoms",
                  page="atoms.html")
ORDER = 3

_COLUMNS = (("kind", "units", None), ("id", "set", None), ("n_units", "N", None), ("mean_k", "mean K", 1),
            ("r2", "R²", 4), ("r2_whitened", "R² (AIP)", 4), ("unique_aip", "unique (AIP)", 3),
            ("q_star_aip", "q* (AIP)", 3), ("unique_euclidean", "unique (Eucl.)", 3),
            ("q_star_euclidean", "q* (Eucl.)", 3), ("coherence_aip", "μ (AIP)", 3),
            ("coherence_euclidean", "μ (Eucl.)", 3))


def _figures(result: JSONDict) -> list[tuple[str, str, str]]:
    out = []
    for what, hist in (result.get("angles") or {}).items():
        if not hist:
            continue
        fig = Figure(figsize=(5.2, 3.0))
        ax = fig.add_subplot()
        edges = hist["edges"]
        centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        width = edges[1] - edges[0]
        for key, label in (("euclidean", "Euclidean"), ("aip", "AIP")):
            total = max(1, sum(hist[key]))
            ax.bar(centres, [c / total for c in hist[key]], width=width, alpha=0.55,
                   label=f"{label} (mean {hist[f'{key}_mean']:.1f}°)")
        ax.axvline(90, color="black", lw=0.8)
        ax.set_xlabel("pairwise angle (degrees)")
        ax.set_ylabel("share of pairs")
        ax.legend(fontsize=7)
        fig.tight_layout()
        out.append((f"Angles between {what}", f"{hist['n_pairs']:,} pairs; under the AIP the angles should centre at "
                    "90° (the representation-shift check).", to_png_data_uri(fig)))
    atoms = [u for u in result.get("units", []) if u["kind"] == "atoms"]
    if len(atoms) > 1:
        fig = Figure(figsize=(5.2, 3.0))
        ax = fig.add_subplot()
        xs = [u["n_units"] / result["width"] for u in atoms]
        ax.plot(xs, [u["r2"] for u in atoms], marker="o", label="R²")
        ax.plot(xs, [u["q_star_aip"] for u in atoms], marker="s", label="q* (AIP)")
        ax.plot(xs, [u["unique_aip"] for u in atoms], marker="^", label="unique fraction (AIP)")
        ax.set_xlabel("threshold-SAE capacity (latents / H)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
        fig.tight_layout()
        out.append(("Capacity sweep", "faithfulness and stability of the threshold SAE as it widens.",
                    to_png_data_uri(fig)))
    return out


def context(result: JSONDict) -> dict[str, Any]:
    return {"result": result, "figures": _figures(result),
            "table": value_table(result.get("units") or [], _COLUMNS)}

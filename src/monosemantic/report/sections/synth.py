"""The report section of a ``monosemantic synth`` sweep (Cui et al., arXiv 2506.15963): recovery and GT features per
latent against sparsity, L_GT of the plain SAE against WSAE, the sparsity-reconstruction Pareto front, and the
table of every SAE.

Shown in the main report when the run folder holds ``synth.json``, and on a page of its own, ``synth.html``.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from monosemantic.report.plots import to_png_data_uri
from monosemantic.report.tables import value_table
from monosemantic.results import JSONDict, ResultKind

KIND = ResultKind(name="synth", file="synth.json", format="monosemantic-synth", title="Synthetic superposition",
                  page="synth.html")
ORDER = 2

_COLUMNS = (("sparsity", "S", 3), ("arch", "arch", None), ("width", "width", None), ("alpha", "α", 1),
            ("k", "k", None), ("mmcs_gt", "MMCS_gt", 3), ("mmcs_sae", "MMCS_sae", 3),
            ("frac_recovered@0.9", "rec@0.9", 2), ("frac_recovered@0.99", "rec@0.99", 2), ("mcc", "MCC", 3),
            ("uniqueness", "unique", 2), ("l_gt", "L_GT", 4), ("gt_per_latent", "GT/latent", 2), ("fve", "FVE", 3),
            ("l0", "L0", 1), ("dead_fraction", "dead", 2))


def _series(rows: list[JSONDict], key: str, **fixed: Any) -> dict[str, tuple[list[float], list[float]]]:
    """arch -> (sparsities, values) for the rows matching ``fixed``, in sparsity order (None values dropped)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for r in sorted(rows, key=lambda r: r["sparsity"]):
        if any(r.get(k) != v for k, v in fixed.items()) or r.get(key) is None:
            continue
        xs, ys = out.setdefault(r["arch"], ([], []))
        xs.append(r["sparsity"])
        ys.append(r[key])
    return out


def _sparsity_axis(ax: Axes, values: list[float]) -> None:
    # S piles up near 1: plot -log10(1 - S) so 0.9, 0.99 and 0.999 are evenly spaced, labelled with S itself
    ticks = sorted(set(values))
    ax.set_xticks([-math.log10(1 - s) for s in ticks], [f"{s:g}" for s in ticks], fontsize=7)
    ax.set_xlabel("sparsity S (feature off with probability S)")


def _figures(result: JSONDict) -> list[tuple[str, str, str]]:
    """(title, caption, PNG data URI) of each plot."""
    rows = result["rows"]
    width = min(r["width"] for r in rows)
    alphas = sorted({r["alpha"] for r in rows})
    s_all = [r["sparsity"] for r in rows]
    out = []

    def line_plot(key: str, ylabel: str, title: str, caption: str) -> None:
        fig = Figure(figsize=(5.2, 3.4))
        ax = fig.add_subplot()
        for arch, (xs, ys) in _series(rows, key, width=width, alpha=alphas[0]).items():
            ax.plot([-math.log10(1 - s) for s in xs], ys, marker="o", label=f"{arch} (α={alphas[0]:g})")
        if len(alphas) > 1:
            for arch, (xs, ys) in _series(rows, key, width=width, alpha=alphas[-1]).items():
                ax.plot([-math.log10(1 - s) for s in xs], ys, ls="--", marker="x", label=f"{arch} (α={alphas[-1]:g})")
        _sparsity_axis(ax, s_all)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        out.append((title, caption, to_png_data_uri(fig)))

    line_plot("mmcs_gt", "MMCS_gt", "Recovery against sparsity",
              f"mean over ground-truth features of the best |cos| with a decoder row; width {width}.")
    line_plot("gt_per_latent", "GT features per latent", "GT features per latent against sparsity",
              "features whose lone activation drives a latent above 10% of its peak, mean over responsive latents.")
    line_plot("l_gt", "L_GT", "L_GT: plain SAE (solid) against WSAE (dashed)",
              "squared error between the true codes and the matched latents (Hungarian matching); lower is better.")
    fig = Figure(figsize=(5.2, 3.4))
    ax = fig.add_subplot()
    pts = [(r["l0"], r["fve"], r) for r in rows if r.get("l0") is not None and r.get("fve") is not None]
    for arch in dict.fromkeys(r["arch"] for r in rows):
        mine = [(x, y) for x, y, r in pts if r["arch"] == arch]
        ax.scatter([p[0] for p in mine], [p[1] for p in mine], s=12, label=arch)
    front = pareto_front([(x, y) for x, y, _ in pts])
    ax.plot([p[0] for p in front], [p[1] for p in front], color="black", lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # the minor labels of a short log axis overlap
    ax.set_xlabel("L0 (active latents per sample)")
    ax.set_ylabel("FVE of x_p")
    ax.legend(fontsize=6)
    fig.tight_layout()
    out.append(("Sparsity–reconstruction Pareto front", "every SAE of the sweep; the line joins those no other SAE "
                "beats on both L0 and FVE.", to_png_data_uri(fig)))
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points (L0, FVE) that no other point beats with a lower-or-equal L0 and a higher FVE, by L0."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def context(result: JSONDict) -> dict[str, Any]:
    rows = result.get("rows") or []
    return {"result": result, "cfg": result.get("config", {}), "n_rows": len(rows),
            "figures": _figures(result) if rows else [], "table": value_table(rows, _COLUMNS)}

"""matplotlib drawings of the figure specs of ``monosemantic.report.figures``, one function per spec kind (see
``DRAWINGS``), and the PNG data URIs every plot of the report is embedded as.

Drawing uses matplotlib's object API (no pyplot, no global backend).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, NullLocator
from PIL import Image

from monosemantic.report.figures import FigureSpec
from monosemantic.report.style import NEURON_COLOR, TEXT_COLOR
from monosemantic.results import JSONDict

_TEXT = TEXT_COLOR
_MARKERS = ("o", "s", "D", "^", "v", "P")


def new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure of ``ncols`` axes side by side in the report's style (no top and right spines, a light grid)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes: list[Axes] = fig.subplots(1, ncols, squeeze=False)[0].tolist()
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(True, color="#e6e8eb", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.tick_params(colors="#3c4043", labelsize=9)
    return fig, axes


def plain(text: Any, limit: int = 28) -> str:
    """Text from the data as matplotlib should show it: ``$`` is a dollar sign, not mathtext; long names cut short."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _legend(ax: Axes, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=8.5, **kwargs)


def draw_ms_distribution(data: JSONDict) -> Figure:
    sets = [s for s in data["sets"] if s["values"]]
    neurons = next((s for s in sets if s["kind"] == "neurons"), None)
    best = next((s for s in sets if s["id"] == data.get("best_sae")), None)
    paired = neurons is not None and best is not None
    height = max(3.4, 0.42 * len(sets) + 1.3)
    fig, axes = new_figure(11.0, height, 2 if paired else 1)
    if neurons is not None and best is not None:
        ax = axes[0]
        lo = min(min(neurons["values"]), min(best["values"]))
        hi = max(max(neurons["values"]), max(best["values"]))
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-3, 36)
        neuron_label = "raw neurons" if neurons["id"] == "neurons" else f"raw neurons ({plain(neurons['id'])})"
        for s, label in ((neurons, neuron_label), (best, f"best SAE: {plain(best['id'])}")):
            ax.hist(s["values"], bins=bins, density=True, color=s["color"], alpha=0.45, label=label)
            ax.hist(s["values"], bins=bins, density=True, color=s["color"], histtype="step", linewidth=1.4)
            mean = float(np.mean(s["values"]))
            ax.axvline(mean, color=s["color"], linestyle="--", linewidth=1.3)
            ax.annotate(f"mean {mean:.2f}", (mean, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10),
                        textcoords="offset points", color=s["color"], fontsize=8.5, fontweight="bold")
        ax.set_xlabel("MS", color=_TEXT)
        ax.set_ylabel("density", color=_TEXT)
        _legend(ax, loc="upper right", bbox_to_anchor=(1.0, 0.9))
    ax = axes[-1]
    values = [s["values"] if len(s["values"]) > 1 else s["values"] * 2 for s in sets]
    positions = np.arange(len(sets))[::-1]
    parts = ax.violinplot(values, positions=positions, orientation="horizontal", showextrema=False, widths=0.8)
    bodies = cast("list[Collection]", parts["bodies"])  # one per set (the stubs say a single Collection)
    for body, s in zip(bodies, sets, strict=True):
        body.set_facecolor(s["color"])
        body.set_edgecolor(s["color"])
        body.set_alpha(0.55)
    for pos, s in zip(positions, sets, strict=True):
        q1, med, q3 = np.percentile(s["values"], [25, 50, 75])
        ax.hlines(pos, q1, q3, color="#202124", linewidth=3)
        ax.plot([med], [pos], marker="o", markersize=4, color="white", markeredgecolor="#202124", zorder=3)
    ax.set_yticks(positions, [f"{plain(s['id'])}  (n={len(s['values'])})" for s in sets], fontsize=8.5)
    ax.set_xlabel("MS (box: quartiles, dot: median)", color=_TEXT)
    ax.grid(False, axis="y")
    return fig


def _group_order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Architecture names alphabetically, then numbers numerically (k=8 before k=16), missing last."""
    return tuple((v is None, "" if v is None else str(v)) if isinstance(v, str | None) else (False, float(v))
                 for v in key)


def _group_lines(ax: Axes, saes: list[JSONDict], x_key: str, group_keys: tuple[str, ...],
                 fmt: Callable[[tuple[Any, ...]], str]) -> None:
    groups: dict[tuple[Any, ...], list[JSONDict]] = {}
    for s in saes:
        if s.get(x_key) is not None:
            groups.setdefault(tuple(s.get(k) for k in group_keys), []).append(s)
    # Groups are ordered (k=8, 16, 32...), so a sequential colour map, distinct from the per-set palette.
    cmap = colormaps["viridis"]
    ordered = sorted(groups.items(), key=lambda kv: _group_order(kv[0]))
    for g, (key, members) in enumerate(ordered):
        members.sort(key=lambda s: s[x_key])
        # Groups often share an x (three SAEs at width 768): a small multiplicative dodge keeps each visible.
        dodge = 2 ** ((g - (len(ordered) - 1) / 2) * 0.05)
        xs = [s[x_key] * dodge for s in members]
        ys = [s["ms_mean"] for s in members]
        err = [s["ms_std"] or 0.0 for s in members]
        color = cmap(0.1 + 0.7 * g / max(1, len(ordered) - 1))
        ax.errorbar(xs, ys, yerr=err, color=color, marker=_MARKERS[g % len(_MARKERS)], markersize=5.5, capsize=3,
                    linewidth=1.6, elinewidth=0.9, alpha=0.95, label=plain(fmt(key)))
    if not groups:
        ax.text(0.5, 0.5, f"no SAE with a {x_key}", transform=ax.transAxes, ha="center", color=_TEXT)


def draw_ms_vs_size(data: JSONDict) -> Figure:
    saes = data["saes"]
    # a sweep (the MS paper's width x k grid) has a dozen lines per panel: their legends need rows of their own
    lines = 1 + max(len({(s.get("arch"), s.get("k")) for s in saes}),
                    len({(s.get("arch"), s.get("expansion")) for s in saes}))
    ncol = 4 if lines <= 8 else 2
    fig, axes = new_figure(11.0, 3.4 + 0.26 * math.ceil(lines / ncol), 2)
    _group_lines(axes[0], saes, "width", ("arch", "k"),
                 lambda key: f"{key[0]}" + ("" if key[1] is None else f", k={key[1]:g}"))
    _group_lines(axes[1], saes, "k", ("arch", "expansion"),
                 lambda key: f"{key[0]}" + ("" if key[1] is None else f", x{key[1]:g}"))
    for ax, key, xlabel in zip(axes, ("width", "k"), ("dictionary width (latents)", "k (active latents)"),
                               strict=True):
        xs = sorted({s[key] for s in saes if s.get(key)})
        if xs and min(xs) > 0 and max(xs) / min(xs) >= 4:
            ax.set_xscale("log", base=2)
        if xs:
            # Ticks at the sizes that were trained, nothing in between: the sweep is a handful of points.
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.xaxis.set_minor_locator(NullLocator())
            if len(xs) == 1:
                ax.set_xlim(xs[0] / 1.5, xs[0] * 1.5)
        if data.get("neurons_mean") is not None:
            ax.axhline(data["neurons_mean"], color=NEURON_COLOR, linestyle="--", linewidth=1.5,
                       label=f"raw neurons ({data['neurons_mean']:.2f})")
        ax.set_xlabel(xlabel, color=_TEXT)
        ax.set_ylabel("mean MS", color=_TEXT)
        # Below the axes: inside, a legend hides the points it describes.
        _legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol)
    return fig


def draw_training(data: JSONDict) -> Figure:
    fig, axes = new_figure(11.0, 3.2, 3)
    for ax, key, label in zip(axes, ("fvu", "l0", "dead_fraction"), ("FVU", "L0", "dead fraction"), strict=True):
        positive = True
        for c in data["curves"]:
            pts = [(t, v) for t, v in zip(c["tokens"], c[key], strict=False) if t is not None and v is not None]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            positive = positive and min(ys) > 0
            ax.plot(xs, ys, color=c["color"], linewidth=1.6, label=plain(c["id"]))
        if key == "fvu" and positive and ax.lines:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter("{x:g}")
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training tokens", color=_TEXT)
        ax.set_title(label, fontsize=10, color=_TEXT, loc="left")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    _legend(axes[0], loc="upper right")
    return fig


def draw_fms_per_concept(data: JSONDict) -> Figure:
    concepts, sets = data["concepts"], data["sets"]
    width = min(11.0, max(6.0, 0.28 * len(concepts) * len(sets) + 2.5))
    fig, axes = new_figure(width, 3.4)
    ax = axes[0]
    x = np.arange(len(concepts))
    bar = 0.8 / max(1, len(sets))
    for i, s in enumerate(sets):
        ys = [np.nan if v is None else v for v in s["fms@1"]]
        ax.bar(x - 0.4 + bar * (i + 0.5), ys, width=bar, color=s["color"], label=plain(s["id"]),
               edgecolor="white", linewidth=0.5)
    names = [plain(c, 16) for c in concepts]
    slanted = max(map(len, names), default=0) > 6
    ax.set_xticks(x, names, fontsize=8.5, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    ax.set_ylabel(plain(data.get("ylabel") or "FMS@1"), color=_TEXT)  # names the variant, e.g. FMS@1 (balanced)
    ax.set_xlabel("concept", color=_TEXT)
    ax.grid(False, axis="x")
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def draw_ms_vs_firing(data: JSONDict) -> Figure:
    fig, axes = new_figure(11.0, 3.4)
    ax = axes[0]
    # Neurons last so the baseline is not buried under thousands of latents.
    for s in sorted(data["sets"], key=lambda s: s["color"] == NEURON_COLOR):
        ax.scatter(s["firing_rate"], s["ms"], s=7, color=s["color"], alpha=0.55, linewidths=0, label=plain(s["id"]),
                   rasterized=True)
    ax.set_xscale("log")
    ax.set_xlabel("firing rate (fraction of inputs where the unit is active)", color=_TEXT)
    ax.set_ylabel("MS", color=_TEXT)
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=2.5)
    return fig


DRAWINGS: dict[str, Callable[[JSONDict], Figure]] = {
    "ms_distribution": draw_ms_distribution,
    "ms_vs_size": draw_ms_vs_size,
    "training": draw_training,
    "fms_per_concept": draw_fms_per_concept,
    "ms_vs_firing": draw_ms_vs_firing,
}
"""The drawing of each figure kind of ``monosemantic.report.figures``."""


def draw(spec: FigureSpec) -> Figure:
    """A matplotlib Figure of ``spec`` (Agg-compatible; nothing is shown)."""
    return DRAWINGS[spec.kind](spec.data)


def to_png_data_uri(fig: Figure, dpi: int = 144) -> str:
    """Render ``fig`` to a base64 PNG data URI (dpi 144 keeps the plots sharp on high-density screens)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    # A 256-colour palette is visually lossless for flat-coloured plots and about a third of the bytes.
    buf.seek(0)
    img = Image.open(buf).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def png(spec: FigureSpec) -> tuple[str, int]:
    """The figure as a PNG data URI and its width in CSS pixels (96 per inch, so every plot's text is one size)."""
    fig = draw(spec)
    try:
        return to_png_data_uri(fig), round(fig.get_size_inches()[0] * 96)
    finally:
        fig.clear()

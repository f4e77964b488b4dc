"""The report's colours: one per unit set of a track (neurons grey, SAEs from a qualitative palette), shared by the
plots, the summary table and the feature cards so a set has the same colour everywhere."""

from __future__ import annotations

from monosemantic.results import JSONDict

NEURON_COLOR = "#8d949e"
SAE_COLORS = ("#3b6fb6", "#e07b39", "#3f9b5a", "#c8434b", "#7a5cb8", "#8c6b4f", "#d16ba5", "#b59b2d", "#3fa7c4")
TEXT_COLOR = "#3c4043"
"""Axis labels and ticks of the plots."""


def set_colors(track: JSONDict) -> dict[str, str]:
    """One colour per unit set of a track: neurons grey, SAEs from a qualitative palette in track order."""
    colors: dict[str, str] = {}
    n_sae = 0
    for unit_set in track["unit_sets"]:
        if unit_set["kind"] == "neurons":
            colors[str(unit_set["id"])] = NEURON_COLOR
        else:
            colors[str(unit_set["id"])] = SAE_COLORS[n_sae % len(SAE_COLORS)]
            n_sae += 1
    return colors

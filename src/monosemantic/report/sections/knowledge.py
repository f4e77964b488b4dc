"""The report section of a ``monosemantic knowledge`` result (Chen et al., "The Knowledge Microscope", arXiv
2502.12483): ΔProb against the number of ablated units for SAE features and MLP neurons with their random controls,
the related-vs-unrelated test (pass fractions, activation distributions, controlled related shares), FeatureEdit
against neuron editing, and per-fact cards.

Shown in the main report when the run folder holds ``knowledge.json``, and on a page of its own,
``knowledge.html``.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from monosemantic.report.plots import to_png_data_uri
from monosemantic.report.tables import value_table
from monosemantic.results import JSONDict, ResultKind

KIND = ResultKind(name="knowledge", file="knowledge.json", format="monosemantic-knowledge",
                  title="Knowledge: features vs neurons", page="knowledge.html")
ORDER = 5

_ABLATION_COLUMNS = (("units", "units", None), ("control", "control", None), ("n", "n", None),
                     ("delta_prob", "ΔProb (mean)", 3), ("se", "± s.e.", 3), ("median", "median", 3),
                     ("n_prompts", "prompts", None))
_TEST_COLUMNS = (("units", "units", None), ("n_units", "units tested", None), ("pass_fraction", "pass both", 3),
                 ("median_d", "median d", 2))
_EDIT_COLUMNS = (("method", "method", None), ("target", "erased", None), ("n_facts", "edits", None),
                 ("reliability", "reliability", 3),
                 ("generalisation", "generalisation", 3), ("locality", "locality", 3),
                 ("delta_ppl", "ΔPPL (rel.)", 4), ("n_columns", "columns touched", 1),
                 ("n_entries", "entries zeroed", 0))


def _label(units: str, short: bool = False) -> str:
    if units == "neurons":
        return "MLP neurons"
    kind, _, hook = units.partition(":")
    return f"{kind} features" if short else f"{kind} features ({hook})"


def _figures(result: JSONDict) -> list[tuple[str, str, str]]:
    out = []
    rows = result.get("ablation") or []
    if rows:
        fig = Figure(figsize=(5.6, 3.4))
        ax = fig.add_subplot()
        names = list(dict.fromkeys(r["units"] for r in rows))
        for c, name in enumerate(names):
            for control in (False, True):
                pts = sorted((r["n"], r["delta_prob"]) for r in rows if r["units"] == name and r["control"] == control)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=f"C{c}",
                            ls="--" if control else "-", alpha=0.6 if control else 1.0,
                            label=_label(name) + (" random" if control else ""))
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlabel("units ablated (n)")
        ax.set_ylabel("ΔProb")
        ax.legend(fontsize=6)
        fig.tight_layout()
        out.append(("ΔProb vs n", "mean (P − P_ablated) / P of the answer over the known facts' prompts; dashed: "
                    "the same number of random units.", to_png_data_uri(fig)))
    summary = (result.get("related_test") or {}).get("summary") or []
    if summary:
        fig = Figure(figsize=(2.4 * len(summary), 2.6))
        for c, s in enumerate(summary):
            ax = fig.add_subplot(1, len(summary), c + 1)
            h = s["histogram"]
            centres = [(a + b) / 2 for a, b in zip(h["edges"][:-1], h["edges"][1:], strict=True)]
            width = h["edges"][1] - h["edges"][0]
            ax.bar(centres, h["related"], width=width, alpha=0.55, label="related")
            ax.bar(centres, h["unrelated"], width=width, alpha=0.55, label="unrelated")
            ax.set_title(_label(s["units"], short=True), fontsize=7)
            ax.set_xlabel("activation / own fact's", fontsize=7)
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.legend(fontsize=6)
        fig.tight_layout()
        out.append(("Related vs unrelated activations", "each localised unit's activation on related and unrelated "
                    "prompts, relative to its activation on its own fact (pooled over units).", to_png_data_uri(fig)))
        fig = Figure(figsize=(5.6, 3.0))
        ax = fig.add_subplot()
        for c, s in enumerate(summary):
            xs = [p["share"] for p in s["shares"]]
            ax.plot(xs, [p["mean_rel_activation"] for p in s["shares"]], marker="o", color=f"C{c}",
                    label=_label(s["units"]))
            ax.plot(xs, [p["fire_rate"] for p in s["shares"]], marker="s", ls=":", color=f"C{c}", alpha=0.6)
        ax.set_xlabel("share of related prompts in the set")
        ax.set_ylabel("mean activation / own fact's")
        ax.legend(fontsize=6)
        fig.tight_layout()
        out.append(("Controlled related shares", "solid: the units' mean activation over sets of 20 prompts "
                    "(relative to their own fact); dotted: the share of the set's prompts they fire on.",
                    to_png_data_uri(fig)))
    return out


def _cards(cards: list[JSONDict]) -> list[dict[str, Any]]:
    out = []
    for c in cards:
        feats = [{"label": _label(sid),
                  "spans": [{"title": " | ".join(f["snippets"]), "text": f"#{f['id']} ({f['activation']:.2f})"}
                            for f in fs],
                  "notes": [f"#{f['id']}: {s}" for f in fs[:2] for s in f["snippets"][:2]]}
                 for sid, fs in (c.get("features") or {}).items()]
        out.append({
            "subject": c["subject"], "answer": c["answer"], "relation": c["relation"], "p": f"{c['p']:.2f}",
            "prompt": c["prompt"], "last": c["prompt"].splitlines()[-1] if c["prompt"] else "", "features": feats,
            "neurons": ", ".join(f"#{n['id']} ({n['attribution']:.3f})" for n in c.get("neurons") or []),
            "delta_prob": ", ".join(f"{_label(u)} {v:.2f}" for u, v in (c.get("delta_prob") or {}).items()
                                    if v is not None),
        })
    return out


def context(result: JSONDict) -> dict[str, Any]:
    edit = result.get("edit") or {}
    test = result.get("related_test") or {}
    return {
        "result": result, "edit": edit, "test": test, "figures": _figures(result),
        "cards": _cards(result.get("cards") or []),
        "sites": ", ".join(f"{_label(s['id'])} ({s['d_sae']:,} latents)" for s in result.get("sites") or []),
        "edit_site": _label(edit.get("site", "")), "ppl_before": f"{edit.get('ppl_before', float('nan')):.2f}",
        "edit_table": value_table(edit.get("summary") or [], _EDIT_COLUMNS),
        "ablation": value_table(result.get("ablation") or [], _ABLATION_COLUMNS),
        "test_table": value_table(test.get("summary") or [], _TEST_COLUMNS),
    }

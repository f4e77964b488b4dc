"""The report section of a ``monosemantic knowledge`` result (Chen et al., "The Knowledge Microscope", arXiv
2502.12483): ΔProb against the number of ablated units for SAE features and MLP neurons with their random controls,
the related-vs-unrelated test (pass fractions, activation distributions, controlled related shares), FeatureEdit
against neuron editing, and per-fact cards.

``knowledge_section(result)`` is HTML for the main report (shown when the run folder holds ``knowledge.json``);
``write_knowledge_page(folder, result)`` writes it as ``knowledge.html`` beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monosemantic.report.blocks import esc
from monosemantic.report.result_pages import figure_blocks, value_table, write_page
from monosemantic.results import JSONDict, ResultKind

KIND = ResultKind(name="knowledge", file="knowledge.json", format="monosemantic-knowledge",
                  title="Knowledge: features vs neurons", page="knowledge.html")

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


def find_knowledge(run_dir: Path) -> JSONDict | None:
    """A knowledge result inside a run folder (``knowledge.json`` or ``knowledge/knowledge.json``), if any."""
    return KIND.find(run_dir)


def _label(units: str, short: bool = False) -> str:
    if units == "neurons":
        return "MLP neurons"
    kind, _, hook = units.partition(":")
    return f"{kind} features" if short else f"{kind} features ({hook})"


def _figures(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from monosemantic.report.figures import to_png_data_uri

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


def _cards(cards: list[dict[str, Any]]) -> str:
    out = []
    for c in cards:
        feats = "".join(
            f"<li><b>{esc(_label(sid))}</b>: " + ", ".join(
                f"<span title='{esc(' | '.join(f['snippets']))}'>#{f['id']} ({f['activation']:.2f})</span>"
                for f in fs) + "".join(f"<div class=note>#{f['id']}: {esc(s)}</div>" for f in fs[:2]
                                       for s in f["snippets"][:2]) + "</li>"
            for sid, fs in (c.get("features") or {}).items())
        neurons = ", ".join(f"#{n['id']} ({n['attribution']:.3f})" for n in c.get("neurons") or [])
        dps = ", ".join(f"{esc(_label(u))} {v:.2f}" for u, v in (c.get("delta_prob") or {}).items() if v is not None)
        prompt = c["prompt"].splitlines()[-1] if c["prompt"] else ""
        out.append(
            f"<div class=card><h4>{esc(c['subject'])} → {esc(c['answer'])} <small>{esc(c['relation'])}, "
            f"P = {c['p']:.2f}</small></h4><p><code title='{esc(c['prompt'])}'>{esc(prompt)}</code></p>"
            f"<ul>{feats}<li><b>MLP neurons</b> (activation × gradient): {esc(neurons)}</li></ul>"
            f"<p class=note>ΔProb at the largest n: {dps}</p></div>")
    return "<div class=cards>" + "".join(out) + "</div>"


def knowledge_section(result: dict[str, Any]) -> str:
    sites = ", ".join(f"{esc(_label(s['id']))} ({s['d_sae']:,} latents)" for s in result.get("sites") or [])
    edit = result.get("edit") or {}
    if edit.get("skipped"):
        edit_html = f"<p class=note>FeatureEdit not run: {esc(edit['skipped'])}.</p>"
    else:
        edit_html = (
            "<p>Facts erased one at a time (and, where asked, whole groups at once) through the top "
            f"{edit.get('units_per_fact')} features per fact of {esc(_label(edit.get('site', '')))} "
            f"(τ₂ = {edit.get('tau2')}, τ₃ = {edit.get('tau3')}), or the top neurons by attribution: as many as "
            "features, and as many as FeatureEdit (columns) touches (same columns). Reliability: "
            "the edit prompt's greedy answer changes; generalisation: the same on its paraphrases; locality: other "
            "facts' answers unchanged; ΔPPL: relative perplexity change on held-out BBC News "
            f"(before: {edit.get('ppl_before', float('nan')):.2f}).</p>"
            + value_table(edit.get("summary") or [], _EDIT_COLUMNS))
    test = result.get("related_test") or {}
    return (
        "<section id=knowledge><h2>Knowledge: features vs neurons</h2>"
        f"<p>{esc(result.get('model'))} on {esc(result.get('facts'))} ({esc(result.get('prompt_format'))} prompts, "
        f"{result.get('templates')} templates): {result.get('n_facts')} of {result.get('n_candidates')} facts "
        f"answered correctly under greedy decoding, {result.get('n_prompts')} prompts. Sites: {sites}; neurons: "
        f"{esc(result.get('neuron_hook'))}, ranked by {esc(result.get('neuron_ranking'))}. ΔProb of the "
        f"{'whole answer' if result.get('full_answer') else 'first answer token'}. After Chen et al., arXiv "
        "2502.12483.</p>"
        f"{figure_blocks(_figures(result))}"
        "<h3>Ablation</h3>" + value_table(result.get("ablation") or [], _ABLATION_COLUMNS)
        + f"<h3>Related vs unrelated facts</h3><p>The top {test.get('units_per_fact')} units of every fact; a unit "
        f"passes when Welch's t-test gives p < {test.get('p_max')} and Cohen's d > {test.get('d_min')} "
        f"(related higher), against {test.get('n_unrelated_prompts')} unrelated prompts.</p>"
        + value_table(test.get("summary") or [], _TEST_COLUMNS)
        + "<h3>FeatureEdit vs neuron editing</h3>" + edit_html
        + "<h3>Facts</h3>" + _cards(result.get("cards") or []) + "</section>"
    )


def write_knowledge_page(folder: Path | str, result: JSONDict) -> Path:
    """``FOLDER/knowledge.html``: the section on a page of its own (CSS inline, works offline)."""
    return write_page(folder, str(KIND.page), "monosemantic knowledge", knowledge_section(result))

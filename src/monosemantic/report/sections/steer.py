"""The report section of steering tracks (Härle et al., arXiv 2506.19382): per task, how monosemantic the vanilla
SAE's and the G-SAE's concept latents are (balanced FMS@1 / FMS@5, detection AUROC), the α sweep (success rate,
perplexity, repetition), success-vs-perplexity curves, and example generations baseline | vanilla | G-SAE.

Shown when the run folder holds ``steer/steer.json`` (written by the ``[[steer]]`` tables of a run config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monosemantic.report.blocks import esc
from monosemantic.report.result_pages import figure_blocks, find_result, value_table
from monosemantic.results import ResultKind
from monosemantic.steer.evaluate import REPETITION_MARGIN

KIND = ResultKind(name="steer", file="steer.json", format="monosemantic-steer", title="Steering: vanilla SAE vs G-SAE")

METHOD_NAMES = {"vanilla": "vanilla TopK SAE (root latent of its FMS tree)", "gsae": "G-SAE (reserved latent)"}


def find_steer(run_dir: Path) -> dict[str, Any] | None:
    """The steering results of a run folder (``steer.json`` or ``steer/steer.json``), if any."""
    return find_result(run_dir, KIND.file, KIND.format)


def _curve(track: dict[str, Any]) -> tuple[str, str, str]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from monosemantic.report.figures import to_png_data_uri

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
    from matplotlib.ticker import NullFormatter, ScalarFormatter

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


def _examples(track: dict[str, Any]) -> str:
    sweep = track["sweep"]
    head = sweep["headline"]
    cols = [("baseline (α = 0)", sweep["baseline"]["examples"])]
    for method in ("vanilla", "gsae"):
        if method not in head:
            continue
        alpha = head[method]["alpha"]
        row = next(r for r in sweep["rows"] if r["method"] == method and r["alpha"] == alpha)
        cols.append((f"{method} (α = {alpha:g})", row["examples"]))
    headers = "".join(f"<th>{esc(c)}</th>" for c, _ in cols)
    body = ""
    for i, prompt in enumerate(sweep["prompts"]):
        cells = "".join(f"<td>{esc(ex[i]) if i < len(ex) else ''}</td>" for _, ex in cols)
        body += f"<tr><td><i>{esc(prompt)}</i></td>{cells}</tr>"
    return (f"<div class=table-wrap><table class=summary><thead><tr><th>prompt</th>{headers}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")


def oriented_auroc(entry: dict[str, Any]) -> float | None:
    """Mean detection AUROC over concepts, each taken in the direction the latent steers (a root latent that fires
    for the concept's absence is steered with −α, so its AUROC counts as 1 − AUROC)."""
    vals = [a if s > 0 else 1.0 - a for a, s in zip(entry["auroc"], entry.get("signs") or [1.0] * len(entry["auroc"]),
                                                    strict=True) if a is not None]
    return sum(vals) / len(vals) if vals else None


def _track(track: dict[str, Any]) -> str:
    sae, sweep = track["sae"], track["sweep"]
    quality = [{"method": METHOD_NAMES[m], "fms1": sae[m]["fms@1"], "fms5": sae[m]["fms@5"],
                "auroc": oriented_auroc(sae[m]), "latents": ", ".join(str(j) for j in sae[m]["latents"]),
                "fvu": sae[m].get("fvu"), "l0": sae[m].get("l0")} for m in ("vanilla", "gsae")]
    head = sweep["headline"]
    base = sweep["baseline"]
    fluent = sweep["headline_fluent"]
    heads = [{"method": "unsteered", "alpha": 0.0, "success_rate": base["success_rate"],
              "ppl_median": base["ppl_median"], "ppl_ratio": 1.0, "repetition": base["repetition"]}]
    heads += [{"method": METHOD_NAMES[m], **head[m]} for m in ("vanilla", "gsae") if m in head]
    heads += [{"method": f"{METHOD_NAMES[m]}, repetition bounded", **fluent[m]} for m in ("vanilla", "gsae")
              if m in fluent]
    rows = [{**r, "method": r["method"]} for r in sweep["rows"]]
    extra = ""
    if track.get("style_classifier_heldout_accuracy") is not None:
        extra = (f" The style classifier's held-out accuracy is "
                 f"{track['style_classifier_heldout_accuracy']:.3f}.")
    return (
        f"<h3>{esc(track['track'] if track['track'] == track['task'] else track['track'] + ': ' + track['task'])} "
        f"({esc(track['model'])} {esc(track['layer'])}, "
        f"{esc(track['dataset'])})</h3>"
        f"<p>Concepts: {esc(', '.join(track['concepts']))}. Both SAEs have {track['d_sae']:,} latents and k = "
        f"{track['k']}. FMS is the <b>{esc(track['fms_variant'])}</b> variant (each concept's positives and as many "
        f"seeded negatives) on {track['fms_rows']:,} held-out rows ({esc(track['pooling'])}). Detection AUROC: the "
        f"vanilla root latent's activation (as 1 − AUROC where the latent marks the concept's absence and is "
        f"steered with −α), the G-SAE reserved latent's pre-TopK logit. Steering: x ← x + α β γ "
        f"W_dec[j], β = ‖x‖/‖W_dec[j]‖, γ = {esc(track['gamma'])}, on every position, {sweep['n_prompts']} prompts, "
        f"{sweep['max_new_tokens']} greedy tokens. Success: {esc(track['definition'])}.{extra}</p>"
        + value_table(quality, (("method", "SAE", None), ("fms1", "FMS@1", 3), ("fms5", "FMS@5", 3),
                                ("auroc", "AUROC", 3), ("latents", "concept latent(s)", None), ("fvu", "FVU", 3),
                                ("l0", "L0", 1)))
        + f"<p>Headline: the best success rate among the α whose median perplexity stays within "
        f"{sweep['max_ppl_ratio']:g}× the unsteered one; the last rows also require a repetition (share of repeated "
        f"word 3-grams) of at most the unsteered {base['repetition']:.2f} + {REPETITION_MARGIN:g}, since repetitive "
        "loops can keep a low perplexity.</p>"
        + value_table(heads, (("method", "method", None), ("alpha", "α", 2), ("success_rate", "success", 3),
                                 ("ppl_median", "median PPL", 2), ("ppl_ratio", "PPL ratio", 2),
                                 ("repetition", "repetition", 3)))
        + "<details><summary>every α</summary>"
        + value_table(rows, (("method", "method", None), ("alpha", "α", 2), ("success_rate", "success", 3),
                             ("ppl_median", "median PPL", 2), ("ppl_ratio", "PPL ratio", 2),
                             ("repetition", "repetition", 3)))
        + "</details>" + figure_blocks([_curve(track)]) + "<h4>Example generations</h4>" + _examples(track)
    )


def steer_section(result: dict[str, Any]) -> str:
    tracks = result.get("tracks") or []
    return ("<section id=steer><h2>Steering through SAE features: vanilla SAE vs G-SAE</h2>"
            "<p>After Härle et al., “Measuring and Guiding Monosemanticity” (arXiv 2506.19382): a G-SAE ties latents "
            "to labelled concepts; its reserved latent is compared with the best single latent of a vanilla TopK SAE "
            "of the same width and k, as a detector (FMS, AUROC) and as a steering handle (success against "
            "perplexity under the unsteered model).</p>"
            + "".join(_track(t) for t in tracks) + "</section>")

"""`monosemantic knowledge`: SAE features vs MLP neurons as units of factual knowledge, and FeatureEdit."""

from __future__ import annotations

import argparse

from monosemantic.config import add_arguments, from_namespace
from monosemantic.knowledge.run import KnowledgeConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "knowledge", help="localise facts in SAE features vs MLP neurons, ablate them and erase them (FeatureEdit)",
        description="Keep the facts the model answers correctly (greedy), rank each fact's SAE features by "
        "activation and its MLP neurons by activation × gradient at the subject and last prompt positions, ablate "
        "the top n (ΔProb, with random controls), test the units on related vs unrelated facts (Welch t-test and "
        "Cohen's d), and erase facts by zeroing MLP output weights through features (FeatureEdit) or neurons. "
        "After Chen et al., 'The Knowledge Microscope', arXiv 2502.12483. Writes knowledge.json, CSVs and "
        "knowledge.html to --out.",
        epilog="Example: monosemantic knowledge --model smollm2 --sae saes/resid/topk-4608-k32 "
        "--sae saes/mlp/topk-6144-k32 --facts capitals --out runs/knowledge-capitals",
    )
    add_arguments(p, KnowledgeConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monosemantic.knowledge.run import run_knowledge
    from monosemantic.report.render import write_result_page
    from monosemantic.report.sections.knowledge import KIND

    cfg = from_namespace(KnowledgeConfig, args)
    result = run_knowledge(cfg)
    write_result_page(cfg.out, KIND, result)
    print(f"{result['n_facts']} of {result['n_candidates']} facts known, {result['n_prompts']} prompts")
    ns = sorted({r["n"] for r in result["ablation"]})
    print("ΔProb" + "".join(f"   n={n:<5}" for n in ns))
    for units in dict.fromkeys(r["units"] for r in result["ablation"]):
        for control in (False, True):
            vals = {r["n"]: r["delta_prob"] for r in result["ablation"] if r["units"] == units and
                    r["control"] == control}
            name = units + (" (random)" if control else "")
            print(f"  {name:<48}" + "".join(f" {vals.get(n, float('nan')):8.3f}" for n in ns))
    for s in result["related_test"]["summary"]:
        print(f"related vs unrelated, {s['units']}: {s['pass_fraction']:.3f} of {s['n_units']} units pass")
    for e in (result.get("edit") or {}).get("summary") or []:
        what = "" if e.get("target") != "sets" else " (sets)"
        print(f"{e['method'] + what:<28} reliability {e['reliability']:.3f}  generalisation {e['generalisation']:.3f}  "
              f"locality {e['locality']:.3f}  ΔPPL {e['delta_ppl']:+.4f}")
    print(cfg.out)
    return 0

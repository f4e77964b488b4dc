"""Speed of the knowledge ablations (Chen et al., "The Knowledge Microscope", arXiv 2502.12483, §3.2).

ΔProb of 50 capitals facts × 3 templates (150 prompts, few-shot) with the bundled SmolLM2-135M-Instruct: one
localisation pass (forward and backward: feature activations and neuron attributions at the subject and last
positions), then the top-n and random-control ablations for n = 1, 5, 10 of SAE features (an SAE at
`model.layers.15`, 8 × 576 = 4,608 latents, k = 32, random weights: speed does not depend on training) and of the
block's MLP neurons: 12 conditions × 150 prompts = 1,800 teacher-forced forwards. The blocks below the first
hooked one run once per batch (``--full-forward`` runs every ablation through the whole model, for comparison).
Target: at most 5 minutes on 2 cores.

No peer library runs this analysis offline, so there is no peer column.

    python benchmarks/knowledge_speed.py                 # full size
    python benchmarks/knowledge_speed.py --quick         # a smoke run (10 facts)
"""

from __future__ import annotations

import argparse
import time

import torch

from common import header
from monosemantic.knowledge.ablate import ablated_logprobs, unit_choices
from monosemantic.knowledge.localise import profile
from monosemantic.knowledge.metrics import delta_prob
from monosemantic.sae import SAE, SAEConfig
from monosemantic.sources import load_model
from monosemantic.sources.datasets.facts import builtin_facts

HOOK, NEURONS = "model.layers.15", "model.layers.15.mlp.down_proj:input"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facts", type=int, default=50, help="capitals facts (default 50)")
    ap.add_argument("--templates", type=int, default=3, help="templates per fact (default 3)")
    ap.add_argument("--batch", type=int, default=32, help="prompts per forward (default 32)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    ap.add_argument("--full-forward", action="store_true", help="also time the ablations without the shortcut")
    ap.add_argument("--quick", action="store_true", help="10 facts: a smoke run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.facts = 10
    header("knowledge ablation speed")
    model = load_model("smollm2", max_length=512)
    for p in model.module.parameters():
        p.requires_grad_(False)
    facts = builtin_facts("capitals", "few-shot", max_facts=args.facts)
    prompts = [p for f in facts for p in f.prompts[: args.templates]]
    answers = [f.answers[0] for f in facts for _ in f.prompts[: args.templates]]
    sae = SAE.create(SAEConfig(d_in=576, d_sae=4608, architecture="topk", k=32, metadata={"hook_name": HOOK}))
    sae.init_weights(torch.Generator().manual_seed(0))
    sae = sae.eval()
    saes = [("residual:" + HOOK, HOOK, sae)]
    print(f"{len(facts)} facts × {args.templates} templates = {len(prompts)} prompts; SAE {HOOK} 4,608 latents "
          f"k = 32; neurons {NEURONS} (1,536)")
    profile(model.module, model.tokenizer, prompts[:4], answers[:4], saes, NEURONS, attribute=True)  # warm-up
    t0 = time.perf_counter()
    prof = profile(model.module, model.tokenizer, prompts, answers, saes, NEURONS, attribute=True,
                   batch_size=args.batch)
    t_loc = time.perf_counter() - t0
    choices = unit_choices(prof, ["residual:" + HOOK], [1, 5, 10], seed=0)
    cases = [("from block 15 (default)", True)] + ([("whole model", False)] if args.full_forward else [])
    print(f"\nlocalisation (forward + backward, {len(prompts)} prompts): {t_loc:.1f} s")
    for name, shortcut in cases:
        t1 = time.perf_counter()
        abl = ablated_logprobs(model.module, model.tokenizer, prompts, answers, choices, {saes[0][0]: (HOOK, sae)},
                               NEURONS, batch_size=args.batch, shortcut=shortcut)
        t_abl = time.perf_counter() - t1
        n_fwd = len(choices) * len(prompts)
        print(f"ablations, {name}: {len(choices)} conditions × {len(prompts)} prompts = {n_fwd} forwards in "
              f"{t_abl:.1f} s ({n_fwd / t_abl:.1f} prompts/s); localisation + ablations {t_loc + t_abl:.1f} s "
              f"(target <= 300 s)")
    print("\nmean ΔProb (random SAE weights: a timing run, not a finding)")
    for cond, lp in abl.items():
        print(f"  {cond.label:<40} {float(delta_prob(prof.logp, lp).mean()):.3f}")


if __name__ == "__main__":
    main()

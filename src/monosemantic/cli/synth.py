"""`monosemantic synth`: the synthetic superposition benchmark (do SAEs recover the true features?)."""

from __future__ import annotations

import argparse

from monosemantic.config import add_arguments, from_namespace
from monosemantic.experiments.synth import SynthConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="sweep SAEs on synthetic superposition with known ground truth (recovery, WSAE, Pareto front)",
        description="Generate sparse ground-truth features in superposition for each sparsity S, train every "
        "architecture on them with each WSAE exponent, and score recovery against the truth: MMCS, features "
        "recovered at 0.9/0.99, MCC, uniqueness, L_GT, GT features per latent, FVE, L0, dead latents. Writes "
        "synth.json, synth.csv and synth.html (after Cui et al., arXiv 2506.15963).",
        epilog="Example: monosemantic synth --out runs/synth   (the default sweep: 84 SAEs, a few minutes)",
    )
    add_arguments(p, SynthConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monosemantic.experiments.synth import run_synth

    cfg = from_namespace(SynthConfig, args)
    result = run_synth(cfg)
    print(f"{len(result['rows'])} SAEs in {result['seconds']} s: {cfg.out}/synth.html")
    return 0

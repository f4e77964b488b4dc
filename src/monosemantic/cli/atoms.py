"""`monosemantic atoms`: neurons, SAE features and threshold-SAE atoms of one layer, in the Euclidean and AIP
geometry (faithfulness R², uniqueness, q*)."""

from __future__ import annotations

import argparse

from monosemantic.config import add_arguments, from_namespace
from monosemantic.pipeline.atoms import AtomsConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "atoms",
        help="are neurons, SAE features or threshold-SAE atoms the units of a layer? (R², uniqueness, q*)",
        description="Estimate the atomic inner product of a store's layer, train threshold (JumpReLU) SAEs at "
        "several capacities, and score neurons, the given SAEs' features and the atoms on faithfulness (R²), "
        "unique recoverability (unique fraction, q*) and coherence, in the Euclidean and the AIP geometry, with "
        "the angle histograms of the representation-shift check (after Hu et al., arXiv 2509.20784). Writes "
        "atoms.json, atoms.csv and atoms.html.",
        epilog="Example: monosemantic atoms --acts stores/minilm-l3 --sae saes/topk --out runs/atoms",
    )
    add_arguments(p, AtomsConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monosemantic.pipeline.atoms import run_atoms

    cfg = from_namespace(AtomsConfig, args)
    result = run_atoms(cfg)
    for u in result["units"]:
        print(f"{u['id']:>20}: R² {u['r2']:.4f}  unique (AIP) {u['unique_aip']:.3f}  q* (AIP) {u['q_star_aip']:.3f}")
    print(f"{cfg.out}/atoms.html")
    return 0

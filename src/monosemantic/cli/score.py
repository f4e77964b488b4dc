"""`monosemantic score`: MS, FMS, label correlation and entropy for raw neurons and SAE latents of one layer."""

from __future__ import annotations

import argparse

from monosemantic.config import add_arguments, from_namespace
from monosemantic.metrics.scoring import ScoreConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score", help="score a layer's raw neurons and its SAEs' latents side by side",
        description="Score the raw neurons of the store's layer and every SAE's latents in one run: "
        "MonoSemanticity score (MS, against an external encoder), FMS per label, label correlation and entropy, "
        "firing rates. Writes scores.json (summaries), units.csv (one row per unit) and top.safetensors.",
    )
    add_arguments(p, ScoreConfig, flags={"acts": ("--acts",), "sae": ("--sae",)})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from monosemantic.metrics.scoring import score

    cfg = from_namespace(ScoreConfig, args)
    result = score(cfg)
    print(f"encoder: {result['encoder']}  ({result['n_items']:,} items, pool={result['pool']}; FMS "
          f"{'balanced' if cfg.fms_balance else 'unbalanced'})")
    print(f"{'unit set':<28} {'width':>6} {'dead':>6} {'MS mean':>8} {'best':>6} {'worst':>6} {'FMS@1':>6}")
    for s in result["unit_sets"]:
        ms = s["ms"]
        fms = s.get("fms", {}).get("fms@1")
        print(f"{s['id']:<28} {s['width']:>6} {s['dead_fraction']:>6.2f} {_f(ms['mean']):>8} {_f(ms['best']):>6} "
              f"{_f(ms['worst']):>6} {_f(fms):>6}")
    print(json.dumps({"scores": str(cfg.out / "scores.json")}))
    return 0


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"

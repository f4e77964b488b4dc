"""`monosemantic steer`: continue prompts with and without an edit of SAE latents, side by side."""

from __future__ import annotations

import argparse

from monosemantic.config import add_arguments, from_namespace
from monosemantic.steer.run import SteerConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "steer", help="steer a language model through SAE latents and compare with its unsteered continuations",
        description="Load a causal LM and an SAE trained on one of its hooks, edit the chosen latents at that hook "
        "on every position (prompt and generated tokens) and print the greedy continuations of every prompt "
        "without and with the edit, for each α. The output names the edit and the error-term mode.",
        epilog="Example: monosemantic steer --model smollm2 --sae runs/demo/saes/.../gsae-4608-k32 --latent 0 "
        "--mode direction --alpha 0.1 --alpha 0.2 --prompt 'I woke up today and'",
    )
    add_arguments(p, SteerConfig, flags={"alpha": ("--alpha", "--alphas")})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import textwrap

    from monosemantic.steer.run import run_steer

    cfg = from_namespace(SteerConfig, args)
    records = run_steer(cfg)
    first = records[0]
    edit = f"{cfg.mode} latent(s) {', '.join(map(str, cfg.latent))}"
    if cfg.mode == "direction":
        edit += f", gamma {cfg.gamma}"
    print(f"hook {first['hook']}; edit: {edit}; error term: {cfg.error_term}")
    for prompt in dict.fromkeys(r["prompt"] for r in records):
        rows = [r for r in records if r["prompt"] == prompt]
        print(f"\n> {prompt}")
        print(textwrap.indent(f"baseline     | {rows[0]['baseline']!r}", "  "))
        for r in rows:
            print(textwrap.indent(f"α = {r['alpha']:<8g} | {r['steered']!r}", "  "))
    if cfg.out is not None:
        print(f"\n{cfg.out}")
    return 0

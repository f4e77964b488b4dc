"""Speed of steering and of G-SAE training (Härle et al., arXiv 2506.19382).

1. Greedy generation with the bundled SmolLM2-135M-Instruct, unsteered against steered through an SAE at
   `model.layers.15` (width 6 x 576 = 3,456, k = 288: the steering tracks' setting): a latent edit (clamp,
   keep_error) and the FMS paper's direction rule with a TopK SAE and with a G-SAE. Every run generates exactly
   the same number of tokens for the same prompts (end-of-sequence held back), best of `--repeats` rounds that
   run every case in turn.
   Target: steered <= 1.25 x unsteered.
2. Training throughput of a G-SAE against a TopK SAE of the same width and k on one store (the same batches,
   tokens/s of the training loop from the training log). Target: G-SAE within 20% of TopK.

No peer library steers this model offline (SAELens' HookedSAETransformer needs the model in TransformerLens, which
downloads it), and the G-SAE reference code is not a package, so there is no peer column.

    python benchmarks/steer_speed.py                 # full size
    python benchmarks/steer_speed.py --quick         # a smoke run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import header
from monosemantic.sae import SAE, train, train_config
from monosemantic.sae.core import SAEConfig
from monosemantic.sources import load_model
from monosemantic.steer.generate import generate
from monosemantic.steer.interventions import Edit, steering
from monosemantic.store.writer import write_store

HOOK = "model.layers.15"


def _sae(arch: str, concepts: list[str] | None = None) -> SAE:
    meta: dict = {"hook_name": HOOK}
    if concepts:
        meta["monosemantic"] = {"gsae": {"concepts": concepts, "activation": "topk-sigmoid"}}
    sae = SAE.create(SAEConfig(d_in=576, d_sae=3456, architecture=arch, k=288, metadata=meta))
    sae.init_weights(torch.Generator().manual_seed(0))
    return sae.eval()


def generation(args: argparse.Namespace) -> None:
    from monosemantic.steer.tasks import get_task

    model = load_model("smollm2")
    prompts = get_task("attitude").prompts(args.prompts, 0)
    topk, gsae = _sae("topk"), _sae("gsae", ["positive"])
    runs = {
        "unsteered": None,
        "clamp latent 7 (TopK, keep_error)": (topk, [Edit((7,), "clamp", 10.0)]),
        "direction rule, 1 latent (TopK)": (topk, [Edit((7,), "direction", 0.1)]),
        "direction rule, 1 latent (G-SAE)": (gsae, [Edit((0,), "direction", 0.1)]),
        "direction rule, 8 latents (TopK)": (topk, [Edit(tuple(range(8)), "direction", 0.05)]),
        "direction rule, γ = act, 1 latent (G-SAE)": (gsae, [Edit((0,), "direction", 0.1, "act")]),
    }
    n = args.new_tokens

    def once(spec: tuple[SAE, list[Edit]] | None) -> float:
        t = time.perf_counter()
        if spec is None:
            generate(model, prompts, max_new_tokens=n, min_new_tokens=n, batch_size=args.batch)
        else:
            with steering(model, spec[0], spec[1]):
                generate(model, prompts, max_new_tokens=n, min_new_tokens=n, batch_size=args.batch)
        return time.perf_counter() - t

    once(None)  # warm-up
    # rounds of every run in turn, so that a slow spell of the machine hits all of them alike; best of the rounds
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, spec in runs.items():
            times[name].append(once(spec))
    best = {name: min(t) for name, t in times.items()}
    base = best["unsteered"]
    print(f"\n## generation: {len(prompts)} prompts x {n} new tokens, batch {args.batch}, best of {args.repeats} "
          "interleaved rounds")
    print("| run | seconds | tokens/s | vs unsteered |\n|---|---:|---:|---:|")
    for name, sec in best.items():
        print(f"| {name} | {sec:.2f} | {len(prompts) * n / sec:,.0f} | {sec / base:.3f}x |")


def training(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    n_items, per = args.rows // 25, 25
    labels = rng.integers(0, 2, (n_items, 1))
    x = rng.standard_normal((n_items * per, 576)).astype(np.float32)
    x += (labels * 2.0).repeat(per, 0) * rng.standard_normal(576).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        write_store(Path(tmp) / "store", {HOOK: x}, item_index=np.arange(n_items).repeat(per), labels=labels,
                    label_names=["concept"])
        print(f"\n## training: {len(x):,} rows x 576, d_sae 3,456, k 288, batch 4,096, {args.tokens} tokens each")
        print("| architecture | tokens/s (loop) | vs TopK |\n|---|---:|---:|")
        speeds = {}
        for arch in ("topk", "gsae"):
            tc = train_config({"acts": str(Path(tmp) / "store"), "out": str(Path(tmp) / arch), "arch": arch,
                               "width": [6], "k": [288], "tokens": args.tokens, "batch_size": 4096,
                               "progress": False, "log_every": 10})
            folder = train(tc)[0]
            log = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
            first, last = log[0], log[-1]
            speeds[arch] = (last["tokens"] - first["tokens"]) / (last["elapsed_s"] - first["elapsed_s"])
        for arch, s in speeds.items():
            print(f"| {arch} | {s:,.0f} | {s / speeds['topk']:.3f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--tokens", default="2M")
    args = ap.parse_args()
    if args.quick:
        args.prompts, args.new_tokens, args.repeats, args.rows, args.tokens = 8, 8, 1, 20_000, "100K"
    header("steer_speed")
    generation(args)
    training(args)


if __name__ == "__main__":
    main()

"""`monosemantic train`: train one SAE, or a sweep side by side, on an activation store."""

from __future__ import annotations

import argparse
from pathlib import Path

from monosemantic.config import add_arguments, load_toml
from monosemantic.sae.options import option_owners, registered_options
from monosemantic.sae.trainconfig import TrainConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train sparse autoencoders on stored activations (one, or a sweep from one pass)",
        description="Train SAEs on an activation store. Repeat --width/--d-sae, --k or --l1-coefficient to "
        "train a sweep side by side from one pass over the data. Each SAE is a SAELens-compatible folder "
        "(cfg.json, sae_weights.safetensors) with eval.json and train_log.jsonl. Under `torchrun "
        "--nproc_per_node N -m monosemantic train ...` the processes share the work with DDP.",
        epilog="Example: monosemantic train --acts stores/minilm --arch topk --width 16 --k 32 --tokens 2M "
        "--out runs/topk",
    )
    p.add_argument("--config", type=Path, default=None,
                   help="TOML file with the same keys as these options; options given here override it")
    add_arguments(p, TrainConfig, flags={"l1_coefficient": ("--l1",)}, skip=("options",))
    # each architecture's own options, once each, under the first architecture that takes them
    owners, seen = option_owners(), set(TrainConfig.__dataclass_fields__)
    for cls in registered_options().values():
        new = tuple(f for f in cls.__dataclass_fields__ if f not in seen)
        if not new:
            continue
        takers = sorted({a for f in new for a in owners[f]})
        group = p.add_argument_group(f"options of {', '.join(takers)}")
        add_arguments(group, cls, skip=tuple(f for f in cls.__dataclass_fields__ if f not in new))  # type: ignore[arg-type]
        seen.update(new)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monosemantic.sae import train
    from monosemantic.sae.trainconfig import train_config

    given = {k: v for k, v in vars(args).items() if k not in ("config", "func", "command")}
    if args.config is not None:
        config = train_config({**load_toml(args.config), **given}, where=str(args.config))
    else:
        config = train_config(given)
    from monosemantic.sae import distributed

    try:
        folders = train(config)
    except BaseException:
        distributed.teardown(sync=False)
        raise
    if distributed.is_main():  # every rank returns the folders; print them once
        for folder in folders:
            print(folder)
    distributed.teardown()  # under torchrun, leave no gloo/NCCL threads behind at exit
    return 0

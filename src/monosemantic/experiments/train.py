"""``monosemantic train``: train one SAE, or a sweep side by side from one pass, on an activation store.

The config is :class:`monosemantic.sae.TrainConfig` (one option per field, each architecture's own options in a group
of their own, or the same keys in a ``--config`` TOML file), the work is :func:`monosemantic.sae.train`, and the
result is the SAE folders, which the trainer publishes one by one as each SAE is done (``cfg.json``,
``sae_weights.safetensors``, ``eval.json``, ``train_log.jsonl``, ``sparsity.safetensors``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import cast

from monosemantic.config import add_arguments, load_toml
from monosemantic.experiment import Command, Result, Summary
from monosemantic.sae import TrainConfig, distributed, train, train_config
from monosemantic.sae.registry import option_owners, registered_options


@dataclass(frozen=True)
class TrainResult(Result):
    """The SAE folders of one training run, one per sweep point, in sweep order."""

    folders: list[Path]
    main: bool = True
    """Whether this is the main process: under ``torchrun`` every rank returns the folders, and only the main one
    prints them."""

    def write(self, folder: Path) -> None:
        """Nothing to add: the trainer has already published each SAE folder (atomically, when it was done)."""

    def summary(self) -> Summary:
        return [str(f) for f in self.folders] if self.main else []


def run(cfg: TrainConfig) -> TrainResult:
    """Train the SAEs of ``cfg`` and return their folders; the process group that training set up under
    ``torchrun`` is closed before returning."""
    try:
        folders = train(cfg)
    except BaseException:
        distributed.teardown(sync=False)  # a rank leaving on an error must not wait for the others
        raise
    main = distributed.is_main()  # asked before the group is gone, after which every rank would say yes
    distributed.teardown()  # under torchrun, leave no gloo/NCCL threads behind at exit
    return TrainResult(folders=folders, main=main)


_FIELDS = tuple(f.name for f in fields(TrainConfig))


def configure(p: argparse.ArgumentParser) -> None:
    """``--config FILE``, one option per field of the config, then each architecture's own options, once each,
    under the first architecture that takes them.

    The config's fields are added here rather than by the generated parser (``COMMAND`` skips them all) because the
    generated ones would come after this hook's, and the usage line lists the architecture options last."""
    p.add_argument("--config", type=Path, default=None,
                   help="TOML file with the same keys as these options; options given here override it")
    add_arguments(p, TrainConfig, flags={"l1_coefficient": ("--l1",)}, skip=("options",))
    owners, seen = option_owners(), set(_FIELDS)
    for cls in registered_options().values():
        own = [f.name for f in fields(cls)]
        new = tuple(f for f in own if f not in seen)
        if not new:
            continue
        takers = sorted({a for f in new for a in owners[f]})
        group = p.add_argument_group(f"options of {', '.join(takers)}")
        # a group takes options as its parser does; add_arguments calls nothing else on it
        add_arguments(cast(argparse.ArgumentParser, group), cls, skip=tuple(f for f in own if f not in new))
        seen.update(new)


def build(args: argparse.Namespace) -> TrainConfig:
    """The config from the parsed options, over the ``--config`` file's keys when one is given."""
    given = {k: v for k, v in vars(args).items() if k not in ("config", "func", "command")}
    if args.config is not None:
        return train_config({**load_toml(args.config), **given}, where=str(args.config))
    return train_config(given)


COMMAND = Command(
    "train", TrainConfig, run,
    description="Train SAEs on an activation store. Repeat --width/--d-sae, --k or --l1-coefficient to "
    "train a sweep side by side from one pass over the data. Each SAE is a SAELens-compatible folder "
    "(cfg.json, sae_weights.safetensors) with eval.json and train_log.jsonl. Under `torchrun "
    "--nproc_per_node N -m monosemantic train ...` the processes share the work with DDP.",
    epilog="Example: monosemantic train --acts stores/minilm --arch topk --width 16 --k 32 --tokens 2M "
    "--out runs/topk",
    skip=_FIELDS,  # added by `configure`, before the architecture groups
    configure=configure,
    build=build,
)

"""`monosemantic inspect STORE`: summarise an activation store."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="summarise an activation store (model, hooks, counts, labels)",
        description="Print what a store holds, with per-hook statistics of a sample of rows.",
    )
    p.add_argument("store", help="folder written by `monosemantic extract`")
    p.add_argument("--verify", action="store_true", help="also check every shard's sha256 against the manifest")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monosemantic.store.summary import summarize  # imported here, so that `monosemantic --help` skips torch

    print(summarize(args.store, verify=args.verify))
    return 0

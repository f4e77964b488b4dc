"""`monosemantic extract`: cache a model's activations on a dataset."""

from __future__ import annotations

import argparse

from monosemantic.config import add_arguments, from_namespace
from monosemantic.store.extract import ExtractConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="run a model over a dataset and store the activations of one or more hooks",
        description="Run MODEL over DATA once and store the activations of every --layer as sharded, "
        "memory-mapped safetensors with a JSON manifest. An interrupted run resumes when run again.",
    )
    add_arguments(p, ExtractConfig, flags={"layers": ("--layer",)})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monosemantic.store.extract import extract

    store = extract(from_namespace(ExtractConfig, args))
    print(store)
    return 0

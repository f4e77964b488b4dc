"""The ``monosemantic`` command: a thin layer over the Python API.

Each subcommand lives in its own module here with a ``register(subparsers)`` function that adds its parser and
sets ``func``. Heavy imports (torch, transformers) happen inside the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from monosemantic.errors import UserError

# Order is the order shown by `monosemantic --help`; a module that does not exist yet is simply not listed.
COMMANDS = ("demo", "run", "extract", "hooks", "inspect", "train", "score", "steer", "vision_steer", "knowledge",
            "compare", "synth", "atoms", "study", "name", "report")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="monosemantic",
        description=(
            "Make the units of neural networks readable: cache a model's activations, train sparse "
            "autoencoders on them, score how monosemantic neurons and SAE features are, and report."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        module_name = f"monosemantic.cli.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"monosemantic {version('monosemantic')}"
    except PackageNotFoundError:
        return "monosemantic (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except UserError as exc:
        print(f"monosemantic {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"monosemantic {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return int(result or 0)

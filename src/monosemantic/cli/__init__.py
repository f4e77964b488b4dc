"""The ``monosemantic`` command: a thin layer generated from the experiments.

``COMMANDS`` lists every command in the order ``--help`` shows, with the module that holds it and its one-line help.
A module either defines ``COMMAND`` (a :class:`monosemantic.experiment.Command` or ``Group``), from which the
parser, the run and the printout are generated, or ``register(subparsers)`` for the few commands that are not
experiments (``demo``, ``hooks``, ``inspect``). Only the module of the command being run is imported, so
``monosemantic --help`` does not import torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from monosemantic.errors import UserError

COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("demo", "monosemantic.cli.demo",
     "run the bundled demo: vision, text and steering tracks, neurons vs SAE features, one report"),
    ("run", "monosemantic.experiments.run",
     "run a pipeline (extract -> train -> score -> report) described in a TOML file"),
    ("extract", "monosemantic.experiments.extract",
     "run a model over a dataset and store the activations of one or more hooks"),
    ("hooks", "monosemantic.cli.hooks", "list a model's hook points (module paths) with their output widths"),
    ("inspect", "monosemantic.cli.inspect", "summarise an activation store (model, hooks, counts, labels)"),
    ("train", "monosemantic.experiments.train",
     "train sparse autoencoders on stored activations (one, or a sweep from one pass)"),
    ("score", "monosemantic.experiments.score", "score a layer's raw neurons and its SAEs' latents side by side"),
    ("steer", "monosemantic.experiments.steer",
     "steer a language model through SAE latents and compare with its unsteered continuations"),
    ("steer-measure", "monosemantic.experiments.steer_measure",
     "clamp SAE latents of an image classifier and count top-1 moves to each latent's class"),
    ("steer-score", "monosemantic.experiments.steer_score",
     "the steering score of an image-text model steered through its vision tower"),
    ("knowledge", "monosemantic.experiments.knowledge",
     "localise facts in SAE features vs MLP neurons, ablate them and erase them (FeatureEdit)"),
    ("compare", "monosemantic.experiments.compare",
     "pair SAE features across layers, seeds or models and compare their geometry"),
    ("synth", "monosemantic.experiments.synth",
     "sweep SAEs on synthetic superposition with known ground truth (recovery, WSAE, Pareto front)"),
    ("atoms", "monosemantic.experiments.atoms",
     "are neurons, SAE features or threshold-SAE atoms the units of a layer? (R², uniqueness, q*)"),
    ("study", "monosemantic.experiments.study",
     "user-study harness: a blind pairwise study page, and how well scores agree with the answers"),
    ("name", "monosemantic.experiments.name",
     "name latents automatically and check the names with judges (P/R/F1 vs shuffled names)"),
    ("report", "monosemantic.experiments.report",
     "render a run folder as one self-contained HTML report (plus figures.json)"),
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in ``argv`` (if any) gets its options, every other one its help line.
    ``argv=None`` builds every command in full (for docs and tests)."""
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
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    loaded: set[str] = set()
    for name, module, help_text in COMMANDS:
        if name in loaded:
            continue
        if chosen is None or name == chosen:
            loaded |= _attach(sub, module, help_text)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def _attach(sub: Any, module_name: str, help_text: str) -> set[str]:
    """Add the command(s) of ``module_name`` in full; returns their names."""
    from monosemantic.cli.generate import add_command

    module = importlib.import_module(module_name)
    if hasattr(module, "COMMAND"):
        add_command(sub, module.COMMAND, help_text)
        return {module.COMMAND.name}
    before = set(sub.choices)
    module.register(sub)
    return set(sub.choices) - before


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"monosemantic {version('monosemantic')}"
    except PackageNotFoundError:
        return "monosemantic (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    from monosemantic.log import error_line

    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except UserError as exc:
        error_line(f"monosemantic {args.command}: error: {exc}")
        return 2
    except KeyboardInterrupt:
        error_line(f"monosemantic {args.command}: interrupted")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return int(result or 0)

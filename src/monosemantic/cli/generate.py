"""Parsers, runs and printouts generated from an experiment's :class:`~monosemantic.experiment.Command`."""

from __future__ import annotations

import argparse
from typing import Any

from monosemantic.config import add_arguments, from_namespace
from monosemantic.experiment import Command, Group, Summary, Table


def add_command(sub: Any, command: Command | Group, help_text: str) -> None:
    """Add ``command`` (with its modes, if it is a group) to the subparsers ``sub``."""
    if isinstance(command, Group):
        p = sub.add_parser(command.name, help=help_text, description=command.description)
        modes = p.add_subparsers(dest="mode", metavar="MODE", parser_class=type(p), required=True)
        for mode, mode_help in command.modes:
            _add(modes, mode, mode_help)
        return
    _add(sub, command, help_text)


def _add(sub: Any, command: Command, help_text: str) -> None:
    p = sub.add_parser(command.name, help=help_text, description=command.description, epilog=command.epilog)
    if command.configure is not None:
        command.configure(p)
    add_arguments(p, command.config, skip=command.skip, flags=command.flags, positional=command.positional,
                  metavars=command.metavars)
    p.set_defaults(func=lambda args: run_command(command, args))


def run_command(command: Command, args: argparse.Namespace) -> int:
    """Build the config from the parsed options, run the experiment and print its summary."""
    cfg = command.build(args) if command.build is not None else from_namespace(command.config, args)
    print_summary(command.run(cfg).summary())
    return 0


def print_summary(summary: Summary) -> None:
    """The one printer of the command line: status lines as they are, tables with aligned columns."""
    for part in summary:
        lines = part.lines() if isinstance(part, Table) else [part]
        for line in lines:
            print(line)

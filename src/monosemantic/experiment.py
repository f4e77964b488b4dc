"""The one form of an experiment: a typed config, a ``run`` that returns a typed result, and that result's files
and table.

Every command of ``monosemantic`` is a module in ``monosemantic.experiments`` with the same four parts::

    @dataclass(frozen=True)
    class AtomsConfig:              # a docstring under each field: the CLI's --help and the TOML keys
        acts: Path
        '''Activation store.'''
        def __post_init__(self): ...   # the only place the config is checked, so a bad one never exists

    @dataclass(frozen=True)
    class AtomsResult(Result):      # typed fields, not a dict
        def write(self, folder): ...     # the result's files (JSON tagged with its ResultKind, CSV, HTML)
        def summary(self): ...           # what the CLI prints: lines and tables

    def run(cfg: AtomsConfig) -> AtomsResult: ...   # does the work, writes to cfg.out, returns the result

    COMMAND = Command("atoms", AtomsConfig, run, description=...)

The command line is generated from ``COMMAND`` (options from the config's fields, the summary printed by one
table printer), so a new command is one module plus one line in ``monosemantic.experiments.COMMANDS``.
"""

from __future__ import annotations

import argparse
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from monosemantic.results import ResultKind


@dataclass(frozen=True)
class Column:
    """One column of a printed table."""

    header: str
    width: int
    align: str = ">"
    """``<`` left, ``>`` right (numbers)."""
    digits: int | None = 3
    """Decimals of a float cell; None prints floats as they are."""


@dataclass(frozen=True)
class Table:
    """Rows of cells under a header, printed with fixed column widths; a missing or NaN number prints ``-``."""

    columns: tuple[Column, ...]
    rows: Sequence[Sequence[Any]]
    sep: str = " "

    def lines(self) -> list[str]:
        head = self.sep.join(f"{c.header:{c.align}{c.width}}" for c in self.columns)
        body = [self.sep.join(f"{cell_text(v, c.digits):{c.align}{c.width}}" for v, c in
                              zip(row, self.columns, strict=True)) for row in self.rows]
        return [head.rstrip(), *(line.rstrip() for line in body)]


def cell_text(value: Any, digits: int | None = 3) -> str:
    """A table cell: ``-`` for nothing or NaN, floats to ``digits`` decimals, anything else as ``str``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


Summary = list[str | Table]
"""What a command prints when it is done: status lines and tables, in order."""


class Result(ABC):
    """What every experiment's ``run`` returns: typed fields, the files they are saved as, and a printout."""

    KIND: ClassVar[ResultKind | None] = None
    """The result file's contract with the report (None for results the report does not show)."""

    @abstractmethod
    def write(self, folder: Path) -> None:
        """Save the result's files into ``folder`` (which exists; the caller publishes it atomically)."""

    @abstractmethod
    def summary(self) -> Summary:
        """The lines and tables the command line prints."""


@dataclass(frozen=True)
class Command:
    """A command of the ``monosemantic`` CLI, generated from an experiment's config and ``run``."""

    name: str
    """The command's name (``monosemantic NAME``)."""
    config: type
    """The experiment's frozen config dataclass; its fields become the options."""
    run: Callable[[Any], Result]
    """The experiment: config in, result out."""
    description: str
    """The paragraph ``--help`` shows under the usage line."""
    epilog: str | None = None
    """An example, shown at the end of ``--help``."""
    flags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Extra option names for fields (e.g. ``{"l1_coefficient": ("--l1",)}``)."""
    skip: tuple[str, ...] = ()
    """Fields that are not options."""
    positional: tuple[str, ...] = ()
    """Fields given as positional arguments rather than options (e.g. ``report RUN_DIR``)."""
    metavars: dict[str, str] = field(default_factory=dict)
    """The placeholder ``--help`` shows for an option's value (default: the field's name in capitals)."""
    configure: Callable[[argparse.ArgumentParser], None] | None = None
    """Adds options beyond the config's fields (e.g. ``--config FILE``)."""
    build: Callable[[argparse.Namespace], Any] | None = None
    """Builds the config from parsed options when that takes more than the fields (default: one option a field)."""


@dataclass(frozen=True)
class Group:
    """A command whose work is split into modes (``monosemantic study page|agree|simulate``)."""

    name: str
    description: str
    modes: tuple[tuple[Command, str], ...]
    """Each mode's command (its ``name`` is the mode) and its one-line help."""

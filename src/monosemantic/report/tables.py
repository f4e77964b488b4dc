"""The table of per-row values that the sections of stand-alone results share, as a template context (the markup
is the ``value_table`` macro of ``templates/parts.html.j2``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monosemantic.results import JSONDict

Columns = Sequence[tuple[str, str, int | None]]
"""(key, header, decimals or None for text) of each column."""


@dataclass(frozen=True)
class ValueTable:
    """Column headers and the cells of each row, as text."""

    head: list[str]
    rows: list[list[str]]


def _cell(value: Any, digits: int | None) -> str:
    if value is None:
        return "–"
    if digits is None or isinstance(value, str):
        return str(value)
    return f"{value:.{digits}f}"


def value_table(rows: Sequence[JSONDict], columns: Columns) -> ValueTable:
    """One row per dict; a missing value is ``–``, a number gets its column's decimals, text stays as it is."""
    return ValueTable(head=[label for _, label, _ in columns],
                      rows=[[_cell(r.get(key), d) for key, _, d in columns] for r in rows])

"""The report's sections for stand-alone results, one module each, found by scanning this package.

A section module declares

- ``KIND``: the :class:`~monosemantic.results.ResultKind` its result file is written and found by (the experiment
  that writes the file imports it from here);
- ``ORDER``: its place among the sections of the main report (lower first);
- ``context(result)``: the variables of its template, ``templates/sections/<module>.html.j2``, from the result's
  JSON;

and may set ``ANCHOR``, the section's element id (default: ``KIND.name``). A module without ``context`` declares a
kind the report shows elsewhere (``names``: on the tracks' cards). So adding a section is one module here and its
template, nothing else.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monosemantic.results import JSONDict, ResultKind


@dataclass(frozen=True)
class Section:
    """One section of the report, as its module declares it."""

    kind: ResultKind
    order: int
    """Place among the report's sections (lower first)."""
    anchor: str
    """The element id of the section (the contents link to it)."""
    template: str
    """The section's template, relative to the templates folder."""
    context: Callable[[JSONDict], dict[str, Any]]
    """The template's variables from the result's JSON."""


@functools.cache
def sections() -> tuple[Section, ...]:
    """Every section module of this package, in page order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        context = getattr(module, "context", None)
        if context is None:
            continue
        kind: ResultKind = module.KIND
        found.append(Section(kind=kind, order=module.ORDER, anchor=getattr(module, "ANCHOR", kind.name),
                             template=f"sections/{info.name}.html.j2", context=context))
    return tuple(sorted(found, key=lambda s: s.order))


def section(kind: ResultKind) -> Section:
    """The section that shows results of ``kind``."""
    for s in sections():
        if s.kind == kind:
            return s
    raise LookupError(f"no report section shows {kind.name} results")

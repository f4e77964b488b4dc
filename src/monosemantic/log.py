"""One way to tell the user what is happening: progress bars and status lines, both on stderr.

Every long loop takes its bar from :func:`bar`; every status line goes through :func:`say` (the ``monosemantic``
logger). Both are switched off together by :func:`set_quiet` (tests, notebooks that want silence), and status lines
and error messages are printed through tqdm so a live bar is cleared first instead of being cut in half.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

logger = logging.getLogger("monosemantic")
_state = {"quiet": False}


class _TqdmHandler(logging.Handler):
    """Writes records through ``tqdm.write`` so they never land in the middle of a bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a logging handler must never raise into the caller
            self.handleError(record)


if not logger.handlers:
    _handler = _TqdmHandler()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def set_quiet(quiet: bool = True) -> None:
    """Switch progress bars and status lines off (or back on) for the whole process."""
    _state["quiet"] = quiet
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def is_quiet() -> bool:
    return _state["quiet"]


@contextmanager
def quiet() -> Iterator[None]:
    """No bars and no status lines inside the block."""
    before = _state["quiet"]
    set_quiet(True)
    try:
        yield
    finally:
        set_quiet(before)


def bar(iterable: Iterable[T] | None = None, *, desc: str, unit: str = "it", total: int | float | None = None,
        leave: bool = True) -> tqdm:
    """A progress bar on stderr (off when quiet); iterate over it or call ``update``."""
    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=leave, disable=_state["quiet"],
                dynamic_ncols=True, file=sys.stderr)


def say(message: str) -> None:
    """A status line on stderr (off when quiet)."""
    logger.info(message)


def error_line(message: str) -> None:
    """A one-line error on stderr, printed after clearing any live bar (always shown)."""
    tqdm.write(message, file=sys.stderr)

"""Errors a user can act on.

Anything raised as a ``UserError`` reaches the command line as one line and exit code 2, with no traceback;
everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """Bad input: the message says what is wrong and what would be right."""


class StoreError(UserError):
    """An activation store is missing, incomplete, corrupt or does not match its manifest."""


def unknown_choice(kind: str, given: str, valid: Iterable[str], extra: str = "") -> UserError:
    """The one message for 'not one of the names we know', naming every valid choice."""
    names = ", ".join(sorted(valid))
    tail = f" {extra}" if extra else ""
    return UserError(f"unknown {kind} {given!r}; choose one of: {names}{tail}")

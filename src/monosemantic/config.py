"""Typed dataclass configs: one docstring per field, shown by ``--help``, loaded the same way from TOML.

A config is a plain (frozen or not) dataclass whose fields each carry a docstring on the line after them::

    @dataclass(frozen=True)
    class ExtractConfig:
        model: str
        '''Registered model name, Hugging Face id or local path.'''

The same class builds argparse options (``add_arguments`` / ``from_namespace``) and validates TOML tables
(``from_dict``): unknown keys and wrong types are named in a one-line ``UserError``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import math
import textwrap
import tomllib
import types
import typing
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from monosemantic.errors import UserError
from monosemantic.results import to_json

T = TypeVar("T")


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Map each field of a dataclass to the docstring written right below it (inherited ones included)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        for stmt, nxt in itertools.pairwise(body):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def type_name(tp: Any) -> str:
    """A short, human name for a field type, used in messages."""
    tp, optional = _strip_optional(tp)
    origin = get_origin(tp)
    if origin is Literal:
        name = "one of " + ", ".join(repr(a) for a in get_args(tp))
    elif origin in (list, tuple):
        inner = get_args(tp)[0] if get_args(tp) else Any
        name = f"a list of {type_name(inner)}"
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        name = f"a table ({tp.__name__})"
    else:
        name = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}.get(
            tp, getattr(tp, "__name__", str(tp))
        )
    return name + (" or nothing" if optional else "")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_SCALARS: dict[Any, tuple[Callable[[Any], bool], Callable[[Any], Any]]] = {
    bool: (lambda v: isinstance(v, bool), lambda v: v),
    int: (_is_int, lambda v: v),
    float: (_is_number, float),
    str: (lambda v: isinstance(v, str), lambda v: v),
    Path: (lambda v: isinstance(v, str | Path), Path),
}
"""TOML scalar types: what a value must be, and how it is converted (an integer is a fine float)."""


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against ``tp`` (TOML types), converting where the meaning is unambiguous."""
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise UserError(f"{where} must be {type_name(tp)}, not nothing")
    origin = get_origin(tp)
    bad = UserError(f"{where} must be {type_name(tp)}, got {value!r} ({type(value).__name__})")
    if origin is Literal:
        if value not in get_args(tp):
            raise bad
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise bad
        inner = get_args(tp)[0] if get_args(tp) else Any
        items = [coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, where)  # pyright: ignore[reportArgumentType]
    if tp not in _SCALARS:
        return value
    accepts, convert = _SCALARS[tp]
    if not accepts(value):
        raise bad
    return convert(value)


def check_values(cls: type, values: dict[str, Any], name: Callable[[str], str]) -> None:
    """Refuse NaN or infinite numbers and values outside a ``Literal``'s choices among the given field values of
    config class ``cls``, naming the field as ``name(field)`` (e.g. its command-line flag). Runs before the config
    is built, so its own ``__post_init__`` checks only see finite numbers."""
    hints = _hints(cls)
    for field_name, value in values.items():
        if value is None or field_name not in hints:
            continue
        tp, _ = _strip_optional(hints[field_name])
        if get_origin(tp) is Literal and value not in get_args(tp):
            choices = ", ".join(str(a) for a in get_args(tp))
            raise UserError(f"{name(field_name)} must be one of {choices}, got {value!r}")
        numbers = value if isinstance(value, list | tuple) else [value]
        for v in numbers:
            if isinstance(v, float) and not math.isfinite(v):
                raise UserError(f"{name(field_name)} must be a finite number, got {v}")


def check_fields(obj: Any, name: Callable[[str], str]) -> None:
    """``check_values`` on every field of a built config (for a ``__post_init__`` that must check itself)."""
    check_values(type(obj), {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, name)


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config",
              names: Callable[[str], str] | None = None) -> T:
    """Build ``cls`` from a mapping, naming any unknown key or wrongly typed value; ``names`` turns a field into
    the name a message uses for it (default ``where.field``)."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"unknown key {unknown[0]!r} in {where}; valid keys: {', '.join(sorted(fields))}")
    kwargs = {name: coerce(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise UserError(f"{where} is missing {missing[0]!r} ({type_name(hints[missing[0]])})")
    check_values(cls, kwargs, names or (lambda name: f"{where}.{name}"))
    obj = cls(**kwargs)
    return obj


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning a syntax error into a one-line message."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} does not exist; give the path of a .toml file")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (paths become strings, tuples lists)."""
    return to_json(obj)


# --------------------------------------------------------------------------------------------- argparse


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    skip: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
    flags: dict[str, tuple[str, ...]] | None = None,
    positional: tuple[str, ...] = (),
    metavars: dict[str, str] | None = None,
) -> None:
    """Add one option per field of ``cls`` with its docstring as help; lists become repeatable options; the
    fields named in ``positional`` become positional arguments (metavar: the field's name in capitals)."""
    docs, hints = field_docs(cls), _hints(cls)
    flags = flags or {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp, _ = _strip_optional(hints[f.name])
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        is_required = f.name in required or (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        help_text = docs.get(f.name, "").replace("%", "%%")  # argparse reads % as a format directive
        if f.name in positional:
            parser.add_argument(f.name, type=Path if tp is Path else str, metavar=f.name.upper(), help=help_text)
            continue
        if not is_required and default not in (None, [], ()):
            help_text += f" (default: {default})"
        names = tuple(dict.fromkeys((*flags.get(f.name, ()), _option(f.name))))
        kw: dict[str, Any] = {"dest": f.name, "help": help_text, "default": argparse.SUPPRESS}
        if metavars and f.name in metavars:
            kw["metavar"] = metavars[f.name]
        origin = get_origin(tp)
        if tp is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kw)
            continue
        if origin is Literal:
            kw["choices"] = list(get_args(tp))
            kw["type"] = type(get_args(tp)[0])
        elif origin in (list, tuple):
            inner = get_args(tp)[0] if get_args(tp) else str
            kw["action"] = "append"
            if "repeat" not in help_text.lower():
                kw["help"] = help_text + " Repeat the option for several values."
            kw["type"] = inner if inner in (int, float, str) else str
            kw.setdefault("metavar", f.name.upper().rstrip("S"))
        elif tp in (int, float, str):
            kw["type"] = tp
        elif tp is Path:
            kw["type"] = Path
        kw["required"] = is_required
        parser.add_argument(*names, **kw)


def from_namespace(cls: type[T], ns: argparse.Namespace, **overrides: Any) -> T:
    """Build ``cls`` from parsed options; options not given keep the dataclass defaults."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    given = {k: v for k, v in vars(ns).items() if k in names}
    given.update(overrides)
    check_values(cls, given, _option)
    return cls(**given)

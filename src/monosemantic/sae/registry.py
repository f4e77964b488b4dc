"""The one architecture registry: each SAE class under its name, with its training options (``cls.Options``) and
what a sweep may vary (``cls.sweep_axes``) declared on the class itself.

An architecture is one module in ``monosemantic.sae.architectures`` holding its class and its ``Options``; the class
is decorated with :func:`register`, which checks that the pair fits together. Nothing else needs editing: the
package imports every module there, and ``monosemantic train --help``, the TOML keys and the option checks all read
the registry.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from monosemantic.errors import unknown_choice
from monosemantic.sae.types import ArchOptions

if TYPE_CHECKING:
    from monosemantic.sae.core import SAE

S = TypeVar("S", bound="type[SAE]")

_REGISTRY: dict[str, type[SAE]] = {}

SPARSITY_AXES = {"k": "k", "coefficient": "l1_coefficient"}
"""The sweep axis that sets each kind of sparsity (``SAE.sparsity_param``): the ``TrainConfig`` field it lists."""


def register(name: str) -> Callable[[S], S]:
    """Class decorator adding an architecture (and with it its ``Options``) to the registry under ``name``."""

    def deco(cls: S) -> S:
        if name in _REGISTRY:
            raise ValueError(f"SAE architecture {name!r} is registered twice ({_REGISTRY[name].__qualname__} and "
                             f"{cls.__qualname__}); give the new one another name")
        _check_pair(cls)
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _check_pair(cls: type[SAE]) -> None:
    """The class's options are a frozen ArchOptions dataclass, and its sweep axes are settings it takes."""
    opts = cls.Options
    if not (isinstance(opts, type) and issubclass(opts, ArchOptions) and dataclasses.is_dataclass(opts)):
        raise TypeError(f"{cls.__qualname__}.Options must be a dataclass subclassing ArchOptions")
    own = {f.name for f in dataclasses.fields(opts)}
    sparsity = SPARSITY_AXES.get(cls.sparsity_param)
    for axis in cls.sweep_axes:
        if axis not in own and axis != sparsity:
            raise TypeError(f"{cls.__qualname__}.sweep_axes names {axis!r}, which is neither its sparsity setting "
                            f"nor a field of {opts.__name__}")
    if sparsity is not None and sparsity not in cls.sweep_axes:
        raise TypeError(f"{cls.__qualname__}.sweep_axes must include {sparsity!r} (its sparsity_param is "
                        f"{cls.sparsity_param!r})")


def _discover() -> None:
    # the package imports every architecture module (each registers itself); a no-op after the first call
    importlib.import_module("monosemantic.sae.architectures")


def registered_architectures() -> dict[str, type[SAE]]:
    """Every registered architecture, by name, in the order ``train --help`` lists them."""
    _discover()
    return dict(_REGISTRY)


def get_architecture(name: str) -> type[SAE]:
    """The registered class of architecture ``name``, or a one-line error naming every one there is."""
    archs = registered_architectures()
    if name not in archs:
        raise unknown_choice("SAE architecture", name, archs)
    return archs[name]


def registered_options() -> dict[str, type[ArchOptions]]:
    """Every architecture's options class, by architecture name."""
    return {name: cls.Options for name, cls in registered_architectures().items()}


def option_owners() -> dict[str, list[str]]:
    """Each option name and the architectures that take it."""
    owners: dict[str, list[str]] = {}
    for arch, opts in registered_options().items():
        for f in dataclasses.fields(opts):
            owners.setdefault(f.name, []).append(arch)
    return owners

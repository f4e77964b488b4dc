"""One module per SAE architecture, holding its class and its ``Options``; each class registers itself with
:func:`monosemantic.sae.registry.register`.

Importing the package imports every module here, the ones in ``ORDER`` first: the registry keeps that order, and it
is the order ``monosemantic train --help`` groups the architectures' options in and messages name them in. A new
module needs no entry; it registers after these.
"""

from __future__ import annotations

import importlib
import pkgutil

ORDER = ("topk", "batchtopk", "matryoshka", "relu", "jumprelu", "tied", "gsae")

for _name in (*ORDER, *sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in ORDER)):
    importlib.import_module(f"{__name__}.{_name}")

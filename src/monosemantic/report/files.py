"""Writing report files without ever leaving half of one: a temporary name in the same folder, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from monosemantic.outputs import make_readable


def temp_beside(path: Path, suffix: str = ".tmp") -> Path:
    """An empty temporary file in ``path``'s folder (so the final rename stays on one file system)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the usual permissions (mkstemp makes it private) and rename it over ``path``."""
    make_readable(tmp)
    os.replace(tmp, path)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically."""
    tmp = temp_beside(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

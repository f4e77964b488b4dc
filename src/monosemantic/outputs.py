"""Output folders: refuse to replace what is not ours, swap new results in whole, and leave them readable.

Every command that writes a folder goes through here, so ``--overwrite`` means the same everywhere: it replaces
an earlier result of the same kind (recognised by its marker file) and nothing else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from monosemantic.errors import UserError


def check_out(
    path: str | Path, *, what: str, marker: str | None, overwrite: bool, inputs: Iterable[str | Path] = ()
) -> None:
    """Fail unless ``path`` can receive a new ``what`` folder: it is absent or empty, or ``overwrite`` is set and
    it holds an earlier ``what`` (it has ``marker``); it must not be, hold or sit inside one of ``inputs``.
    ``marker=None`` is for a folder the caller only adds to (a sweep's parent): any folder will do."""
    out = Path(path).resolve()
    for src in inputs:
        s = Path(src).resolve()
        if out == s or s.is_relative_to(out) or out.is_relative_to(s):
            raise UserError(f"--out {path} would overwrite the input {src}; choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserError(f"{path} is a file; --out needs a folder path")
    if marker is not None and out.is_dir() and any(out.iterdir()):
        # name the way out that works: --overwrite cannot help with a folder that is not an earlier result
        if not (out / marker).exists():
            raise UserError(f"{path} already holds files and is not {what} (it has no {marker}); choose another --out")
        if not overwrite:
            raise UserError(f"{path} already exists; choose another --out or pass --overwrite to replace it")


@contextmanager
def staged(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder of ``final``; when the block ends without error, make it readable and
    swap it into place (an earlier folder is replaced only then). On error the temporary folder is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        publish(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` folder to ``final``, replacing what was there only at the last moment."""
    make_readable(tmp)
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def make_readable(root: Path) -> None:
    """Give ``root`` (a folder and everything in it, or one file) the modes the user's umask asks for.
    ``mkdtemp`` makes folders 0700 and safetensors writes files 0600, which would hide results from colleagues
    on a shared machine."""
    mask = _umask()
    dmode, fmode = 0o777 & ~mask, 0o666 & ~mask
    if not Path(root).is_dir():
        os.chmod(root, fmode)
        return
    os.chmod(root, dmode)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), dmode)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, fmode)


def _umask() -> int:
    # reading it from /proc avoids os.umask's set-and-restore, which races with threads creating files
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

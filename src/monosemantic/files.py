"""Every file and folder the project writes goes through here: refuse to replace what is not ours, write under a
temporary name beside the target and rename it into place, and leave the result readable.

Because every command uses these functions, ``--overwrite`` means the same everywhere: it replaces an earlier
result of the same kind (recognised by its marker file) and nothing else; and no reader ever sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
        # a folder that is only added to may hold the input (a sweep beside its store); a replaced one may not
        holds = s.is_relative_to(out) and marker is not None
        if out == s or holds or out.is_relative_to(s):
            raise UserError(f"--out {path} would overwrite the input {src}; choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserError(f"{path} is a file; --out needs a folder path")
    _check_writable(out, path)
    if marker is not None and out.is_dir() and any(out.iterdir()):
        # name the way out that works: --overwrite cannot help with a folder that is not an earlier result
        if not (out / marker).exists():
            raise UserError(f"{path} already holds files and is not {what} (it has no {marker}); choose another --out")
        if not overwrite:
            raise UserError(f"{path} already exists; choose another --out or pass --overwrite to replace it")


def _check_writable(out: Path, given: str | Path) -> None:
    """Fail now, not after hours of work, if ``out`` could not be created or written."""
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"--out {given}: {probe} is a file, so no folder can be made there; choose another --out")
    if not os.access(probe, os.W_OK | os.X_OK) or (probe == out and not os.access(out.parent, os.W_OK | os.X_OK)):
        raise UserError(f"--out {given}: no permission to write in {probe if probe != out else out.parent}; "
                        "choose a folder you can write to")


@contextmanager
def staged(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder of ``final``; when the block ends without error, make it readable and
    swap it into place (an earlier folder is replaced only then). On error the temporary folder is removed."""
    final = Path(final).resolve()  # "." has no name to make a sibling of; a symlink is replaced at its target
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        publish_folder(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish_folder(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` folder to ``final``, replacing what was there only at the last moment."""
    final = Path(final).resolve()
    make_readable(tmp)
    if not final.exists():
        os.replace(tmp, final)
        return
    # a fresh empty folder as the backup name: a rename onto an empty folder succeeds, and no name is reused
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    os.replace(final, old)
    try:
        os.replace(tmp, final)
    except OSError:
        os.replace(old, final)  # put the earlier result back; the caller still holds tmp
        raise
    shutil.rmtree(old, ignore_errors=True)


def make_readable(root: Path) -> None:
    """Give ``root`` (a folder and everything in it, or one file) the modes the user's umask asks for.
    ``mkdtemp`` makes folders 0700 and safetensors writes files 0600, which would hide results from colleagues
    on a shared machine."""
    mask = _umask()
    dmode, fmode = 0o777 & ~mask, 0o666 & ~mask

    def fix(p: str, mode: int) -> None:
        if not os.path.islink(p):
            os.chmod(p, (os.stat(p).st_mode & 0o7000) | mode)  # keep setgid, so shared-group folders stay so

    if not Path(root).is_dir():
        fix(str(root), fmode)
        return
    fix(str(root), dmode)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            fix(os.path.join(dirpath, d), dmode)
        for f in filenames:
            fix(os.path.join(dirpath, f), fmode)


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


def temp_beside(path: Path, suffix: str = ".tmp") -> Path:
    """An empty temporary file in ``path``'s folder (so the final rename stays on one file system)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def publish_file(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the usual permissions (mkstemp makes it private) and rename it over ``path``."""
    make_readable(tmp)
    os.replace(tmp, path)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically."""
    tmp = temp_beside(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        publish_file(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: Any, *, indent: int | None = 1, allow_nan: bool = True) -> None:
    """``data`` as JSON at ``path``, atomically: a reader never sees half a file."""
    write_atomic(path, json.dumps(data, indent=indent, allow_nan=allow_nan))


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV text, one column per key in order of first appearance."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()

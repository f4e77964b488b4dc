"""The user's own data: text, JSONL and CSV files, image folders, and Hugging Face datasets saved to disk."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monosemantic.errors import UserError
from monosemantic.extras import require
from monosemantic.sources.datasets.dataset import Dataset, text_dataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def looks_like_path(spec: str) -> bool:
    """Whether ``spec`` was meant as a file or folder rather than a bundled name: it has a folder separator or
    a file suffix (bundled names have neither)."""
    return os.sep in spec or "/" in spec or Path(spec).suffix != ""


def load_file(path: Path, text_field: str = "text", label_columns: Sequence[str] = ()) -> Dataset:
    """The data at an existing ``path``: a .txt file (one item per line), a .jsonl or .csv file (the
    ``text_field`` column, labels from ``label_columns``), a saved Hugging Face dataset or a folder of images."""
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():
            return hf_disk(path, text_field, label_columns)
        return image_folder(path)
    if path.suffix == ".txt":
        lines = [ln.strip() for ln in path.read_text(errors="ignore").splitlines() if ln.strip()]
        return text_dataset(path.name, lines, None, [], str(path))
    if path.suffix in (".jsonl", ".csv"):
        return table_dataset(path.name, _read_rows(path), text_field, label_columns, str(path))
    raise UserError(f"cannot read {str(path)!r}; give a .txt, .jsonl or .csv file, or a folder of images")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a .csv file (as strings) or a .jsonl file (one JSON object per line)."""
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8", errors="ignore") as fh:
            return list(csv.DictReader(fh))
    rows = []
    for n, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise UserError(f"{path}:{n}: not a JSON object; each line of a .jsonl file must be one") from None
    return rows


def table_dataset(
    name: str, rows: Sequence[dict[str, Any]], text_field: str, label_columns: Sequence[str], source: str
) -> Dataset:
    """Texts from the ``text_field`` column; one label column gives classes (sorted values), several give
    binary concepts (1, true, yes, y or t count as 1)."""
    if not rows:
        raise UserError(f"{source} holds no rows")
    if text_field not in rows[0]:
        raise UserError(f"{source} has no column {text_field!r}; columns: {', '.join(rows[0])} (set --text-field)")
    texts = [str(r.get(text_field, "")) for r in rows]
    for col in label_columns:
        if col not in rows[0]:
            raise UserError(f"{source} has no label column {col!r}; columns: {', '.join(rows[0])}")
    if not label_columns:
        return text_dataset(name, texts, None, [], source)
    if len(label_columns) == 1:
        values = [str(r.get(label_columns[0], "")) for r in rows]
        names = sorted(set(values))
        lookup = {v: i for i, v in enumerate(names)}
        return text_dataset(name, texts, np.array([lookup[v] for v in values], dtype=np.int64), names, source)
    binary = np.array([[_truthy(r.get(c)) for c in label_columns] for r in rows], dtype=np.int64)
    return text_dataset(name, texts, binary, list(label_columns), source)


def _truthy(v: Any) -> int:
    return int(str(v).strip().lower() in ("1", "1.0", "true", "yes", "y", "t"))


def image_folder(path: Path) -> Dataset:
    """The images under ``path``: one subfolder per class (labelled by the sorted folder names), or the images
    directly inside it (no labels)."""
    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    if classes:
        files = [
            (f, y)
            for y, c in enumerate(classes)
            for f in sorted((path / c).rglob("*"))
            if f.suffix.lower() in IMAGE_SUFFIXES
        ]
    else:
        files = [(f, -1) for f in sorted(path.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {str(path)!r}")
    paths = [str(f.resolve()) for f, _ in files]
    labels = np.array([y for _, y in files], dtype=np.int64) if classes else None
    return Dataset(
        name=path.name,
        modality="image",
        n=len(paths),
        load=lambda a, b: [read_image(p) for p in paths[a:b]],
        labels=labels,
        label_names=classes,
        record=lambda i: {"kind": "image", "ref": {"path": paths[i]}},
        source=str(path),
    )


def hf_disk(path: Path, text_field: str, label_columns: Sequence[str]) -> Dataset:
    """A Hugging Face dataset saved with ``save_to_disk`` (its first split, for a DatasetDict): images when it has
    an ``image`` column and no ``text_field``, else a table."""
    hf_datasets = require("datasets", "reading a saved Hugging Face dataset")
    ds = hf_datasets.load_from_disk(str(path))
    if isinstance(ds, hf_datasets.DatasetDict):
        ds = ds[next(iter(ds))]
    if "image" in ds.column_names and text_field not in ds.column_names:
        labels = np.array(ds[label_columns[0]], dtype=np.int64) if label_columns else None
        return Dataset(
            name=path.name,
            modality="image",
            n=len(ds),
            load=lambda a, b: [np.asarray(x.convert("RGB")) for x in ds[a:b]["image"]],
            labels=labels,
            label_names=[],
            record=lambda i: {"kind": "image", "ref": {"hf_disk": str(path), "index": i}},
            source=str(path),
        )
    return table_dataset(path.name, list(ds), text_field, label_columns, str(path))


def read_image(path: str) -> np.ndarray:
    """RGB pixels of an image file; a file PIL cannot decode is a one-line error naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        why = str(exc).split(":")[0] if isinstance(exc, UnidentifiedImageError) else str(exc) or type(exc).__name__
        raise UserError(f"cannot read image {path} ({why}); remove or replace that file and run again") from None


def file_fingerprint(path: Path) -> dict[str, int]:
    """A cheap fingerprint of an existing file or folder, to notice that it changed after extraction.

    A file gives its size and mtime_ns; a folder gives the count and total size of its files and the newest
    mtime_ns of its files and subfolders (a rename inside a folder changes only the folder's mtime).
    """
    st = path.stat()
    if not path.is_dir():
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    files, size, newest = 0, 0, st.st_mtime_ns
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # hidden: caches and temporary writes
        for name in dirnames:
            newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime_ns)
        for name in filenames:
            if name.startswith("."):
                continue
            try:
                fst = os.stat(os.path.join(dirpath, name))
            except OSError:  # a dangling link or a file removed meanwhile: no data to read there either
                continue
            files, size, newest = files + 1, size + fst.st_size, max(newest, fst.st_mtime_ns)
    return {"files": files, "size": size, "mtime_ns": newest}

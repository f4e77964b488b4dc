"""Datasets: named bundled sets, and user data (text / JSONL / CSV files, image folders, local HF datasets).

``load_dataset(spec)`` takes a name from ``DATASETS`` or a path. The bundled sets are in ``bundled`` (topic and
digit classification), ``tweets``, ``shakespeare`` and ``pii`` (the three steering concepts; ``HELDOUT`` gives
their held-out parts); user files are read by ``files``; ``facts`` holds the relational facts of ``knowledge``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from monosemantic.errors import UserError, unknown_choice
from monosemantic.sources.datasets.bundled import bbc_news, digits, fashion_mnist, lfw_faces, mnist_5k
from monosemantic.sources.datasets.dataset import Dataset, ImageRef, ItemRecord
from monosemantic.sources.datasets.files import file_fingerprint, load_file, looks_like_path, read_image
from monosemantic.sources.datasets.pii import PII_HELDOUT, pii_synth
from monosemantic.sources.datasets.shakespeare import shakespeare_style
from monosemantic.sources.datasets.tweets import tweets_attitude

__all__ = [
    "DATASETS",
    "HELDOUT",
    "Dataset",
    "DatasetEntry",
    "ImageRef",
    "ItemRecord",
    "data_ref",
    "fingerprint",
    "heldout_records",
    "heldout_texts",
    "image_ref",
    "load_dataset",
    "load_image",
    "looks_like_path",
    "read_image",
]


@dataclass(frozen=True)
class DatasetEntry:
    """A named dataset of the registry."""

    description: str
    """One line: size, labels and modality."""
    load: Callable[[], Dataset]


DATASETS: dict[str, DatasetEntry] = {
    "bbc-news": DatasetEntry("2,225 BBC news articles, 5 topic labels (text)", bbc_news),
    "mnist-5k": DatasetEntry("5,000 MNIST digits, 10 labels (image)", mnist_5k),
    "digits": DatasetEntry("1,797 scikit-learn 8x8 digits, 10 labels (image)", digits),
    "lfw-faces": DatasetEntry("200 25x25 crops: 100 faces, 100 non-faces (image)", lfw_faces),
    "fashion-mnist": DatasetEntry("70,000 Fashion-MNIST images, 10 labels, needs the Debian package (image)",
                                  fashion_mnist),
    "tweets-attitude": DatasetEntry("4,394 tweets, positive vs negative, 1 binary label (text)",
                                    lambda: tweets_attitude("train")),
    "shakespeare-style": DatasetEntry(
        "138,700 Shakespeare lines, First Folio vs modern spelling, 1 binary label (text)",
        lambda: shakespeare_style("train")),
    "pii-synth": DatasetEntry("4,000 synthetic sentences, 8 binary PII labels and entity spans (text)", pii_synth),
}
"""Every bundled dataset by name."""

HELDOUT: dict[str, Callable[[], Dataset]] = {
    "tweets-attitude": lambda: tweets_attitude("heldout"),
    "shakespeare-style": lambda: shakespeare_style("heldout"),
    "pii-synth": lambda: pii_synth(**PII_HELDOUT),
}
"""The held-out parts of the steering datasets (prompts and classifiers), which their SAEs never see."""


@cache
def load_dataset(
    spec: str, text_field: str = "text", label_columns: tuple[str, ...] = (), *, recorded_in: str | Path | None = None
) -> Dataset:
    """A named dataset, or user data at a path (.txt, .jsonl, .csv, an image folder, a saved HF dataset).

    ``recorded_in`` names the store that recorded ``spec``, for a message that says the data has moved since.
    """
    if spec in DATASETS:
        return DATASETS[spec].load()
    path = Path(spec)
    if not path.exists():
        raise _missing_data(spec, recorded_in if looks_like_path(spec) else None)
    return load_file(path, text_field, label_columns)


def image_ref(record: ItemRecord) -> ImageRef:
    """The image reference in a store's item record (a one-line error for an item that holds no image)."""
    ref = record.get("ref")
    if ref is None:
        raise UserError(f"the store's item {record} holds no image reference; this needs a store of an image data "
                        "set (re-extract it from images)")
    return ref


def load_image(ref: ImageRef) -> np.ndarray:
    """The pixels behind an item reference written into a store: uint8 [H, W, 3]."""
    if "path" in ref:
        if not os.path.isfile(ref["path"]):
            raise UserError(
                f"image {ref['path']} recorded in the store no longer exists; put it back, or re-extract the store"
            )
        return read_image(ref["path"])
    name, index = ref.get("hf_disk", ref.get("dataset")), ref.get("index")
    if name is None or index is None:
        raise UserError(f"the image reference {ref} recorded in the store names no file and no dataset row; "
                        "re-extract the store")
    return load_dataset(name).load(index, index + 1)[0]


def data_ref(spec: str) -> str:
    """What a store records for ``spec``: a bundled name as is, a local file or folder as an absolute path, so
    that later stages find the data again from any working directory."""
    if spec in DATASETS or not Path(spec).exists():
        return spec
    return os.path.abspath(spec)


def fingerprint(ref: str) -> dict[str, int] | None:
    """A cheap fingerprint of local data (see ``files.file_fingerprint``), to notice that it changed after
    extraction; None for a bundled set."""
    if ref in DATASETS:
        return None
    path = Path(ref)
    if not path.exists():
        raise _missing_data(ref)
    return file_fingerprint(path)


def heldout_texts(name: str) -> tuple[list[str], np.ndarray]:
    """The held-out texts of a steering dataset and their labels ([N, 1], or [N, 8] for pii-synth)."""
    data = _heldout(name)
    assert data.labels is not None
    return list(data.load(0, data.n)), data.labels.copy()


def heldout_records(name: str) -> list[ItemRecord]:
    """The JSON records of a held-out part (for shakespeare-style they carry the play)."""
    data = _heldout(name)
    return [data.item_record(i) for i in range(data.n)]


def _heldout(name: str) -> Dataset:
    if name not in HELDOUT:
        raise unknown_choice("steering dataset", name, HELDOUT)
    return HELDOUT[name]()


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

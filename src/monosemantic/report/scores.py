"""Reading a score folder (``monosemantic score``'s output): the summaries in ``scores.json`` and the top
activations in ``top.safetensors``. The score experiment writes these files; the report, the study harness and
the namer read them back through here."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load_file

from monosemantic.results import JSONDict

SCORES_NAME = "scores.json"
UNITS_NAME = "units.csv"
TOPS_NAME = "top.safetensors"
MIN_ITEMS_FOR_CARD = 16
"""A unit gets a feature card only if it fired on at least this many items."""


@dataclass(frozen=True)
class ScoreFile:
    """``scores.json`` read back: the layer that was scored, and one summary per unit set (neurons, each SAE; see
    ``monosemantic.experiments.score.ScoreResult``, which writes it)."""

    store: str
    """The activation store that was scored (absolute path)."""
    hook: str
    model: str | None
    dataset: str | None
    n_items: int
    n_rows: int
    tokens: str
    pool: str
    encoder: str
    """The external encoder MS was measured with."""
    label_names: list[str]
    unit_sets: list[JSONDict]
    """Per unit set: its id, kind, width and the summaries of every score (the JSON objects as written)."""

    @classmethod
    def from_json(cls, data: object) -> ScoreFile:
        """Raises KeyError or TypeError for a file that lacks a field (each caller words its own message)."""
        if not isinstance(data, dict) or not isinstance(data.get("unit_sets"), list):
            raise TypeError("scores.json holds no unit_sets list")
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def load_scores(path: Path) -> ScoreFile:
    """The ``scores.json`` of score folder ``path``."""
    return ScoreFile.from_json(json.loads((Path(path) / SCORES_NAME).read_text()))


def load_tops(path: Path) -> dict[str, torch.Tensor]:
    """``top.safetensors`` of a score folder: ``SET/top_values``, ``SET/top_items``, ``SET/weak_values`` and
    ``SET/weak_items`` of every unit set, one row per unit."""
    return load_file(str(Path(path) / TOPS_NAME))

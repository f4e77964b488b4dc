"""Reading a score folder (``monosemantic score``'s output): the summaries in ``scores.json`` and the top
activations in ``top.safetensors``. The score experiment writes these files; the report, the study harness and
the namer read them back through here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

SCORES_NAME = "scores.json"
UNITS_NAME = "units.csv"
TOPS_NAME = "top.safetensors"
MIN_ITEMS_FOR_CARD = 16
"""A unit gets a feature card only if it fired on at least this many items."""


def load_scores(path: Path) -> dict[str, Any]:
    """``scores.json`` of a score folder: the summaries of every unit set (see
    ``monosemantic.experiments.score.ScoreResult``)."""
    return json.loads((Path(path) / SCORES_NAME).read_text())


def load_tops(path: Path) -> dict[str, torch.Tensor]:
    """``top.safetensors`` of a score folder: ``SET/top_values``, ``SET/top_items``, ``SET/weak_values`` and
    ``SET/weak_items`` of every unit set, one row per unit."""
    return load_file(str(Path(path) / TOPS_NAME))

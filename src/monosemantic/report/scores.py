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
TOPS_NAME = "top.safetensors"
MIN_ITEMS_FOR_CARD = 16
"""A unit gets a feature card only if it fired on at least this many items."""


def load_scores(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / SCORES_NAME).read_text())


def load_tops(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(path) / TOPS_NAME))

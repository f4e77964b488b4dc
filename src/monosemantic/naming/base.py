"""The two roles of automated naming (Renzulli et al., "MedSAE", arXiv 2510.26411, Sec. 3): a ``Namer`` reads the
inputs a latent fires on and writes a short concept name and a one-sentence description; a ``Judge`` then decides,
for inputs it has not seen, whether each matches that name. Any model can back either role.
"""

from __future__ import annotations

import itertools
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monosemantic.results import JSONDict, to_json


@dataclass(frozen=True)
class Example:
    """One input shown to a namer or a judge: a text snippet or an image, with its dataset label."""

    item: int
    text: str | None = None
    """The snippet (text stores); for a namer the peak token may be marked «like this»."""
    image: Any = None
    """HxW[xC] uint8 array (image stores)."""
    label: str | None = None
    value: float = 0.0
    """The latent's activation on the item (max over its tokens)."""


@dataclass(frozen=True)
class Naming:
    """A namer's answer: the parsed name and description, whether parsing succeeded, and the raw text."""

    concept: str
    description: str
    ok: bool
    raw: str = ""
    extra: dict[str, Any] | None = None
    """Namer-specific facts (the label namer's label share)."""


FAILED = Naming("", "", False)


@dataclass(frozen=True)
class RoleInfo:
    """What names.json records about a namer or a judge: the settings that change its answers. Settings a role
    does not have are None and left out of the JSON."""

    id: str
    calibrated: bool | None = None
    """A judge's: whether it fits its cut-off per latent."""
    model: str | None = None
    """The model behind it (a package version stands for bundled weights)."""
    decoding: str | None = None
    max_new_tokens: int | None = None
    rule: str | None = None
    """A judge's: how a score becomes a decision."""
    system: str | None = None
    task: str | None = None
    """The prompt template."""
    demo: tuple[str, str] | None = None
    """A worked exchange shown before the real question."""

    def to_json(self) -> JSONDict:
        return {k: v for k, v in to_json(self).items() if v is not None}


class Namer(ABC):
    """Writes a concept name and a description from the examples a latent fires on."""

    id: str = "namer"

    @abstractmethod
    def name_many(self, examples: Sequence[Sequence[Example]]) -> list[Naming]:
        """One ``Naming`` per latent (same order); batched, because models are faster on many prompts at once.
        Must never raise on unusable model output: return ``Naming(ok=False)`` instead."""

    def name(self, examples: Sequence[Example]) -> Naming:
        """Name one latent from its examples."""
        return self.name_many([examples])[0]

    def describe(self) -> RoleInfo:
        """What names.json records about this namer (the settings that change its answers)."""
        return RoleInfo(self.id)


class Judge(ABC):
    """Scores how well each example matches a name; ``classify`` turns the scores into 0/1 decisions.

    ``calibrated`` judges (a similarity with no natural cut-off) fit their threshold per latent on calibration
    examples whose truth is known and which are disjoint from the examples judged; the others use ``threshold``.
    """

    id: str = "judge"
    threshold: float = 0.0
    calibrated: bool = False
    natural_threshold: float | None = None
    """A calibrated judge's own cut-off (P(Yes) = P(No)), also scored, so both decisions are on record."""

    @abstractmethod
    def scores(self, concept: str, description: str, examples: Sequence[Example]) -> list[float]:
        """Higher means a better match; one score per example."""

    def classify(self, concept: str, description: str, examples: Sequence[Example],
                 calibration: tuple[Sequence[Example], Sequence[int]] | None = None) -> tuple[list[int], list[float],
                                                                                             float]:
        """(0/1 decisions, scores, threshold used). An empty concept (a name that could not be parsed) matches
        nothing: all zeros, as the paper counts a parse failure."""
        if not concept:
            return [0] * len(examples), [0.0] * len(examples), float("inf")
        s = self.scores(concept, description, examples)
        t = self.threshold
        if self.calibrated and calibration is not None and len(calibration[0]):
            t = fit_threshold(self.scores(concept, description, calibration[0]), calibration[1])
        return [int(v > t) for v in s], s, t

    def describe(self) -> RoleInfo:
        """What to record about this judge in names.json."""
        return RoleInfo(self.id, calibrated=self.calibrated)


def fit_threshold(scores: Sequence[float], truth: Sequence[int]) -> float:
    """The cut-off maximising balanced accuracy (Youden's J) on calibration scores: midway between two adjacent
    distinct scores, so a score equal to a calibration score is never on the edge. Ties break towards the middle
    of the best run of cut-offs; +inf (nothing matches) when no cut-off does better than chance."""
    pairs = sorted(zip(scores, truth, strict=True))
    n_pos = sum(1 for _, y in pairs if y)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        return pairs[len(pairs) // 2][0] if pairs else 0.0
    values = sorted({s for s, _ in pairs})
    cuts = [values[0] - 1.0] + [(a + b) / 2 for a, b in itertools.pairwise(values)]
    best: list[float] = []
    best_j = -2.0
    for c in cuts:
        tp = sum(1 for s, y in pairs if y and s > c)
        tn = sum(1 for s, y in pairs if not y and s <= c)
        j = tp / n_pos + tn / n_neg - 1
        if j > best_j + 1e-12:
            best_j, best = j, [c]
        elif abs(j - best_j) <= 1e-12:
            best.append(c)
    if best_j <= 0:  # no cut beats chance: the name says nothing about these examples, so nothing matches it
        return math.inf
    return best[len(best) // 2]


_NAME = re.compile(r"name\s*[:\-]\s*(?P<name>[^\n]+?)\s*(?:\n+|\s{2,}|(?=description))\s*description\s*[:\-]\s*"
                   r"(?P<desc>.+)", re.IGNORECASE | re.DOTALL)
_JSON_NAME = re.compile(r'"concept"\s*:\s*"(?P<name>[^"]+)"\s*,\s*"description"\s*:\s*"(?P<desc>[^"]+)"', re.DOTALL)
MAX_NAME_WORDS = 8


def parse_naming(raw: str) -> Naming:
    """Parse ``Name: ...`` / ``Description: ...`` (or the paper's JSON with ``concept`` and ``description``).

    A name must be 1–8 words; the description is cut at its first sentence. Anything else is a parse failure
    (``ok=False``), never an exception."""
    text = raw if isinstance(raw, str) else ""
    m = _NAME.search(text) or _JSON_NAME.search(text)
    if m is None:
        return Naming("", "", False, text)
    name = m.group("name").strip().strip("\"'*`.:;,").strip()
    desc = " ".join(m.group("desc").split())
    # a small model keeps writing after its answer: keep the first sentence (or line) of the description
    end = re.search(r"(?<=[.!?])\s|\n", m.group("desc").strip())
    if end is not None:
        desc = " ".join(m.group("desc").strip()[: end.start()].split())
    desc = desc.strip("\"'*` ")
    words = name.split()
    if not words or len(words) > MAX_NAME_WORDS or not desc or not re.search(r"\w", name):
        return Naming("", "", False, text)
    return Naming(name, desc, True, text)

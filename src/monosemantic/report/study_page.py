"""The blind pairwise study page: one self-contained HTML file that shows pairs of unit cards (top inputs only, no
scores, sides shuffled), records which one the participant finds more coherent, and downloads the answers as the
pairs.csv that `monosemantic study agree` reads. Answers survive a reload (localStorage).

The markup is ``templates/study.html.j2``, its style and script ``study.css`` and ``study.js``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monosemantic.report.cards import ImageClasses, snippets, thumbs
from monosemantic.report.data import Card
from monosemantic.report.templating import asset, render, script_json


@dataclass(frozen=True)
class StudyPair:
    """Two units shown side by side."""

    x: str
    """The first unit, ``SET/ID``."""
    y: str
    swap: bool
    """Show ``x`` on the right."""
    cards: tuple[Card, Card]
    """The cards of ``x`` and ``y``."""


def study_html(pairs: Sequence[StudyPair], *, modality: str, title: str) -> str:
    """The study page of ``pairs`` (the top examples of their cards: images or highlighted text)."""
    images = ImageClasses()

    def examples(card: Card) -> list[Any]:
        top = card.to_json()["top"]
        return thumbs(top, images) if modality == "image" else snippets(top)

    shown = []
    for p in pairs:
        left, right = (p.cards[1], p.cards[0]) if p.swap else p.cards
        shown.append({"left": examples(left), "right": examples(right)})
    meta = [{"x": p.x, "y": p.y, "swap": p.swap} for p in pairs]
    study = hashlib.sha256(script_json(meta).encode()).hexdigest()[:12]
    return render("study.html.j2", title=title, image=modality == "image", pairs=shown, meta=meta, study=study,
                  css=asset("report.css"), study_css=asset("study.css"), js=asset("study.js"), images=images.css())

"""Automated names (`monosemantic name`) on the report's tracks: on feature cards, in the features table (and its
search), and one line per track with the judges' mean F1 against the name-shuffled control.

Shown when the run folder, or a folder inside it (a score folder, ``names/``), holds ``names.json``; a names file
joins the track with the same model, hook and dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monosemantic.report.blocks import esc, fmt
from monosemantic.results import ResultKind

KIND = ResultKind(name="names", file="names.json", format="monosemantic-names", title="Feature names")


def find_names(run_dir: Path | str) -> list[dict[str, Any]]:
    """Every readable names.json in the run folder and up to two folders down, nearest first."""
    root = Path(run_dir)
    found = []
    for pattern in (KIND.file, f"*/{KIND.file}", f"*/*/{KIND.file}"):
        for path in sorted(root.glob(pattern)):
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                continue  # a write in progress or a backup
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if KIND.matches(data) and isinstance(data.get("latents"), list):
                found.append(data)
    return found


def attach_names(data: dict[str, Any], names: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of the report data whose cards and features carry ``name`` / ``description`` where a names file
    covers them, and whose tracks carry ``naming`` (the summaries) for ``names_note``."""
    if not names:
        return data
    tracks = []
    for track in data.get("tracks") or []:
        sets = {str(s.get("id")) for s in track.get("unit_sets") or []}
        mine = [n for n in names if all(n.get(k) == track.get(k) for k in ("model", "hook", "dataset")
                                        if track.get(k) is not None)]
        lookup: dict[tuple[str, str], dict[str, Any]] = {}
        for doc in mine:
            for row in doc["latents"]:
                key = (str(row.get("set")), str(row.get("latent")))
                if key[0] in sets and row.get("parse_ok") and row.get("name"):
                    lookup.setdefault(key, row)
        if not lookup:
            tracks.append(track)
            continue
        track = {**track, "naming": [d for d in mine if d.get("summary")]}
        track["cards"] = [_named(c, lookup) for c in track.get("cards") or []]
        track["features"] = [_named(f, lookup) for f in track.get("features") or []]
        tracks.append(track)
    return {**data, "tracks": tracks}


def _named(row: dict[str, Any], lookup: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    hit = lookup.get((str(row.get("set")), str(row.get("id"))))
    if hit is None:
        return row
    f1 = {j: r.get("f1") for j, r in (hit.get("judges") or {}).items() if isinstance(r, dict)}
    return {**row, "name": str(hit["name"]), "description": str(hit.get("description") or ""), "name_f1": f1}


def card_name(card: dict[str, Any]) -> str:
    """The name block of a feature card (empty when the unit has no name)."""
    if not card.get("name"):
        return ""
    scores = " · ".join(f"F1 ({j}) {fmt(v)}" for j, v in (card.get("name_f1") or {}).items())
    tip = f" title='automated name; {esc(scores)} on held-out snippets'" if scores else ""
    return (f"<div class=c-name{tip}><b>{esc(card['name'])}</b>"
            + (f" <span class=dim>{esc(card['description'])}</span>" if card.get("description") else "") + "</div>")


def names_note(track: dict[str, Any]) -> str:
    """One line per names file: who named how many latents, parse failures, and each judge's mean F1 for the names
    and for the shuffled control."""
    lines = []
    for doc in track.get("naming") or []:
        s = doc["summary"]
        sets = sorted({str(r.get("set")) for r in doc["latents"]})
        # names vs control over the same latents (those whose names parsed); failures count as 0 in "names"
        judged = "; ".join(
            f"judge {esc(j)}: mean F1 {fmt((v.get('names_parsed') or v.get('names') or {}).get('f1'))} vs "
            f"{fmt((v.get('control') or {}).get('f1'))} with shuffled names"
            for j, v in (s.get("judges") or {}).items()
        )
        lines.append(
            f"<p class=note>Automated names: {s.get('n_latents')} latents of {esc(', '.join(sets))} named by "
            f"{esc(s.get('namer'))} (parse failures {fmt(s.get('parse_failure_rate'), 1, pct=True)}); {judged}. "
            "Search the table by name.</p>"
        )
    return "".join(lines)

"""Automated names (`monosemantic name`) on the report's tracks: on feature cards, in the features table (and its
search), and one line per track with the judges' mean F1 against the name-shuffled control.

Shown when the run folder, or a folder inside it (a score folder, ``names/``), holds ``names.json``; a names file
joins the track with the same model, hook and dataset. Names are no section of their own (this module has no
``context``): the report attaches them to its tracks.
"""

from __future__ import annotations

import json
from pathlib import Path

from monosemantic.report.numbers import fmt
from monosemantic.results import JSONDict, ResultKind

KIND = ResultKind(name="names", file="names.json", format="monosemantic-names", title="Feature names")


def find_names(run_dir: Path | str) -> list[JSONDict]:
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


def attach_names(data: JSONDict, names: list[JSONDict]) -> JSONDict:
    """A copy of the report data whose cards and features carry ``name`` / ``description`` where a names file
    covers them, and whose tracks carry ``naming`` (the summaries) for ``naming_notes``."""
    if not names:
        return data
    tracks = []
    for track in data.get("tracks") or []:
        sets = {str(s.get("id")) for s in track.get("unit_sets") or []}
        mine = [n for n in names if all(n.get(k) == track.get(k) for k in ("model", "hook", "dataset")
                                        if track.get(k) is not None)]
        lookup: dict[tuple[str, str], JSONDict] = {}
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


def _named(row: JSONDict, lookup: dict[tuple[str, str], JSONDict]) -> JSONDict:
    hit = lookup.get((str(row.get("set")), str(row.get("id"))))
    if hit is None:
        return row
    f1 = {j: r.get("f1") for j, r in (hit.get("judges") or {}).items() if isinstance(r, dict)}
    return {**row, "name": str(hit["name"]), "description": str(hit.get("description") or ""), "name_f1": f1}


def naming_notes(track: JSONDict) -> list[JSONDict]:
    """One note per names file of a track: who named how many latents, parse failures, and each judge's mean F1
    for the names and for the shuffled control."""
    notes = []
    for doc in track.get("naming") or []:
        s = doc["summary"]
        # names vs control over the same latents (those whose names parsed); failures count as 0 in "names"
        judged = [
            f"judge {j}: mean F1 {fmt((v.get('names_parsed') or v.get('names') or {}).get('f1'))} vs "
            f"{fmt((v.get('control') or {}).get('f1'))} with shuffled names"
            for j, v in (s.get("judges") or {}).items()
        ]
        sets = ", ".join(sorted({str(r.get("set")) for r in doc["latents"]}))
        notes.append({"n_latents": s.get("n_latents"), "sets": sets, "namer": s.get("namer"),
                      "failures": fmt(s.get("parse_failure_rate"), 1, pct=True), "judged": judged})
    return notes

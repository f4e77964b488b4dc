"""Reading ``report_data.json``: the one file a run hands to the report.

The pipeline writes it after scoring; the renderer only reads it. Everything here turns a missing or malformed run
folder into a ``UserError`` that says which stage to run, so a user never sees a ``KeyError`` from the renderer.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from monosemantic.errors import UserError

FORMAT_VERSION = 1
"""Version of the ``report_data.json`` layout this renderer reads; the pipeline writes the same number."""

DATA_NAME = "report_data.json"
RUN_NAME = "run.json"
SCORES_NAME = "scores.json"
"""What a `monosemantic score` folder holds; such a folder is no run folder, and `report` cannot render it."""
DEFAULT_STAGES = ("extract", "train", "score")

_DONE_WORDS = {"done", "ok", "complete", "completed", "finished", "success", "succeeded"}

_TRACK_KEYS = ("name", "modality", "unit_sets")
_SET_KEYS = ("id", "kind", "width", "ms")
_FEATURE_KEYS = ("set", "id")
_CARD_KEYS = ("set", "id")


def load_report_data(run_dir: str | Path) -> dict[str, Any]:
    """The parsed, checked ``report_data.json`` of ``run_dir``; a ``UserError`` names the stage to run if absent."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"run folder {run_dir} does not exist; give the folder written by `monosemantic run CONFIG`")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file; give the run folder (the one holding {DATA_NAME})")
    path = run_dir / DATA_NAME
    if not path.is_file() and (run_dir / SCORES_NAME).is_file() and not (run_dir / RUN_NAME).is_file():
        # "no scores yet" would be false here: the scores exist, but come from `score` alone, with no run around them
        raise UserError(
            f"{run_dir} is a `monosemantic score` folder, not a run folder; `report` takes a folder written by "
            f"`monosemantic run CONFIG` (one with {RUN_NAME}); this folder's scores are summarised in {SCORES_NAME} "
            "and units.csv"
        )
    if not path.is_file():
        raise UserError(_missing_stage_message(run_dir))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason}); re-run the score stage to rewrite it") from exc
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            f"re-run `{_run_command(run_dir)}` to rewrite it"
        ) from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a {type(data).__name__}, not an object; re-run `{_run_command(run_dir)}`")
    _check_version(data, path, run_dir)
    check_report_data(data, where=str(path))
    return data


def _check_version(data: dict[str, Any], path: Path, run_dir: Path) -> None:
    version = data.get("format_version")
    if version == FORMAT_VERSION:
        return
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise UserError(
            f"{path} has format_version {version}, newer than this monosemantic reads ({FORMAT_VERSION}); "
            "upgrade monosemantic to render it"
        )
    shown = "none" if version is None else repr(version)
    raise UserError(
        f"{run_dir} is from an older format (report data format_version {shown}, this monosemantic reads "
        f"{FORMAT_VERSION}); re-run `{_run_command(run_dir)}` to regenerate it"
    )


def check_report_data(data: dict[str, Any], where: str = DATA_NAME) -> None:
    """Check the keys the renderer relies on; the message names the first missing or mistyped one."""
    tracks = data.get("tracks")
    if not isinstance(tracks, list):  # empty when a run has only stand-alone sections (steering tracks)
        raise UserError(f"{where}: 'tracks' must be a list; re-run the score stage")
    for t, track in enumerate(tracks):
        at = f"{where}: tracks[{t}]"
        _require(track, _TRACK_KEYS, at)
        if track["modality"] not in ("image", "text"):
            raise UserError(f"{at}.modality is {track['modality']!r}; expected 'image' or 'text'")
        sets = track["unit_sets"]
        if not isinstance(sets, list) or not sets:
            raise UserError(f"{at}.unit_sets must be a non-empty list")
        ids: set[str] = set()
        for s, unit_set in enumerate(sets):
            _require(unit_set, _SET_KEYS, f"{at}.unit_sets[{s}]")
            if not isinstance(unit_set["ms"], dict):
                raise UserError(f"{at}.unit_sets[{s}].ms must be an object with mean/std/best/worst/values")
            ids.add(str(unit_set["id"]))
        for key, required in (("features", _FEATURE_KEYS), ("cards", _CARD_KEYS)):
            rows = track.get(key, [])
            if not isinstance(rows, list):
                raise UserError(f"{at}.{key} must be a list")
            for r, row in enumerate(rows):
                _require(row, required, f"{at}.{key}[{r}]")
                if str(row["set"]) not in ids:
                    known = ", ".join(sorted(ids))
                    raise UserError(f"{at}.{key}[{r}].set {row['set']!r} is not a unit set of this track ({known})")


def _require(obj: Any, keys: tuple[str, ...], at: str) -> None:
    if not isinstance(obj, dict):
        raise UserError(f"{at} must be an object, not {type(obj).__name__}")
    for key in keys:
        if key not in obj:
            raise UserError(f"{at} has no {key!r}; re-run the score stage to rewrite the report data")


def _read_run_json(run_dir: Path) -> dict[str, Any]:
    try:
        run = json.loads((run_dir / RUN_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return run if isinstance(run, dict) else {}


def _run_command(run_dir: Path) -> str:
    config = _read_run_json(run_dir).get("config")
    return f"monosemantic run {config if isinstance(config, str) and config else 'CONFIG'}"


def _is_done(state: Any) -> bool:
    if isinstance(state, dict):
        state = state.get("done", state.get("status", False))
    if isinstance(state, str):
        return state.strip().lower() in _DONE_WORDS
    return bool(state)


def _missing_stage_message(run_dir: Path) -> str:
    run = _read_run_json(run_dir)
    command = _run_command(run_dir)
    stages = run.get("stages")
    if isinstance(stages, dict) and stages:
        names = [str(name) for name in stages]
        pending = [name for name, state in stages.items() if not _is_done(state)]
        if pending:
            first = pending[0]
            # Stage keys may also name a track or an SAE ("img/score", "img/train-topk"): find the command in them.
            alone = next((p for p in re.split(r"[/\-_.:]", first) if p in DEFAULT_STAGES), None)
            hint = f" (or `monosemantic {alone}` for that stage alone)" if alone else ""
            return (
                f"{run_dir} has no scores yet: stage {first!r} has not finished (stages: {', '.join(names)}); "
                f"run `{command}` to finish it{hint}, then report again"
            )
        return (
            f"{run_dir} has every stage marked done but no {DATA_NAME}; "
            f"re-run `{command}` to write it, then report again"
        )
    return (
        f"{run_dir} has no scores yet ({DATA_NAME} is missing); run `{command}` "
        f"(stages: {', '.join(DEFAULT_STAGES)}) first"
    )


def num(value: Any) -> float | None:
    """A finite float, or None for null / NaN / infinity / anything not a number (JSON writes NaN as null)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None

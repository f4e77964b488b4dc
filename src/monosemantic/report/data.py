"""``report_data.json``, the one file a run hands to the report: built from the run's score folders after scoring
(``build_report_data``), read back and checked by the renderer (``load_report_data``).

The builder picks the feature cards (the highest-MS units of each set that fire on enough items) and renders their
examples: image thumbnails, or the text around each top activation with every token's activation. The reader turns
a missing or malformed run folder into a ``UserError`` that says which stage to run, so a user never sees a
``KeyError`` from the renderer.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import monosemantic
from monosemantic.errors import UserError
from monosemantic.files import write_json
from monosemantic.metrics.items import rows_of_items
from monosemantic.report.scores import MIN_ITEMS_FOR_CARD, SCORES_NAME, load_scores, load_tops
from monosemantic.results import JSONDict, to_json
from monosemantic.sae import SAE
from monosemantic.sae.paths import expand_sae_paths
from monosemantic.sources import image_ref, load_image
from monosemantic.store import ActivationStore

FORMAT_VERSION = 1
"""Version of the ``report_data.json`` layout: what the builder writes and the renderer reads."""

DATA_NAME = "report_data.json"
RUN_NAME = "run.json"
SNIPPET_RADIUS = 12
"""Tokens shown on each side of a text example's top activation."""
DEFAULT_STAGES = ("extract", "train", "score")

_DONE_WORDS = {"done", "ok", "complete", "completed", "finished", "success", "succeeded"}

_TRACK_KEYS = ("name", "modality", "unit_sets")
_SET_KEYS = ("id", "kind", "width", "ms")
_FEATURE_KEYS = ("set", "id")
_CARD_KEYS = ("set", "id")


def load_report_data(run_dir: str | Path) -> JSONDict:
    """The parsed, checked ``report_data.json`` of ``run_dir``; a ``UserError`` names the stage to run if absent."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"run folder {run_dir} does not exist; give the folder written by `monosemantic run CONFIG`")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file; give the run folder (the one holding {DATA_NAME})")
    path = run_dir / DATA_NAME
    # a `monosemantic score` folder (scores.json) is no run folder, and `report` cannot render it
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


def _check_version(data: JSONDict, path: Path, run_dir: Path) -> None:
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


def check_report_data(data: JSONDict, where: str = DATA_NAME) -> None:
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


def _read_run_json(run_dir: Path) -> JSONDict:
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


# ------------------------------------------------------------------------------------------------- building


@dataclass(frozen=True)
class ScoredTrack:
    """One track of a run as the report data needs it: where its store, SAEs and scores are."""

    name: str
    n_cards: int
    """Feature cards per unit set."""
    store: Path
    score_dir: Path
    """The track's `monosemantic score` folder (scores.json, units.csv, top.safetensors)."""
    saes: list[Path]
    """The SAE folders (or sweep folders) that were scored."""


@dataclass(frozen=True)
class FeatureRow:
    """One unit of the features table (a row of the score folder's units.csv)."""

    set: str
    id: int
    ms: float | None
    fms: float | None
    firing_rate: float | None
    active_items: int | None
    best_label: str | None
    best_corr: float | None
    entropy: float | None


@dataclass(frozen=True)
class ImageExample:
    item: int
    value: float
    image: str
    """The item as a PNG data URI."""


@dataclass(frozen=True)
class Snippet:
    item: int
    value: float
    """The unit's largest activation on the item."""
    tokens: list[str]
    """Up to ``SNIPPET_RADIUS`` tokens on each side of that activation."""
    weights: list[float]
    """Each token's activation over the card's peak, clipped to [0, 1]."""


@dataclass(frozen=True)
class Card:
    """A feature card: a unit's scores and its top and weakest-firing examples."""

    set: str
    id: int
    ms: float | None
    fms: float | None
    firing_rate: float | None
    best_label: str | None
    active_items: int | None
    label_hist: dict[str, int] | None
    """Label -> count among the top examples (None when the store has no per-item labels)."""
    top: list[ImageExample] | list[Snippet]
    weak: list[ImageExample] | list[Snippet]

    def to_json(self) -> JSONDict:
        data = to_json(self)
        if self.label_hist is None:
            del data["label_hist"]
        return data


@dataclass(frozen=True)
class TrackData:
    """One track of the report data: the score summaries as ``scores.json`` has them, the features, the cards."""

    name: str
    modality: str
    model: str | None
    hook: str | None
    dataset: str | None
    n_items: int
    n_rows: int
    tokens: str | None
    encoder: str | None
    label_names: list[str]
    pool: str | None
    unit_sets: list[JSONDict]
    """Per unit set (neurons first) its summaries, as the score experiment wrote them."""
    features: list[FeatureRow]
    cards: list[Card]

    def to_json(self) -> JSONDict:
        return {**to_json(self), "cards": [c.to_json() for c in self.cards]}


@dataclass(frozen=True)
class ReportData:
    """What ``report_data.json`` holds."""

    format_version: int
    title: str | None
    created: str
    monosemantic_version: str
    headline: list[str]
    tracks: list[TrackData]

    def to_json(self) -> JSONDict:
        return {**to_json(self), "tracks": [t.to_json() for t in self.tracks]}

    def write(self, run_dir: Path | str) -> Path:
        """``RUN_DIR/report_data.json``, written atomically."""
        path = Path(run_dir) / DATA_NAME
        write_json(path, self.to_json())
        return path


Encode = Callable[[torch.Tensor], torch.Tensor]
"""A unit set's activations from the store's rows (the identity for neurons, an SAE's encoder for latents)."""


def build_report_data(title: str | None, tracks: Sequence[ScoredTrack]) -> ReportData:
    """The report data of a run: per track its score summaries, features table and feature cards."""
    built = [_track(t) for t in tracks]
    return ReportData(format_version=FORMAT_VERSION, title=title,
                      created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                      monosemantic_version=monosemantic.__version__,
                      headline=[line for t in built for line in _headline(t)], tracks=built)


def _headline(track: TrackData) -> list[str]:
    sets = track.unit_sets
    neurons = next(s for s in sets if s["kind"] == "neurons")
    saes = [s for s in sets if s["kind"] == "sae" and s["ms"]["mean"] is not None]
    if not saes:
        return []
    best = max(saes, key=lambda s: s["ms"]["mean"])
    lines = [
        f"{track.name}: {track.model} {track.hook} on {track.dataset} (MS encoder {track.encoder}): "
        f"mean MS of raw neurons {neurons['ms']['mean']:.3f}; SAE latents {min(s['ms']['mean'] for s in saes):.3f}"
        f" to {best['ms']['mean']:.3f} (best: {best['id']})."
    ]
    if "fms" in neurons and all("fms" in s for s in saes):
        top = max(saes, key=lambda s: s["fms"]["fms@1"])
        variant = neurons["fms"].get("variant") or "unbalanced"  # scores without one predate the balanced variant
        lines.append(f"{track.name}: FMS@1 ({variant}) of raw neurons {neurons['fms']['fms@1']:.3f}; best SAE "
                     f"{top['fms']['fms@1']:.3f} ({top['id']}).")
    return lines


def _track(t: ScoredTrack) -> TrackData:
    scores = load_scores(t.score_dir)
    store = ActivationStore.open(t.store)
    tops = load_tops(t.score_dir)
    features = read_features(t.score_dir / "units.csv")
    saes = {p.name: p for p in expand_sae_paths(t.saes)} if t.saes else {}
    modality = store.manifest.model["modality"]
    cards = []
    for s in scores.unit_sets:
        encode = _encoder_for(s["id"], saes)
        for row in _choose(features, s["id"], t.n_cards):
            cards.append(unit_card(row, tops, store, modality, encode, scores.label_names))
    return TrackData(
        name=t.name, modality=modality, model=scores.model, hook=scores.hook, dataset=scores.dataset,
        n_items=scores.n_items, n_rows=scores.n_rows, tokens=scores.tokens, encoder=scores.encoder,
        label_names=scores.label_names, pool=scores.pool, unit_sets=scores.unit_sets, features=features,
        cards=cards,
    )


def read_features(path: Path) -> list[FeatureRow]:
    """The rows of a score folder's ``units.csv``."""
    def number(v: str) -> float | None:
        return None if v in ("", "None", "nan") else float(v)

    with open(path, newline="") as fh:
        return [
            FeatureRow(set=r["set"], id=int(r["unit"]), ms=number(r["ms"]), fms=number(r["fms"]),
                       firing_rate=number(r["firing_rate"]), active_items=int(r["active_items"]),
                       best_label=r["best_label"] or None, best_corr=number(r["best_corr"]),
                       entropy=number(r["entropy"]))
            for r in csv.DictReader(fh)
        ]


def _choose(features: list[FeatureRow], set_id: str, n: int) -> list[FeatureRow]:
    """The n highest-MS units that fire on enough items for the score to mean something."""
    rows = [f for f in features if f.set == set_id and f.ms is not None]
    live = [f for f in rows if (f.active_items or 0) >= MIN_ITEMS_FOR_CARD] or rows
    return sorted(live, key=lambda f: -(f.ms or 0.0))[:n]


def _encoder_for(set_id: str, saes: dict[str, Path]) -> Encode:
    if set_id == "neurons":
        return lambda x: x
    return SAE.load(saes[set_id]).encode


def unit_card(row: FeatureRow, tops: dict[str, torch.Tensor], store: ActivationStore, modality: str,
              encode: Encode | None, label_names: list[str]) -> Card:
    """The card of one unit: its scores from ``row``, its top and weakest-firing items from the score folder's
    ``tops`` (as images, or as text snippets whose tokens ``encode`` weighs; images need no ``encode``)."""
    sid, unit = row.set, row.id
    top = list(zip(tops[f"{sid}/top_items"][unit].tolist(), tops[f"{sid}/top_values"][unit].tolist(), strict=True))
    weak = [(i, v) for i, v in zip(tops[f"{sid}/weak_items"][unit].tolist(), tops[f"{sid}/weak_values"][unit].tolist(),
                                   strict=True) if i >= 0]
    hist: dict[str, int] | None = None
    labels = store.labels
    if labels is not None and labels.ndim == 1:
        hist = {}
        for i, _ in top:
            name = label_names[int(labels[i])] if labels[i] < len(label_names) else str(labels[i])
            hist[name] = hist.get(name, 0) + 1
    if modality == "image":
        shown_top: list[ImageExample] | list[Snippet] = [
            ImageExample(item=i, value=round(v, 4), image=_thumb(store, i)) for i, v in top]
        shown_weak: list[ImageExample] | list[Snippet] = [
            ImageExample(item=i, value=round(v, 4), image=_thumb(store, i)) for i, v in weak]
    else:
        if encode is None:
            raise ValueError(f"the text card of {sid}/{unit} needs the unit set's encoder")
        peak = max((v for _, v in top), default=1.0) or 1.0
        shown_top = [_snippet(store, i, unit, encode, peak) for i, _ in top[:8]]
        shown_weak = [_snippet(store, i, unit, encode, peak) for i, _ in weak[:4]]
    return Card(set=row.set, id=row.id, ms=row.ms, fms=row.fms, firing_rate=row.firing_rate,
                best_label=row.best_label, active_items=row.active_items, label_hist=hist, top=shown_top,
                weak=shown_weak)


def _thumb(store: ActivationStore, item: int, size: int = 56) -> str:
    img = Image.fromarray(np.asarray(load_image(image_ref(store.items[item]))).astype(np.uint8))
    if max(img.size) < size:
        img = img.resize((size, size), Image.Resampling.NEAREST)
    img.thumbnail((size * 2, size * 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@torch.inference_mode()
def _snippet(store: ActivationStore, item: int, unit: int, encode: Encode, peak: float) -> Snippet:
    rows = rows_of_items(store, np.array([item]))[item]
    values = encode(store.gather(None, rows))[:, unit].float()
    tokens = store.item_tokens(item)
    centre = int(values.argmax()) if len(values) else 0
    a, b = max(0, centre - SNIPPET_RADIUS), min(len(tokens), centre + SNIPPET_RADIUS + 1)
    weights = (values[a:b].clamp_min(0) / peak).clamp(0, 1)
    return Snippet(item=item, value=round(float(values.max()), 4) if len(values) else 0.0, tokens=tokens[a:b],
                   weights=[round(float(w), 3) for w in weights])

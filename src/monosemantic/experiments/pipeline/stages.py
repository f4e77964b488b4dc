"""Stage caching: each stage's output lives in a folder named by a hash of everything it depends on.

A re-run skips a stage whose hash and completion are recorded in ``run.json``; a changed setting changes the
hash of that stage and of every stage downstream of it, and only those run again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from monosemantic import log
from monosemantic.errors import UserError
from monosemantic.experiments.pipeline.config import TrackConfig
from monosemantic.files import check_out, make_readable, write_json
from monosemantic.metrics.monosemanticity import default_encoder
from monosemantic.report import ScoredTrack

RUN_FORMAT = 1
RUN_FILE = "run.json"


def digest(inputs: Any) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class Stage:
    state: RunState
    key: str
    hash: str
    path: Path

    @property
    def done(self) -> bool:
        rec = self.state.stages.get(self.key)
        return bool(rec and rec["hash"] == self.hash and rec["done"] and self.path.exists())

    def start(self) -> float:
        if self.path.exists():  # an interrupted attempt of this exact stage: start it clean
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.state.record(self.key, self.hash, self.path, done=False)
        return time.perf_counter()

    def finish(self, started: float) -> None:
        self.state.record(self.key, self.hash, self.path, done=True, seconds=time.perf_counter() - started)


class RunState:
    """``run.json``: the run's config and the hash, folder and completion of every stage."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        # the run adds its stage folders to an earlier run's, so any run folder will do, but nothing else
        check_out(root, what="a run folder", marker=RUN_FILE, overwrite=True)
        root.mkdir(parents=True, exist_ok=True)
        path = root / RUN_FILE
        self.stages: dict[str, dict[str, Any]] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise UserError(f"{path} is damaged ({exc}); choose a new --out, or delete {root} to redo every stage"
                                ) from None
            if not isinstance(data, dict) or not isinstance(data.get("stages", {}), dict):
                raise UserError(f"{path} is not a run record; choose a new --out, or delete {root} to redo every stage")
            if data.get("format_version") != RUN_FORMAT:
                raise UserError(
                    f"{root} is a run folder from an older monosemantic format "
                    f"(version {data.get('format_version')}, this is {RUN_FORMAT}); use a new --out or delete it"
                )
            self.stages = data.get("stages", {})
        self.config = config
        self._save()

    def stage(self, key: str, folder: str, inputs: dict[str, Any], suffix: str = "") -> Stage:
        h = digest({"stage": key, **inputs})
        name = key.replace("/", "-")
        return Stage(self, key, h, self.root / folder / f"{name}-{h}{suffix}")

    def record(self, key: str, h: str, path: Path, *, done: bool, seconds: float | None = None) -> None:
        self.stages[key] = {"hash": h, "path": str(path.relative_to(self.root)), "done": done, "seconds": seconds}
        self._save()

    def _save(self) -> None:
        write_json(
            self.root / RUN_FILE, {"format_version": RUN_FORMAT, "config": self.config, "stages": self.stages}
        )


def say(track: str, stage: str, message: str) -> None:
    """One status line of a run: ``[track] stage  message``."""
    log.say(f"[{track}] {stage:<14} {message}")


def extract_inputs(track: TrackConfig) -> dict[str, Any]:
    """What the extract stage's hash covers. Local data and model folders count by content (size and mtime),
    so editing them redoes the run; bundled names stand for fixed registry packages."""
    from monosemantic.sources.datasets import data_ref, fingerprint

    inputs: dict[str, Any] = {k: getattr(track, k) for k in ("model", "layer", "tokens", "max_items", "max_length",
                                                             "image_size", "label_columns")}
    inputs["data"] = data_ref(track.data)
    # added only for local data, so the stage hashes of runs on bundled data stay what they were
    if (data_print := fingerprint(track.data)) is not None:
        inputs["data_fingerprint"] = data_print
    if Path(track.model).exists():
        inputs["model_fingerprint"] = fingerprint(track.model)
    return inputs


def extract_stage(state: RunState, track: TrackConfig) -> Stage:
    from monosemantic.experiments.extract import ExtractConfig, run

    stage = state.stage(f"{track.name}/extract", "stores", extract_inputs(track))
    if stage.done:
        say(track.name, "extract", f"cached ({stage.path.name})")
        return stage
    say(track.name, "extract", f"{track.model} {track.layer} on {track.data}")
    started = stage.start()
    result = run(ExtractConfig(model=track.model, layers=[track.layer], data=track.data, out=stage.path,
                               tokens=track.tokens, max_items=track.max_items, max_length=track.max_length,
                               image_size=track.image_size, label_columns=list(track.label_columns),
                               device=track.device))
    stage.finish(started)
    say(track.name, "extract", f"{result.items:,} items, {result.rows:,} rows of width {result.hooks[0].width}")
    return stage


def check_sweeps(track: TrackConfig, extracted: Stage, seed: int) -> None:
    """Now that the layer width is known, check every SAE of every sweep can be built, before embedding."""
    from monosemantic.sae.trainconfig import check_sweep
    from monosemantic.store import ActivationStore

    d_in = ActivationStore.open(extracted.path).width(None)
    for arch in track.archs:
        try:
            check_sweep(track.train_config(arch, seed), d_in)
        except UserError as exc:
            raise UserError(f"track {track.name!r}, {arch} (layer width {d_in}): {exc}") from None


def embed_stage(state: RunState, track: TrackConfig, extracted: Stage) -> tuple[Stage, str]:
    """External-encoder embeddings, one per item, for the MonoSemanticity score."""
    from monosemantic.devices import resolve_device
    from monosemantic.sources import load_dataset, load_model_for
    from monosemantic.store import ActivationStore

    store = ActivationStore.open(extracted.path)
    encoder = track.encoder or default_encoder(store.manifest.model["modality"])
    inputs = {"extract": extracted.hash, "encoder": encoder, "max_length": track.encoder_max_length}
    stage = state.stage(f"{track.name}/embed", "embeddings", inputs, suffix=".safetensors")
    if stage.done:
        say(track.name, "embed", f"cached ({encoder})")
        return stage, encoder
    started = stage.start()
    dataset = load_dataset(track.data, "text", tuple(track.label_columns))
    model = load_model_for(encoder, dataset, max_length=track.encoder_max_length,
                           mismatch=lambda reads: f"encoder {encoder!r} reads {reads}; track {track.name!r} holds "
                           f"{dataset.modality}")
    model = model.to_device(resolve_device(track.device))
    say(track.name, "embed", f"{store.n_items:,} items with {encoder}")
    chunks = []
    step = 256
    with log.bar(total=store.n_items, desc=f"embed {encoder}", unit="item") as bar:
        for a in range(0, store.n_items, step):
            b = min(a + step, store.n_items)
            chunks.append(model.embed_items(dataset.load(a, b), batch_size=64))
            bar.update(b - a)
    save_file({"embeddings": torch.cat(chunks).contiguous()}, str(stage.path))
    make_readable(stage.path)
    stage.finish(started)
    return stage, encoder


def train_stage(state: RunState, track: TrackConfig, extracted: Stage, arch: str, seed: int) -> Stage:
    from monosemantic.sae import train
    from monosemantic.sae.core import get_architecture

    grouped = "group_fraction" in get_architecture(arch).sweep_axes
    inputs = {"extract": extracted.hash, "arch": arch, "expansions": track.expansions, "ks": track.ks,
              "tokens": track.train_tokens, "batch_size": track.batch_size, "seed": seed,
              "groups": track.group_fractions if grouped else None}
    if track.l1s and get_architecture(arch).sparsity_param == "coefficient":
        inputs["l1s"] = track.l1s
    if track.holdout != 0.05:  # added only when set, so the stage hashes of earlier runs stay what they were
        inputs["holdout"] = track.holdout
    stage = state.stage(f"{track.name}/train-{arch}", "saes", inputs)
    if stage.done:
        say(track.name, f"train {arch}", "cached")
        return stage
    tc = track.train_config(arch, seed, acts=extracted.path, out=stage.path)
    sparsity = f"k {', '.join(f'{k:g}' for k in tc.k)}" if tc.k else f"l1 {tc.l1_coefficient or 'at its default'}"
    widths = ", ".join(f"x{w:g}" for w in tc.width)
    say(track.name, f"train {arch}", f"widths {widths}, {sparsity}, {track.train_tokens} rows each")
    started = stage.start()
    from monosemantic.sae.trainconfig import sweep_points
    from monosemantic.store import ActivationStore

    points = sweep_points(tc, ActivationStore.open(extracted.path).width(None))
    if len(points) == 1:  # a lone SAE would be written to the stage folder itself and named after its hash
        tc = replace(tc, out=stage.path / points[0].name)
    # The 10M-token dead window of long runs would never trigger AuxK in a short one: use a tenth of the run.
    train(replace(tc, dead_tokens=min(tc.dead_tokens, max(10_000, tc.total_tokens() // 10))))
    stage.finish(started)
    return stage


def score_stage(state: RunState, track: TrackConfig, extracted: Stage, embedded: Stage, encoder: str,
                sae_stages: list[Stage]) -> ScoredTrack:
    from monosemantic.experiments.score import ScoreConfig
    from monosemantic.experiments.score import run as score

    inputs = {"extract": extracted.hash, "embed": embedded.hash, "saes": [s.hash for s in sae_stages],
              "pool": track.pool, "fms": "balanced"}
    if track.hierarchy is not None:  # only then, so the stage hashes of earlier runs stay valid
        from monosemantic.metrics.hierarchy import load_parents

        inputs["hierarchy"] = load_parents(track.hierarchy)  # the mapping itself: an edited file redoes the stage
    stage = state.stage(f"{track.name}/score", "scores", inputs)
    if not stage.done:
        say(track.name, "score", "MS, FMS, label correlation and entropy; neurons vs every SAE")
        started = stage.start()
        score(ScoreConfig(acts=extracted.path, sae=[s.path for s in sae_stages], embeddings=embedded.path,
                          encoder=encoder, pool=track.pool, out=stage.path, device=track.device,
                          hierarchy=track.hierarchy))
        stage.finish(started)
    else:
        say(track.name, "score", "cached")
    return ScoredTrack(name=track.name, n_cards=track.n_cards, store=extracted.path, score_dir=stage.path,
                       saes=[s.path for s in sae_stages])

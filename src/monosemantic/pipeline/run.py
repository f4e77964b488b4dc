"""Run a whole pipeline from a RunConfig, stage by stage, skipping what is already done."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from monosemantic.config import to_dict
from monosemantic.metrics.scoring import default_encoder
from monosemantic.files import make_readable
from monosemantic.pipeline.config import RunConfig, TrackConfig
from monosemantic.pipeline.stages import RunState, Stage


def _say(track: str, stage: str, message: str) -> None:
    print(f"[{track}] {stage:<14} {message}", flush=True)


def run_pipeline(cfg: RunConfig) -> Path:
    """Extract, embed, train and score every track, then write the report; returns the report's path."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = RunState(Path(cfg.out), to_dict(cfg))
    t0 = time.perf_counter()
    track_scores = []
    for track in cfg.tracks:
        extract_stage = _extract(state, track)
        _check_sweeps(track, extract_stage, cfg.seed)
        embed_stage, encoder = _embed(state, track, extract_stage)
        sae_stages = [_train(state, track, extract_stage, arch, cfg.seed) for arch in track.archs]
        track_scores.append(_score(state, track, extract_stage, embed_stage, encoder, sae_stages))
    _steer(state, cfg)
    report = _report(state, cfg, track_scores)
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)
    return report


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


def _extract(state: RunState, track: TrackConfig) -> Stage:
    from monosemantic.store.extract import ExtractConfig, extract

    stage = state.stage(f"{track.name}/extract", "stores", extract_inputs(track))
    if stage.done:
        _say(track.name, "extract", f"cached ({stage.path.name})")
        return stage
    _say(track.name, "extract", f"{track.model} {track.layer} on {track.data}")
    started = stage.start()
    store = extract(ExtractConfig(model=track.model, layers=[track.layer], data=track.data, out=stage.path,
                                  tokens=track.tokens, max_items=track.max_items, max_length=track.max_length,
                                  image_size=track.image_size, label_columns=list(track.label_columns),
                                  device=track.device))
    stage.finish(started)
    _say(track.name, "extract", f"{store.n_items:,} items, {store.n_rows:,} rows of width {store.width(None)}")
    return stage


def _check_sweeps(track: TrackConfig, extract_stage: Stage, seed: int) -> None:
    """Now that the layer width is known, check every SAE of every sweep can be built, before embedding."""
    from monosemantic.errors import UserError
    from monosemantic.sae.trainconfig import check_sweep
    from monosemantic.store import ActivationStore

    d_in = ActivationStore.open(extract_stage.path).width(None)
    for arch in track.archs:
        try:
            check_sweep(track.train_config(arch, seed), d_in)
        except UserError as exc:
            raise UserError(f"track {track.name!r}, {arch} (layer width {d_in}): {exc}") from None


def _embed(state: RunState, track: TrackConfig, extract_stage: Stage) -> tuple[Stage, str]:
    """External-encoder embeddings, one per item, for the MonoSemanticity score."""
    from monosemantic.devices import resolve_device
    from monosemantic.sources import load_dataset, load_model
    from monosemantic.store import ActivationStore

    store = ActivationStore.open(extract_stage.path)
    encoder = track.encoder or default_encoder(store.manifest.model["modality"])
    inputs = {"extract": extract_stage.hash, "encoder": encoder, "max_length": track.encoder_max_length}
    stage = state.stage(f"{track.name}/embed", "embeddings", inputs, suffix=".safetensors")
    if stage.done:
        _say(track.name, "embed", f"cached ({encoder})")
        return stage, encoder
    started = stage.start()
    dataset = load_dataset(track.data, "text", tuple(track.label_columns))
    small = dataset.native_size is not None and dataset.native_size <= 64
    model = load_model(encoder, max_length=track.encoder_max_length, image_size=96 if small else None)
    model = model.to_device(resolve_device(track.device))
    if model.modality != dataset.modality:
        from monosemantic.errors import UserError

        raise UserError(f"encoder {encoder!r} reads {model.modality}; track {track.name!r} holds {dataset.modality}")
    _say(track.name, "embed", f"{store.n_items:,} items with {encoder}")
    chunks = []
    step = 256
    with tqdm(total=store.n_items, desc=f"embed {encoder}", unit="item", dynamic_ncols=True, mininterval=0.5) as bar:
        for a in range(0, store.n_items, step):
            b = min(a + step, store.n_items)
            chunks.append(model.embed_items(dataset.load(a, b), batch_size=64))
            bar.update(b - a)
    save_file({"embeddings": torch.cat(chunks).contiguous()}, str(stage.path))
    make_readable(stage.path)
    stage.finish(started)
    return stage, encoder


def _train(state: RunState, track: TrackConfig, extract_stage: Stage, arch: str, seed: int) -> Stage:
    from monosemantic.sae import train
    from monosemantic.sae.core import get_architecture
    from monosemantic.sae.options import registered_options

    grouped = "group_fraction" in registered_options()[arch].__dataclass_fields__
    inputs = {"extract": extract_stage.hash, "arch": arch, "expansions": track.expansions, "ks": track.ks,
              "tokens": track.train_tokens, "batch_size": track.batch_size, "seed": seed,
              "groups": track.group_fractions if grouped else None}
    if track.l1s and get_architecture(arch).sparsity_param == "coefficient":
        inputs["l1s"] = track.l1s
    if track.holdout != 0.05:  # added only when set, so the stage hashes of earlier runs stay what they were
        inputs["holdout"] = track.holdout
    stage = state.stage(f"{track.name}/train-{arch}", "saes", inputs)
    if stage.done:
        _say(track.name, f"train {arch}", "cached")
        return stage
    tc = track.train_config(arch, seed, acts=extract_stage.path, out=stage.path)
    sparsity = f"k {', '.join(f'{k:g}' for k in tc.k)}" if tc.k else f"l1 {tc.l1_coefficient or 'at its default'}"
    widths = ", ".join(f"x{w:g}" for w in tc.width)
    _say(track.name, f"train {arch}", f"widths {widths}, {sparsity}, {track.train_tokens} rows each")
    started = stage.start()
    from monosemantic.sae.trainconfig import sweep_points
    from monosemantic.store import ActivationStore

    points = sweep_points(tc, ActivationStore.open(extract_stage.path).width(None))
    if len(points) == 1:  # a lone SAE would be written to the stage folder itself and named after its hash
        tc = replace(tc, out=stage.path / points[0].name)
    # The 10M-token dead window of long runs would never trigger AuxK in a short one: use a tenth of the run.
    train(replace(tc, dead_tokens=min(tc.dead_tokens, max(10_000, tc.total_tokens() // 10))))
    stage.finish(started)
    return stage


def _score(state: RunState, track: TrackConfig, extract_stage: Stage, embed_stage: Stage, encoder: str,
           sae_stages: list[Stage]) -> dict[str, Any]:
    from monosemantic.metrics.scoring import ScoreConfig, load_scores, score

    inputs = {"extract": extract_stage.hash, "embed": embed_stage.hash, "saes": [s.hash for s in sae_stages],
              "pool": track.pool, "fms": "balanced"}
    if track.hierarchy is not None:  # only then, so the stage hashes of earlier runs stay valid
        from monosemantic.metrics.hierarchy import load_parents

        inputs["hierarchy"] = load_parents(track.hierarchy)  # the mapping itself: an edited file redoes the stage
    stage = state.stage(f"{track.name}/score", "scores", inputs)
    if not stage.done:
        _say(track.name, "score", "MS, FMS, label correlation and entropy; neurons vs every SAE")
        started = stage.start()
        score(ScoreConfig(acts=extract_stage.path, sae=[s.path for s in sae_stages], embeddings=embed_stage.path,
                          encoder=encoder, pool=track.pool, out=stage.path, device=track.device,
                          hierarchy=track.hierarchy))
        stage.finish(started)
    else:
        _say(track.name, "score", "cached")
    return {"track": track, "store": extract_stage.path, "scores": load_scores(stage.path),
            "score_dir": stage.path, "saes": [s.path for s in sae_stages]}


def _steer(state: RunState, cfg: RunConfig) -> None:
    """The steering tracks, written together to ``steer/steer.json`` (removed when the config has none, so the
    report never shows an earlier run's steering)."""
    from monosemantic.pipeline.steer import RESULT_NAME, run_steer_track, write_steer_results

    if not cfg.steer:
        (state.root / "steer" / RESULT_NAME).unlink(missing_ok=True)
        return
    write_steer_results(state.root, [run_steer_track(state, st, cfg.seed) for st in cfg.steer])


def _report(state: RunState, cfg: RunConfig, track_scores: list[dict[str, Any]]) -> Path:
    from monosemantic.pipeline.report_data import build_report_data
    from monosemantic.report import render_report
    from monosemantic.files import write_json

    data = build_report_data(cfg, track_scores)
    write_json(state.root / "report_data.json", data)
    path = render_report(state.root)
    return path

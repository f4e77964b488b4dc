"""Run a whole pipeline from a RunConfig, stage by stage, skipping what is already done."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from monosemantic.config import to_dict
from monosemantic.experiments.pipeline.config import RunConfig
from monosemantic.experiments.pipeline.stages import (
    RunState,
    check_sweeps,
    embed_stage,
    extract_stage,
    say,
    score_stage,
    train_stage,
)
from monosemantic.experiments.pipeline.steer_track import run_steer_track, steer_results_path, write_steer_results


def run_pipeline(cfg: RunConfig) -> Path:
    """Extract, embed, train and score every track, then write the report; returns the report's path."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = RunState(Path(cfg.out), to_dict(cfg))
    t0 = time.perf_counter()
    track_scores = []
    for track in cfg.tracks:
        extracted = extract_stage(state, track)
        check_sweeps(track, extracted, cfg.seed)
        embedded, encoder = embed_stage(state, track, extracted)
        sae_stages = [train_stage(state, track, extracted, arch, cfg.seed) for arch in track.archs]
        track_scores.append(score_stage(state, track, extracted, embedded, encoder, sae_stages))
    _steer(state, cfg)
    report = _report(state, cfg, track_scores)
    say("run", "done", f"in {time.perf_counter() - t0:.0f} s")
    return report


def _steer(state: RunState, cfg: RunConfig) -> None:
    """The steering tracks, written together to ``steer/steer.json`` (removed when the config has none, so the
    report never shows an earlier run's steering)."""
    if not cfg.steer:
        steer_results_path(state.root).unlink(missing_ok=True)
        return
    write_steer_results(state.root, [run_steer_track(state, st, cfg.seed) for st in cfg.steer])


def _report(state: RunState, cfg: RunConfig, track_scores: list[dict[str, Any]]) -> Path:
    from monosemantic.report import ScoredTrack, build_report_data, render_report

    tracks = [ScoredTrack(name=t["track"].name, n_cards=t["track"].n_cards, store=t["store"], score_dir=t["score_dir"],
                          saes=t["saes"]) for t in track_scores]
    build_report_data(cfg.title, tracks).write(state.root)
    path = render_report(state.root)
    return path

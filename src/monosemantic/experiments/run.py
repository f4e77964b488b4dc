"""``monosemantic run CONFIG.toml``: a whole pipeline (extract -> train -> score -> steer -> report) from one TOML
file, every stage cached under the run folder by a hash of its inputs, so a re-run does only what changed."""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from monosemantic.config import field_docs, from_namespace, to_dict
from monosemantic.experiment import Command, Result, Summary
from monosemantic.experiments.pipeline.config import RunConfig, SteerTrackConfig, TrackConfig, load_run_config
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
from monosemantic.report import ScoredTrack, build_report_data, render_report


@dataclass(frozen=True)
class RunOptions:
    """What `monosemantic run` takes on the command line; the run itself is described by the TOML file."""

    config: Path
    """TOML file (see `monosemantic demo --print-config` for a complete example)"""
    out: Path | None = None
    """run folder (overrides the config's `out`)"""


@dataclass(frozen=True)
class RunResult(Result):
    """A finished run: its report and how long it took."""

    report: Path
    seconds: float

    def write(self, folder: Path) -> None:
        """Nothing to add: every stage wrote its files into the run folder as it finished."""

    def summary(self) -> Summary:
        return [f"report: {self.report}"]


def run(cfg: RunConfig) -> RunResult:
    """Extract, embed, train and score every track, steer every steering track, then write the report; every
    stage already done (same hash of its inputs) is skipped."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = RunState(Path(cfg.out), to_dict(cfg))
    started = time.perf_counter()
    scored: list[ScoredTrack] = []
    for track in cfg.tracks:
        extracted = extract_stage(state, track)
        check_sweeps(track, extracted, cfg.seed)
        embedded, encoder = embed_stage(state, track, extracted)
        sae_stages = [train_stage(state, track, extracted, arch, cfg.seed) for arch in track.archs]
        scored.append(score_stage(state, track, extracted, embedded, encoder, sae_stages))
    _steer(state, cfg)
    build_report_data(cfg.title, scored).write(state.root)
    report = render_report(state.root)
    seconds = time.perf_counter() - started
    say("run", "done", f"in {seconds:.0f} s")
    return RunResult(report=report, seconds=seconds)


def _steer(state: RunState, cfg: RunConfig) -> None:
    """The steering tracks, written together to ``steer/steer.json`` (removed when the config has none, so the
    report never shows an earlier run's steering)."""
    if not cfg.steer:
        steer_results_path(state.root).unlink(missing_ok=True)
        return
    write_steer_results(state.root, [run_steer_track(state, st, cfg.seed) for st in cfg.steer])


def _keys(cls: type) -> str:
    """One line per TOML key: its meaning, then (required) or its default."""
    docs, lines = field_docs(cls), []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            note = "" if f.default is None else f" (default: {f.default})"
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            note = f" (default: {value})" if value else ""
        else:
            note = " (required)"
        lines.append(f"  {f.name:<18} {docs.get(f.name, '')}{note}")
    return "\n".join(lines)


def _build(args: argparse.Namespace) -> RunConfig:
    options = from_namespace(RunOptions, args)
    return load_run_config(options.config, out=options.out)


def _raw_description(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


COMMAND = Command(
    "run", RunOptions, run,
    description="Run every stage described in CONFIG. Each stage's output is cached under the run folder by a "
    "hash of its inputs, so a re-run skips finished stages and a changed setting redoes only what depends on it."
    f"\n\ntop-level keys:\n{_keys(RunConfig)}\n\n[[tracks]] keys:\n{_keys(TrackConfig)}\n\n[[steer]] keys "
    f"(steering tracks: a vanilla TopK SAE against a G-SAE on one task):\n{_keys(SteerTrackConfig)}",
    positional=("config",), configure=_raw_description, build=_build,
)

"""``monosemantic run CONFIG.toml``: a whole pipeline (extract -> train -> score -> steer -> report) from one TOML
file, every stage cached under the run folder by a hash of its inputs, so a re-run does only what changed."""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from monosemantic.config import field_docs, from_namespace
from monosemantic.experiment import Command, Result, Summary
from monosemantic.experiments.pipeline.config import RunConfig, SteerTrackConfig, TrackConfig, load_run_config
from monosemantic.experiments.pipeline.run import run_pipeline


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
    """Run every stage of ``cfg`` that is not already done; returns the report's path."""
    started = time.perf_counter()
    report = run_pipeline(cfg)
    return RunResult(report=report, seconds=time.perf_counter() - started)


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

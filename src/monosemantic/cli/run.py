"""`monosemantic run CONFIG.toml`: a whole pipeline from one file, re-running only what changed."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from monosemantic.config import field_docs
    from monosemantic.experiments.pipeline.config import RunConfig, SteerTrackConfig, TrackConfig

    keys, track_keys = _keys(RunConfig, field_docs(RunConfig)), _keys(TrackConfig, field_docs(TrackConfig))
    steer_keys = _keys(SteerTrackConfig, field_docs(SteerTrackConfig))
    p = sub.add_parser(
        "run", help="run a pipeline (extract -> train -> score -> report) described in a TOML file",
        description="Run every stage described in CONFIG. Each stage's output is cached under the run folder by a "
        "hash of its inputs, so a re-run skips finished stages and a changed setting redoes only what depends on it."
        f"\n\ntop-level keys:\n{keys}\n\n[[tracks]] keys:\n{track_keys}\n\n[[steer]] keys (steering tracks: a "
        f"vanilla TopK SAE against a G-SAE on one task):\n{steer_keys}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="TOML file (see `monosemantic demo --print-config` for a complete example)")
    p.add_argument("--out", default=None, help="run folder (overrides the config's `out`)")
    p.set_defaults(func=run)


def _keys(cls: type, docs: dict[str, str]) -> str:
    """One line per TOML key: its meaning, then (required) or its default."""
    import dataclasses

    lines = []
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


def run(args: argparse.Namespace) -> int:
    from monosemantic.experiments.pipeline.config import load_run_config
    from monosemantic.experiments.pipeline.run import run_pipeline

    report = run_pipeline(load_run_config(args.config, out=args.out))
    print(f"report: {report}")
    return 0

"""`monosemantic demo`: the bundled configs, on real models and data, with no network."""

from __future__ import annotations

import argparse
from importlib import resources

CONFIGS = {"demo": "demo.toml", "steer-full": "steer.toml", "ablation": "ablation.toml"}


def demo_config_text(track: str = "demo") -> str:
    return (resources.files("monosemantic") / "configs" / CONFIGS[track]).read_text()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the bundled demo: vision, text and steering tracks, neurons vs SAE features, one report",
        description="Extract MobileNetV2 (features.13, MNIST) and MiniLM (layer 3, BBC News) activations, train "
        "TopK and Matryoshka SAEs at two widths and two k on each, score raw neurons against SAE latents (MS, FMS, "
        "label correlation and entropy), steer SmolLM2 through a vanilla SAE and a G-SAE on one task, and write an "
        "HTML report. `--track steer-full` runs the whole steering experiment instead (three tasks, vanilla SAE vs "
        "G-SAE); `--track ablation` sweeps SAE width and k on a vision and a text layer (the MS paper's ablation). "
        "The last line printed is the report's path.",
    )
    p.add_argument("--track", choices=sorted(CONFIGS), default="demo",
                   help="demo: the demo's tracks (default); steer-full: the full steering experiment (runs/steer); "
                   "ablation: MS against SAE width and k (runs/ablation)")
    p.add_argument("--out", default=None, help="run folder (default: the config's, e.g. runs/demo)")
    p.add_argument("--print-config", action="store_true", help="print the chosen TOML config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    if args.print_config:
        print(demo_config_text(args.track), end="")
        return 0
    from monosemantic.experiments.pipeline.config import load_run_config
    from monosemantic.experiments.run import run as run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / CONFIGS[args.track]
        path.write_text(demo_config_text(args.track))
        cfg = load_run_config(path, out=args.out)
    print(f"report: {run_experiment(cfg).report}")
    return 0

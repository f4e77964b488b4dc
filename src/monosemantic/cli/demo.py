"""`monosemantic demo`: the bundled demo config, on real models and data, with no network."""

from __future__ import annotations

import argparse
from importlib import resources


def demo_config_text() -> str:
    return (resources.files("monosemantic") / "configs" / "demo.toml").read_text()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the bundled demo: a vision and a text track, neurons vs SAE features, one report",
        description="Extract MobileNetV2 (features.13, MNIST) and MiniLM (layer 3, BBC News) activations, train "
        "TopK and Matryoshka SAEs at two widths and two k on each, score raw neurons against SAE latents (MS, FMS, "
        "label correlation and entropy) and write an HTML report. The last line printed is the report's path.",
    )
    p.add_argument("--out", default=None, help="run folder (default: runs/demo)")
    p.add_argument("--print-config", action="store_true", help="print the demo's TOML config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    if args.print_config:
        print(demo_config_text(), end="")
        return 0
    from monosemantic.pipeline.config import load_run_config
    from monosemantic.pipeline.run import run_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.toml"
        path.write_text(demo_config_text())
        cfg = load_run_config(path, out=args.out)
    report = run_pipeline(cfg)
    print(f"report: {report}")
    return 0

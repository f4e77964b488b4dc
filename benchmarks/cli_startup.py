"""How long the command line takes to answer `--help`: the top level and every command, as whole processes.

    python benchmarks/cli_startup.py [--runs 5] [--other /path/to/another/venv/bin/monosemantic]

The top level imports only the command registry; a command's `--help` imports that command's module (and so its
stage packages, torch included). `--other` times a second installation side by side (e.g. an older commit).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

from common import header

COMMANDS = ("", "extract", "train", "score", "steer", "knowledge", "compare", "atoms", "report", "run")


def wall(exe: str, command: str, runs: int) -> float:
    """Median wall seconds of ``exe [command] --help`` over ``runs`` runs after one warm-up."""
    argv = [exe, *([command] if command else []), "--help"]
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--other", default=None, help="a second `monosemantic` executable to time beside this one")
    args = parser.parse_args()
    header("cli_startup")
    exe = shutil.which("monosemantic") or f"{sys.prefix}/bin/monosemantic"
    print(f"this: {exe}" + (f"; other: {args.other}" if args.other else ""))
    print(f"{'command':<12} {'this (s)':>9}" + (f" {'other (s)':>10} {'ratio':>6}" if args.other else ""))
    for command in COMMANDS:
        ours = wall(exe, command, args.runs)
        line = f"{command or '(top)':<12} {ours:>9.3f}"
        if args.other:
            theirs = wall(args.other, command, args.runs)
            line += f" {theirs:>10.3f} {ours / theirs:>6.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()

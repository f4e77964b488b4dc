"""`monosemantic report RUN_DIR`: render a run's scores as one self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="render a run folder as one self-contained HTML report (plus figures.json)",
        description="Read RUN_DIR/report_data.json (written by `monosemantic run` after scoring) and write "
        "RUN_DIR/report.html: a summary of every SAE against the raw neurons, plots, a sortable features "
        "table and a card per selected feature. The page works offline; the data of every plot goes to "
        "figures.json beside it. The last line printed is the report's path.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by `monosemantic run CONFIG`")
    p.add_argument("--out", type=Path, metavar="FILE", help="write the HTML here instead of RUN_DIR/report.html")
    p.add_argument("--open", action="store_true", help="open the report in the default web browser")
    p.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="also save a 1400-pixel-wide screenshot of the top of the report (needs Chromium)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monosemantic.report import render_report, screenshot

    path = render_report(args.run_dir, args.out)
    if args.screenshot:
        print(f"screenshot: {screenshot(path, args.screenshot)}")
    if args.open:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            print("note: no web browser could be started; open the file below by hand")
    print(path)
    return 0

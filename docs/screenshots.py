"""Re-take the screenshots of the docs with the report's headless-Chromium helper, so the images are what a browser
shows from disk (file://):

    make docs && .venv/bin/python docs/screenshots.py          # docs/img/ from the built site
    .venv/bin/python docs/screenshots.py report [RUN_DIR]       # docs/report.png, the README's report

Without a RUN_DIR the report is the fake demo-size run of the tests (tests/fixtures/report_run.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from monosemantic.report import render_report, screenshot

ROOT = Path(__file__).resolve().parents[1]
SHOTS = {"docs-home.png": "index.html", "methods-ms.png": "methods/ms.html"}


def report_png(run_dir: Path | None) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        if run_dir is None:
            sys.path.insert(0, str(ROOT / "tests"))
            from fixtures.report_run import write_report_run

            run_dir = write_report_run(Path(tmp) / "run", "demo")
        html = render_report(run_dir, Path(tmp) / "report.html")
        return screenshot(html, ROOT / "docs" / "report.png")


if __name__ == "__main__":
    if sys.argv[1:2] == ["report"]:
        print(report_png(Path(sys.argv[2]) if len(sys.argv) > 2 else None))
    else:
        for png, page in SHOTS.items():
            print(screenshot(ROOT / "site" / page, ROOT / "docs" / "img" / png, width=1440, height=900))
